"""Minimal Telesign REST client for auto-replies (SMS messaging and omnichannel).

Sync `urllib` on purpose: it runs inside a Celery task, needs no extra
dependency, and each call is one request. Errors raise TelesignError so the
task's autoretry sees them.
"""

from __future__ import annotations

import base64
import urllib.error
import urllib.parse
import urllib.request

import msgspec


class TelesignError(Exception):
    """A non-2xx answer or a network failure; retried by the auto-reply task."""


def _auth(customer_id: str, api_key: str) -> str:
    token = base64.b64encode(f"{customer_id}:{api_key}".encode()).decode()
    return f"Basic {token}"


def send_reply(
    base_url: str, customer_id: str, api_key: str, *, channel: str | None, phone_number: str | None,
    email: str | None, message: str, timeout: float = 10.0,
) -> int:
    """Send one auto-reply; SMS goes to /v1/messaging (form, message_type=ARN), others to /v1/omnichannel (JSON)."""
    headers = {"Authorization": _auth(customer_id, api_key), "Accept": "application/json"}
    if channel in (None, "sms", "mms"):
        url = f"{base_url}/v1/messaging"
        data = urllib.parse.urlencode(
            {"phone_number": phone_number or "", "message": message, "message_type": "ARN"}
        ).encode()
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    else:
        url = f"{base_url}/v1/omnichannel"
        recipient = {"email": email} if channel == "email" else {"phone_number": phone_number}
        data = msgspec.json.encode(
            {
                "recipient": recipient,
                "channels": [{"channel": channel, "content": {"type": "text", "text": message}}],
            }
        )
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(url, data=data, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        raise TelesignError(f"{url} answered {exc.code}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise TelesignError(f"{url} unreachable: {exc}") from None

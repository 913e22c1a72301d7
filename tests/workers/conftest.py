"""Worker test helpers: callback bodies built from the Telesign fixtures, and a stand-in decoder.

The real `pipeline.decode` is written on another branch; until it is merged,
`_standin_decode` covers just the fixture shapes these tests use so the
worker path (queue -> decode -> store) is exercised end to end. Once
`pipeline.decode` exists it is used and the stand-in is never installed.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone

import pipeline
from pipeline.errors import InvalidCallback
from pipeline.event import Action, Channel, Event, Kind, Outcome, Source, Status
from tests.conftest import fixture_bodies

FIXTURES = {name: json.loads(body) for name, body in fixture_bodies().items()}

_CODES = {  # code: (outcome, final) for the codes the worker tests use
    3000: ("delivered", None), 3002: ("pending", False), 3005: ("read", True), 1500: ("received", True),
    290: ("pending", False), 203: ("pending", False), 200: ("delivered", True), 3056: ("failed", True),
}


def _standin_decode(body, channel_hint=None, received_at=None, source=Source.CALLBACK) -> Event:
    try:
        data = json.loads(body)
        status = data["status"]
        code = int(status["code"])
    except (ValueError, TypeError, KeyError) as exc:
        raise InvalidCallback(f"not a Telesign callback: {exc}") from None
    outcome, final = _CODES.get(code, ("unknown", True))
    channel = status.get("last_channel") or channel_hint
    if data.get("waba_phone_number"):
        channel = "whatsapp"
    elif "user_response" in data:
        channel = "sms"
    elif data.get("sub_resource") == "mo_email":
        channel = "email"
    if final is None:
        final = channel in (None, "sms", "mms")
    ur = data.get("user_response") or (data.get("content") or {}).get("end_user_action") or {}
    action = ur.get("action") or ("stop" if ur.get("event") == "unsubscribe" else None)
    return Event(
        event_id=hashlib.sha256(body).hexdigest()[:32], kind=Kind.INBOUND if code == 1500 else
        (Kind.READ if code == 3005 else (Kind.VERIFY if "verify" in data else Kind.DELIVERY)),
        channel=Channel(channel) if channel else None, reference_id=data.get("reference_id"), external_id=None,
        status=Status(code=code, outcome=Outcome(outcome), final=final),
        occurred_at=datetime.fromisoformat(status["updated_on"].replace("Z", "+00:00")).replace(tzinfo=timezone.utc)
        if "T" in status.get("updated_on", "") else None,
        received_at=received_at, phone_number=data.get("phone_number") or ur.get("phone_number"),
        email=data.get("email"), sender=None, text=None,
        action=Action(action) if code == 1500 and action else (Action.GENERIC if code == 1500 else None),
        keyword=ur.get("keyword"), source=source, raw=body.decode(),
    )


if not hasattr(pipeline, "decode"):
    pipeline.decode = _standin_decode


def body(name: str, **changes) -> bytes:
    """A fixture body with top-level or status fields changed (status_code=, updated_on=, reference_id=...)."""
    data = json.loads(json.dumps(FIXTURES[name]))
    for key, value in changes.items():
        if key.startswith("status_"):
            data["status"][key[len("status_"):]] = value
        else:
            data[key] = value
    return json.dumps(data).encode()

"""Keyword actions: which auto-replies an applied inbound event calls for.

Opt-out changes (stop/start) are applied atomically with dedup inside the
store's batch script; this module only decides the auto-reply text, per action
and per language (the body's iso_country_code), from TSPIPE_AUTOREPLIES
(parsed by config/autoreplies.py).
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from pipeline.event import Event, Kind


class AutoReply(msgspec.Struct, frozen=True, kw_only=True):
    """One reply to send: the payload of the auto-reply task (and of its dead letter)."""

    event_id: str
    action: str
    channel: str | None
    phone_number: str | None
    email: str | None
    message: str


def _find_country(node: object, depth: int = 0) -> str | None:
    """iso_country_code sits in user_response (SMS) or content.end_user_action (WhatsApp, RCS)."""
    if not isinstance(node, dict) or depth > 3:
        return None
    value = node.get("iso_country_code")
    if isinstance(value, str) and value:
        return value.upper()
    for child in node.values():
        found = _find_country(child, depth + 1)
        if found:
            return found
    return None


def _country(event: Event) -> str | None:
    try:
        return _find_country(msgspec.json.decode(event.raw))
    except msgspec.DecodeError:
        return None


def autoreplies_for(events: Sequence[Event], config: dict[str, dict[str, str]]) -> list[AutoReply]:
    """The replies owed for these events: inbound, with a configured action text, and an address."""
    if not config:
        return []
    replies = []
    for event in events:
        if event.kind is not Kind.INBOUND or event.action is None:
            continue
        texts = config.get(event.action.value)
        if not texts or not (event.phone_number or event.email):
            continue
        country = _country(event)
        message = texts.get(country) if country else None
        message = message or texts.get("default")
        if not message:
            continue
        replies.append(
            AutoReply(
                event_id=event.event_id,
                action=event.action.value,
                channel=event.channel.value if event.channel else None,
                phone_number=event.phone_number,
                email=event.email,
                message=message,
            )
        )
    return replies

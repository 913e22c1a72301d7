"""Inbound (mobile-originated) messages, status 1500 (seed 003), one shape per channel.

Where the text, the sender and the media live differs per channel; this
module knows each place. Telesign's own keyword action wins; otherwise the
text is matched against the seed's keyword lists.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from pipeline.event import Action, Media
from pipeline.keywords import detect, telesign_action
from pipeline.wire import WireCallback, sub, text

SUB_RESOURCE_CHANNELS = {
    "sms": "sms",
    "mo_sms": "sms",
    "mo_mms": "mms",
    "mo_rcs": "rcs",
    "mo_viber": "viber",
    "mo_whatsapp": "whatsapp",
    "mo_email": "email",
}


class Inbound(NamedTuple):
    text: str | None
    sender: str | None
    media: list[Media]
    action: Action
    keyword: str | None


def channel_marker(wire: WireCallback) -> str | None:
    """The channel an inbound body names itself, if any (a Viber MO names none)."""
    if wire.waba_phone_number is not None:
        return "whatsapp"
    if wire.rcs_sender_id is not None:
        return "rcs"
    if wire.user_response is not None:
        return "sms"
    if wire.email is not None:
        return "email"
    return None


def inbound_of(wire: WireCallback, channel: str | None) -> Inbound:
    content = wire.content or {}
    action_obj = sub(content, "end_user_action")
    message = _text(wire, content, action_obj)
    media = _media(content)

    sender = text(wire.user_response.sender_id) if wire.user_response else None
    sender = sender or text(wire.rcs_sender_id) or text(wire.waba_phone_number)

    ts_action = ts_keyword = None
    if wire.user_response is not None:
        ts_action = telesign_action(wire.user_response.action)
        ts_keyword = text(wire.user_response.keyword)
    if ts_action is None and action_obj is not None:
        ts_action = telesign_action(sub(action_obj, "action"))
        ts_keyword = _str(sub(action_obj, "keyword"))
        event_name = _str(sub(action_obj, "event"))
        if ts_action is None and event_name and event_name.lower() == "unsubscribe":
            ts_action, ts_keyword = Action.STOP, event_name.lower()
    if ts_action is not None:
        return Inbound(message, sender, media, ts_action, ts_keyword)
    action, keyword = detect(message)
    return Inbound(message, sender, media, action, keyword)


def _str(value: Any) -> str | None:
    """text() for a value from the untyped `content`, where a dict or list is no text."""
    if type(value) is str:
        return value or None
    return text(value) if not isinstance(value, (dict, list)) else None


def _text(wire: WireCallback, content: dict[str, Any], action_obj: Any) -> str | None:
    if wire.user_response is not None and wire.user_response.mo_message is not None:
        return text(wire.user_response.mo_message)
    # The places a text lives, in order: Viber `text`, WhatsApp `content.body`,
    # RCS/WhatsApp `end_user_action.text`. Plain dict lookups: this runs per inbound body.
    value = _str(content.get("text"))
    if value is not None:
        return value
    inner = content.get("content")
    if type(inner) is dict:
        value = _str(inner.get("body"))
        if value is not None:
            return value
    if type(action_obj) is dict:
        value = _str(action_obj.get("text"))
        if value is not None:
            return value
    # MMS: numbered `text_1`, `text_2`, ... joined in numeric order.
    numbered = sorted(
        (int(key[5:]), value)
        for key, value in content.items()
        if key.startswith("text_") and key[5:].isdigit() and isinstance(value, str)
    )
    if numbered:
        return "\n".join(value for _, value in numbered)
    return None


def _media(content: dict[str, Any]) -> list[Media]:
    media: list[Media] = []
    file = content.get("file")
    payload = file.get("payload") if type(file) is dict else None
    if isinstance(payload, dict):
        size = payload.get("size_bytes")
        media.append(
            Media(
                url=_str(payload.get("uri") or payload.get("url")),
                mime_type=_str(payload.get("mime_type")),
                name=_str(payload.get("name")),
                size_bytes=size if isinstance(size, int) and not isinstance(size, bool) else None,
            )
        )
    urls = sorted(
        (key, value) for key, value in content.items() if key.startswith("url_") and isinstance(value, str)
    )
    if urls:
        media.extend(Media(url=value) for _, value in urls)
    return media

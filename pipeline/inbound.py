"""Inbound (mobile-originated) messages, status 1500 (seed 003), one shape per channel.

Where the text, the sender and the media live differs per channel; this
module knows each place. Telesign's own keyword action wins; otherwise the
text is matched against the seed's keyword lists.
"""

from __future__ import annotations

from typing import Any

from pipeline.event import Action, Media
from pipeline.keywords import detect, telesign_action
from pipeline.wire import WireCallback, text

SUB_RESOURCE_CHANNELS = {
    "sms": "sms",
    "mo_sms": "sms",
    "mo_mms": "mms",
    "mo_rcs": "rcs",
    "mo_viber": "viber",
    "mo_whatsapp": "whatsapp",
    "mo_email": "email",
}


# Only MMS bodies number their parts (`text_1`, `url_image_1`); a body whose
# channel is unknown may be one, so it is scanned too. Others skip the scan.
_NUMBERED_KEY_CHANNELS = frozenset({"mms", None})


# (text, sender, media, action, keyword): a plain tuple, built once per inbound
# body; a NamedTuple's Python-level __new__ would cost more than the lookups.
Inbound = tuple[str | None, str | None, list[Media], Action, str | None]


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
    user_response = wire.user_response
    content = wire.content
    action_obj = None
    media: list[Media] = []
    if user_response is not None and user_response.mo_message is not None:
        message = user_response.mo_message or None
    else:
        message = None
    if content:
        action_obj = content.get("end_user_action")
        if type(action_obj) is not dict:
            action_obj = None
        if message is None:
            message = _text(content, action_obj, channel)
        # Media lives in RCS `file` and MMS numbered keys; other bodies skip the call.
        if "file" in content or channel in _NUMBERED_KEY_CHANNELS:
            media = _media(content, channel)

    sender = (user_response.sender_id if user_response is not None else None) or wire.rcs_sender_id \
        or wire.waba_phone_number or None

    ts_action = ts_keyword = None
    if user_response is not None:
        ts_action = telesign_action(user_response.action)
        ts_keyword = user_response.keyword or None
    if ts_action is None and action_obj is not None:
        ts_action = telesign_action(action_obj.get("action"))
        ts_keyword = _str(action_obj.get("keyword"))
        event_name = _str(action_obj.get("event"))
        if ts_action is None and event_name and event_name.lower() == "unsubscribe":
            ts_action, ts_keyword = Action.STOP, event_name.lower()
    if ts_action is not None:
        return message, sender, media, ts_action, ts_keyword
    action, keyword = detect(message)
    return message, sender, media, action, keyword


def _str(value: Any) -> str | None:
    """A text from the untyped `content`: numbers become their text; a dict, list or boolean is no text."""
    if type(value) is str:
        return value or None
    if value is None:
        return None
    return text(value)


def _text(content: dict[str, Any], action_obj: dict | None, channel: str | None) -> str | None:
    # The places a text lives, in order: Viber `text`, WhatsApp `content.body`,
    # RCS/WhatsApp `end_user_action.text`. A str is taken as is; only other
    # types pay for _str's conversion.
    value = content.get("text")
    if value is not None:
        value = value if type(value) is str else _str(value)
        if value:
            return value
    inner = content.get("content")
    if type(inner) is dict:
        value = _str(inner.get("body"))
        if value is not None:
            return value
    if action_obj is not None:
        value = _str(action_obj.get("text"))
        if value is not None:
            return value
    # MMS: numbered `text_1`, `text_2`, ... joined in numeric order.
    if channel in _NUMBERED_KEY_CHANNELS:
        numbered = _numbered(content, "text_")
        if numbered:
            return numbered[0] if len(numbered) == 1 else "\n".join(numbered)
    return None


def _numbered(content: dict[str, Any], prefix: str) -> list[str]:
    """String values of keys `<prefix><N>` (N digits), in numeric order of N."""
    found = []
    start = len(prefix)
    for key, value in content.items():
        if type(value) is str and key.startswith(prefix):
            number = key[start:]
            if number.isdigit():
                found.append((int(number), value))
    if len(found) == 1:
        return [found[0][1]]
    found.sort()
    return [value for _, value in found]


def _media(content: dict[str, Any], channel: str | None) -> list[Media]:
    media: list[Media] = []
    file = content.get("file")
    if type(file) is dict:
        payload = file.get("payload")
        if type(payload) is dict:
            size = payload.get("size_bytes")
            media.append(
                Media(
                    _str(payload.get("uri") or payload.get("url")),
                    _str(payload.get("mime_type")),
                    _str(payload.get("name")),
                    size if type(size) is int else None,
                )
            )
    # MMS: `url_image_1`, `url_video_1`, ... by kind, then number.
    if channel not in _NUMBERED_KEY_CHANNELS:
        return media
    urls = [(key, value) for key, value in content.items() if key.startswith("url_") and type(value) is str]
    if len(urls) > 1:
        urls.sort(key=_url_order)
    for _, value in urls:
        media.append(Media(value))
    return media


def _url_order(item: tuple[str, str]) -> tuple[str, int, str]:
    kind, _, number = item[0].rpartition("_")
    return (kind, int(number), "") if number.isdigit() else (item[0], 0, item[0])

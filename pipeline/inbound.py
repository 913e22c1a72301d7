"""Inbound (mobile-originated) messages, status 1500 (seed 003), one shape per channel.

Where the text, the sender and the media live differs per channel; this
module knows each place. Telesign's own keyword action wins; otherwise the
text is matched against the keyword map (pipeline/keywords.py).
"""

from __future__ import annotations

from typing import Any

from pipeline.event import Action, Media
from pipeline.keywords import KeywordMap, detect, telesign_action
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


def inbound_of(wire: WireCallback, channel: str | None, keywords: KeywordMap | None = None) -> Inbound:
    """Text, sender, media and keyword action of an inbound body; `keywords` None means the default map."""
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
        texts, urls = _numbered_parts(content) if channel in _NUMBERED_KEY_CHANNELS else _NO_PARTS
        if message is None:
            message = _text(content, action_obj)
            if message is None and texts:
                message = texts[0] if len(texts) == 1 else "\n".join(texts)
        if "file" in content:
            media = _file_media(content["file"])
        for url in urls:
            media.append(Media(url))

    sender = (user_response.sender_id if user_response is not None else None) or wire.rcs_sender_id \
        or wire.waba_phone_number or None

    ts_action = ts_keyword = None
    if user_response is not None and user_response.action is not None:
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
    if keywords is None:
        action, keyword = detect(message)
    else:
        country = None
        if keywords.languages:
            country = (user_response.iso_country_code if user_response is not None else None) \
                or (_str(action_obj.get("iso_country_code")) if action_obj is not None else None)
        action, keyword = keywords.detect(message, channel, country)
    return message, sender, media, action, keyword


def _str(value: Any) -> str | None:
    """A text from the untyped `content`: numbers become their text; a dict, list or boolean is no text."""
    if type(value) is str:
        return value or None
    if value is None:
        return None
    return text(value)


def _text(content: dict[str, Any], action_obj: dict | None) -> str | None:
    """The places a text lives, in order: Viber `text`, WhatsApp `content.body`, RCS/WhatsApp `end_user_action.text`."""
    value = content.get("text")
    if value is not None:
        value = value if type(value) is str else _str(value)  # a str is taken as is
        if value:
            return value
    inner = content.get("content")
    if type(inner) is dict:
        value = _str(inner.get("body"))
        if value is not None:
            return value
    if action_obj is not None:
        return _str(action_obj.get("text"))
    return None


_NO_PARTS: tuple[list[str], list[str]] = ([], [])


def _numbered_parts(content: dict[str, Any]) -> tuple[list[str], list[str]]:
    """MMS parts in one pass: texts of `text_<N>` by N, URLs of `url_<kind>_<N>` by kind, then N.

    Most MMS carry one text and one image, so single parts skip the sorting.
    """
    texts: list[tuple[int, str]] = []
    urls: list[tuple[str, str]] = []
    for key, value in content.items():
        if type(value) is not str:
            continue
        if key[:5] == "text_":
            number = key[5:]
            if number.isdigit():
                texts.append((int(number), value))
        elif key[:4] == "url_":
            urls.append((key, value))
    if len(texts) > 1:
        texts.sort()
    if len(urls) > 1:
        urls.sort(key=_url_order)
    return [value for _, value in texts] if texts else [], [value for _, value in urls] if urls else []


def _url_order(item: tuple[str, str]) -> tuple[str, int, str]:
    kind, _, number = item[0].rpartition("_")
    return (kind, int(number), "") if number.isdigit() else (item[0], 0, item[0])


def _file_media(file: Any) -> list[Media]:
    """RCS `content.file.payload`: one medium, unknown parts None."""
    payload = file.get("payload") if type(file) is dict else None
    if type(payload) is not dict:
        return []
    size = payload.get("size_bytes")
    return [
        Media(
            _str(payload.get("uri") or payload.get("url")),
            _str(payload.get("mime_type")),
            _str(payload.get("name")),
            size if type(size) is int else None,
        )
    ]

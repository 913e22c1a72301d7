"""Keyword actions for inbound messages (seed 003, "Keyword handling"), from a map the sender owns.

The whole message must be the keyword: "stop" is an opt-out, "please stop
calling me at 3" is not, because an opt-out is a legal fact and a false
positive silences a customer who never asked to be silenced.

A KeywordMap starts from a named preset (`telesign`: the seed's table, the
default; `ctia`: that plus the US carriers' common set) and adds or
overrides keywords globally, per channel and per language. A keyword
outside stop/help/start (JOIN, PROMO) maps to `generic`: its events keep
`action: "generic"` and carry the keyword, so plug-ins and destinations can
filter on it while the event's shape stays the contract's.

Pure: `parse_keyword_map` takes already-read data (config/keywords.py reads
the variable and files). Detection with the default map is one dict lookup,
as before; scoped lookups cost only maps that have scopes.
"""

from __future__ import annotations

import string
from collections.abc import Iterable, Mapping
from typing import Any

import msgspec

from pipeline.event import Action

_TRAILING = string.whitespace + string.punctuation + "¡¿…。！？"
_ACTIONS = {a.value: a for a in Action}
_NO_KEYWORD = (Action.GENERIC, None)
# Channels a scope may name (the event's channel values).
SCOPE_CHANNELS = ("sms", "mms", "rcs", "viber", "whatsapp", "email")


def _words(action: Action, words: Iterable[str]) -> dict[str, Action]:
    return {word: action for word in words}


PRESETS: dict[str, dict[str, Action]] = {
    "telesign": {
        **_words(Action.STOP, ("arrêt", "arret", "cancel", "end", "quit", "stop", "unsubscribe")),
        **_words(Action.HELP, ("aide", "contact", "help", "info")),
        "start": Action.START,
    },
}
# CTIA's Messaging Principles and Best Practices: the opt-out and opt-in words US carriers honour.
PRESETS["ctia"] = {
    **PRESETS["telesign"],
    **_words(Action.STOP, ("stopall", "optout", "revoke")),
    **_words(Action.START, ("unstop", "yes")),
}
DEFAULT_PRESET = "telesign"
# Kept for callers of the seed's table by its old name.
KEYWORDS = PRESETS[DEFAULT_PRESET]


class KeywordMapError(ValueError):
    """A keyword map that cannot be used; str(err) is one line naming the problem."""


def normalize(text: str) -> str:
    """What a message and a keyword are compared as: trimmed of white space and trailing punctuation, case-folded."""
    return text.strip().rstrip(_TRAILING).strip().casefold()


class KeywordMap(msgspec.Struct, frozen=True, kw_only=True):
    """keyword -> action: global (preset plus the sender's own), and overrides per channel and per language.

    A language scope is keyed by the body's `iso_country_code`, the same key
    TSPIPE_AUTOREPLIES picks a reply text by. Lookup order: channel, then
    language, then global; the first scope that knows the word decides.
    """

    preset: str = DEFAULT_PRESET
    words: dict[str, Action] = {}
    channels: dict[str, dict[str, Action]] = {}
    languages: dict[str, dict[str, Action]] = {}

    @property
    def scoped(self) -> bool:
        return bool(self.channels or self.languages)

    def detect(self, text: str | None, channel: str | None = None,
               country: str | None = None) -> tuple[Action, str | None]:
        """(action, matched keyword) for a message text; generic with no keyword when nothing matches."""
        if not text:
            return _NO_KEYWORD
        word = normalize(text)
        action = None
        if channel is not None and self.channels:
            action = self.channels.get(channel, _EMPTY).get(word)
        if action is None and country and self.languages:
            action = self.languages.get(country.upper(), _EMPTY).get(word)
        if action is None:
            action = self.words.get(word)
        if action is None:
            return _NO_KEYWORD
        return action, word

    def rows(self) -> list[tuple[str, str, list[str]]]:
        """(scope, action, keywords) in a stable order: what `tspipe config check` prints."""
        scopes = [("all", self.words)]
        scopes += [(f"channel {name}", words) for name, words in sorted(self.channels.items())]
        scopes += [(f"language {name}", words) for name, words in sorted(self.languages.items())]
        out = []
        for scope, words in scopes:
            for action in Action:
                found = sorted(word for word, a in words.items() if a is action)
                if found:
                    out.append((scope, action.value, found))
        return out


_EMPTY: dict[str, Action] = {}

DEFAULT_MAP = KeywordMap(words=dict(PRESETS[DEFAULT_PRESET]))


def detect(text: str | None) -> tuple[Action, str | None]:
    """Detection with the default (`telesign`) map: the hot path when no map is configured.

    The whole text counts: trimmed of white space and trailing punctuation,
    then case-folded (CONTRACT.md section 1).
    """
    if not text:
        return _NO_KEYWORD
    word = text.strip().rstrip(_TRAILING).strip().casefold()
    action = KEYWORDS.get(word)
    if action is None:
        return _NO_KEYWORD
    return action, word


def telesign_action(value: object) -> Action | None:
    """Telesign's own action, when it sent one we know; it wins over tspipe's detection."""
    if isinstance(value, str):
        return _ACTIONS.get(value.strip().lower())
    return None


# --- building a map from the sender's data (JSON object or TOML table, already parsed) ---

_SECTIONS = ("preset", "keywords", "channels", "languages")


def parse_keyword_map(data: Any) -> KeywordMap:
    """A KeywordMap from `{"preset", "keywords", "channels", "languages"}`, or a preset's name alone.

    Raises KeywordMapError with one line naming the problem (for a conflict: the keyword and both actions).
    """
    if isinstance(data, str):
        data = {"preset": data}
    if not isinstance(data, Mapping):
        raise KeywordMapError("must be a preset name or an object with preset, keywords, channels, languages")
    unknown = sorted(set(data) - set(_SECTIONS))
    if unknown:
        raise KeywordMapError(f"unknown section {unknown[0]!r}; use {', '.join(_SECTIONS)}")
    preset = data.get("preset", DEFAULT_PRESET)
    if preset not in (*PRESETS, "none"):
        raise KeywordMapError(f"unknown preset {preset!r}; use {', '.join(PRESETS)} or none")
    words = dict(PRESETS.get(preset, {}))
    words.update(_scope("keywords", data.get("keywords", {})))
    channels = {}
    for name, table in _table("channels", data.get("channels", {})).items():
        if name not in SCOPE_CHANNELS:
            raise KeywordMapError(f"channels: unknown channel {name!r}; use {', '.join(SCOPE_CHANNELS)}")
        channels[name] = _scope(f"channels.{name}", table)
    languages = {}
    for name, table in _table("languages", data.get("languages", {})).items():
        code = str(name).strip().upper()
        if not code.isalpha() or not 2 <= len(code) <= 3:
            raise KeywordMapError(f"languages: {name!r} is not a country code like US or FR (the body's iso_country_code)")
        if code in languages:
            raise KeywordMapError(f"languages: {name!r} appears twice")
        languages[code] = _scope(f"languages.{name}", table)
    return KeywordMap(preset=preset, words=words, channels=channels, languages=languages)


def _table(where: str, value: Any) -> Mapping:
    if not isinstance(value, Mapping):
        raise KeywordMapError(f"{where} must be an object")
    return value


def _scope(where: str, table: Any) -> dict[str, Action]:
    """One scope's keyword -> action, normalized; two spellings of one keyword with different actions are refused."""
    out: dict[str, Action] = {}
    spelled: dict[str, str] = {}
    for raw, value in _table(where, table).items():
        word = normalize(str(raw))
        if not word:
            raise KeywordMapError(f"{where}: keyword {raw!r} is empty once trimmed")
        action = _ACTIONS.get(value.strip().lower()) if isinstance(value, str) else None
        if action is None:
            raise KeywordMapError(f"{where}: {raw!r} maps to {value!r}; use stop, help, start or generic")
        if word in out and out[word] is not action:
            raise KeywordMapError(
                f"keyword {word!r} is mapped to two actions in {where}: "
                f"{out[word].value} ({spelled[word]!r}) and {action.value} ({raw!r})"
            )
        out[word] = action
        spelled[word] = str(raw)
    return out

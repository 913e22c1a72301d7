"""Keyword actions for inbound messages (seed 003, "Keyword handling").

The whole message must be the keyword: "stop" is an opt-out, "please stop
calling me at 3" is not, because an opt-out is a legal fact and a false
positive silences a customer who never asked to be silenced.
"""

from __future__ import annotations

import string

from pipeline.event import Action

KEYWORDS: dict[str, Action] = {
    **{k: Action.STOP for k in ("arrêt", "arret", "cancel", "end", "quit", "stop", "unsubscribe")},
    **{k: Action.HELP for k in ("aide", "contact", "help", "info")},
    "start": Action.START,
}

_TRAILING = string.whitespace + string.punctuation + "¡¿…。！？"
_ACTIONS = {a.value: a for a in Action}


_NO_KEYWORD = (Action.GENERIC, None)


def detect(text: str | None) -> tuple[Action, str | None]:
    """(action, matched keyword) for a message text; generic with no keyword when nothing matches.

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

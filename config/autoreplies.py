"""TSPIPE_AUTOREPLIES: the auto-reply texts per keyword action and language.

Parsed here, under every process, so `tspipe config check` and each process refuse
a bad value with the same line without importing the workers that send the
replies (workers/actions.py picks the text, workers/tasks.py sends it).
"""

from __future__ import annotations

import os
from functools import lru_cache

import msgspec

from config.errors import ConfigError


@lru_cache(maxsize=8)
def load_autoreplies(raw: str | None) -> dict[str, dict[str, str]]:
    """Parse TSPIPE_AUTOREPLIES (JSON text or a path to a JSON file); unset means no replies."""
    if not raw:
        return {}
    text = raw
    if not raw.lstrip().startswith("{"):
        if not os.path.exists(raw):
            raise ConfigError("TSPIPE_AUTOREPLIES", f"is neither JSON nor an existing file: {raw!r}")
        with open(raw, encoding="utf-8") as handle:
            text = handle.read()
    try:
        return msgspec.json.decode(text, type=dict[str, dict[str, str]])
    except msgspec.DecodeError as exc:
        raise ConfigError("TSPIPE_AUTOREPLIES", f"must map action -> {{language: text}}: {exc}") from None

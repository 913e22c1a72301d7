"""TSPIPE_KEYWORDS: the sender's keyword map, as a preset name, JSON, or a path to a .json/.toml file.

Read here (files are I/O) and built by pipeline.keywords (pure). Parsed once
per process and value: decode asks for the map on every batch.
"""

from __future__ import annotations

import json
import tomllib
from functools import lru_cache
from pathlib import Path

from pipeline.keywords import DEFAULT_MAP, PRESETS, KeywordMap, KeywordMapError, parse_keyword_map

VARIABLE = "TSPIPE_KEYWORDS"


def _no_conflicting_keys(pairs: list[tuple[str, object]]) -> dict:
    """json.loads keeps the last of two equal keys silently; a keyword given two actions is refused instead."""
    out: dict = {}
    for key, value in pairs:
        if key in out and out[key] != value:
            if isinstance(value, str) and isinstance(out[key], str):
                raise KeywordMapError(f"keyword {key!r} is mapped to two actions: {out[key]} and {value}")
            raise KeywordMapError(f"{key!r} appears twice")
        out[key] = value
    return out


def _read(raw: str) -> object:
    text = raw.strip()
    if text in PRESETS or text == "none":
        return text
    if text.startswith("{"):
        try:
            return json.loads(text, object_pairs_hook=_no_conflicting_keys)
        except json.JSONDecodeError as exc:
            raise KeywordMapError(f"invalid JSON: {exc}") from None
    path = Path(text)
    if not path.is_file():
        raise KeywordMapError(f"neither a preset ({', '.join(PRESETS)}), a JSON object nor an existing .json/.toml file: {text!r}")
    try:
        if path.suffix == ".toml":
            return tomllib.loads(path.read_text(encoding="utf-8"))
        if path.suffix == ".json":
            return json.loads(path.read_text(encoding="utf-8"), object_pairs_hook=_no_conflicting_keys)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise KeywordMapError(f"{path}: {exc}") from None
    raise KeywordMapError(f"file must end in .json or .toml: {text!r}")


@lru_cache(maxsize=8)
def keyword_map(raw: str | None) -> KeywordMap:
    """The map a TSPIPE_KEYWORDS value names (unset: the telesign preset). Raises KeywordMapError (a ValueError)."""
    if raw is None or not raw.strip():
        return DEFAULT_MAP
    return parse_keyword_map(_read(raw))


def validated(raw: str) -> str:
    """The settings parser: keeps the text (what `config check` shows) once the map it names is valid."""
    keyword_map(raw.strip())
    return raw.strip()

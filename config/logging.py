"""Structured logs: JSON in production, readable on a terminal, never a phone number or a secret.

Masking is a processor every log line passes through, not a habit each
call site must remember: phone numbers and e-mail addresses anywhere in a
log line keep only their last 4 digits / their domain, and values under
secret-looking keys are replaced whole.
"""

from __future__ import annotations

import logging
import re
import sys
from typing import Any, TextIO

import structlog

from config.masking import SECRET_WORDS as SECRET_KEYS  # one list for logs and printed configuration
from config.masking import mask_secrets
from config.settings import Settings
# Ids are hex or opaque and may hold digit runs that look like phone numbers: never rewrite them.
ID_KEYS = frozenset({"event_id", "reference_id", "request_id", "external_id", "id", "timestamp", "pid"})

_PHONE = re.compile(r"(?<![\w.])\+?\d[\d \-().]{5,18}\d(?![\w.])")
# Starts only where a run of address characters starts: unanchored, a long run without '@' was
# rescanned from every position (quadratic).
_EMAIL = re.compile(r"(?<![A-Za-z0-9._%+\-])[A-Za-z0-9._%+\-]{1,64}@([A-Za-z0-9.\-]{1,255}\.[A-Za-z]{2,})")


_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def mask_phone(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group(0))
    if len(digits) < 7 or _DATE.fullmatch(match.group(0)):
        return match.group(0)
    return "*" * (len(digits) - 4) + digits[-4:]


# A UUID (Celery task ids, spool batch ids) is matched first and kept whole: its all-digit groups
# ("…-0547-1…") would otherwise look like a phone number, and a log line could no longer be
# found by its task id.
_UUID_OR_PHONE = re.compile(
    r"(?P<uuid>(?<![\w-])[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}(?![\w-]))|"
    + _PHONE.pattern
)


def _mask_phone_not_uuid(match: re.Match[str]) -> str:
    return match.group(0) if match.group("uuid") else mask_phone(match)


# Longest string value a log line carries: aiohttp logs a junk request line whole, and a callback body
# can be 64 KB; nobody reads more in a log, and masking cost grows with the length.
LOG_VALUE_MAX = 16 * 1024


def mask_text(text: str) -> str:
    cut = len(text) - LOG_VALUE_MAX
    if cut > 0:
        text = text[:LOG_VALUE_MAX]
    text = mask_secrets(text)
    text = _EMAIL.sub(lambda m: "***@" + m.group(1), text)
    text = _UUID_OR_PHONE.sub(_mask_phone_not_uuid, text)
    return text + f"... [{cut} more characters not logged]" if cut > 0 else text


def _mask_value(key: str, value: Any) -> Any:
    lowered = key.lower()
    if any(word in lowered for word in SECRET_KEYS):
        return "***" if value else value
    if lowered in ID_KEYS:
        return value
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, dict):
        return {k: _mask_value(str(k), v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_mask_value(key, v) for v in value]
    return value


def mask_processor(_logger: Any, _name: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    return {key: _mask_value(key, value) for key, value in event_dict.items()}


def configure_logging(settings: Settings, stream: TextIO | None = None) -> None:
    """Configure structlog and route the standard library's logging (Celery, aiohttp) through it."""
    stream = stream or sys.stderr
    level = getattr(logging, settings.log_level.upper())
    fmt = settings.log_format
    if fmt == "auto":
        fmt = "console" if hasattr(stream, "isatty") and stream.isatty() else "json"
    renderer: Any = structlog.processors.JSONRenderer() if fmt == "json" else structlog.dev.ConsoleRenderer(colors=False)
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        mask_processor,
    ]
    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=stream),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    ))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)

"""Secrets out of printed configuration: one masker for `config check`, start-up errors and logs.

Configuration values can carry secrets inside them: a password in a URL, a
webhook signing `secret` in TSPIPE_DESTINATIONS' JSON, a token in a query
string. Marking whole settings secret is not enough, so printed values pass
through `mask_secrets`, which keeps the shape (the operator still sees which
destination, which host) and replaces only the secret parts with ***.
"""

from __future__ import annotations

import re

# A key whose name holds one of these words has a secret value (JSON, TOML, query strings, log fields).
SECRET_WORDS = ("api_key", "apikey", "authorization", "secret", "token", "password", "signature", "credential")

_WORDS = "|".join(SECRET_WORDS)
_URL_PASSWORD = re.compile(r"([a-zA-Z][a-zA-Z0-9+.\-]*://[^:/@\s\"']*):[^@\s\"'/]+@")
# "secret": "value" (JSON), secret = "value" (TOML), 'secret': 'value' (a repr)
_KEYED_VALUE = re.compile(
    rf"""((["']?)[\w.\-]*(?:{_WORDS})[\w.\-]*\2\s*[:=]\s*)("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')""", re.IGNORECASE
)
_QUERY_VALUE = re.compile(rf"([?&][^=&\s\"']*(?:{_WORDS})[^=&\s\"']*=)[^&\s\"']+", re.IGNORECASE)


def is_secret_name(name: str) -> bool:
    lowered = name.lower()
    return any(word in lowered for word in SECRET_WORDS)


def mask_secrets(text: str) -> str:
    """`text` with URL passwords, values under secret-looking keys and secret query parameters replaced by ***."""
    text = _URL_PASSWORD.sub(r"\1:***@", text)
    text = _KEYED_VALUE.sub(lambda m: m.group(1) + m.group(3)[0] + "***" + m.group(3)[0], text)
    return _QUERY_VALUE.sub(r"\1***", text)

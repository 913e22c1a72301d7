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
# Every pattern starts only where its run of name characters starts (the lookbehinds) and bounds that
# run: these run on every string of every log line, attacker-chosen text included (aiohttp logs a bad
# request line), and the unanchored `[\w.\-]*secret` form backtracked cubically: 8,000 chars without a
# match took 15 s, and a 1 MB junk request line wedged the ingress's event loop for minutes.
_URL_PASSWORD = re.compile(r"((?<![a-zA-Z0-9+.\-])[a-zA-Z][a-zA-Z0-9+.\-]{0,31}://[^:/@\s\"']{0,256}):[^@\s\"'/]{1,256}@")
# "secret": "value" (JSON), secret = "value" (TOML), 'secret': 'value' (a repr); a value the text
# ends inside (a log value cut to its length cap) is masked too.
_KEYED_VALUE = re.compile(
    rf"""((?<![\w.\-])(["']?)[\w.\-]{{0,64}}?(?:{_WORDS})[\w.\-]{{0,64}}\2\s{{0,8}}[:=]\s{{0,8}})("(?:[^"\\]|\\.)*(?:"|$)|'(?:[^'\\]|\\.)*(?:'|$))""",
    re.IGNORECASE,
)
_QUERY_VALUE = re.compile(rf"([?&][^=&\s\"']{{0,64}}?(?:{_WORDS})[^=&\s\"']{{0,64}}=)[^&\s\"']+", re.IGNORECASE)


def is_secret_name(name: str) -> bool:
    lowered = name.lower()
    return any(word in lowered for word in SECRET_WORDS)


def mask_secrets(text: str) -> str:
    """`text` with URL passwords, values under secret-looking keys and secret query parameters replaced by ***."""
    text = _URL_PASSWORD.sub(r"\1:***@", text)
    text = _KEYED_VALUE.sub(lambda m: m.group(1) + m.group(3)[0] + "***" + m.group(3)[0], text)
    return _QUERY_VALUE.sub(r"\1***", text)

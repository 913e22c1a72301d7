"""Typed settings, read from the environment once (twelve-factor, for a PaaS).

Every setting is declared once in SETTINGS with its variable name, default and
meaning; the README table and `tspipe config check` are generated from it, so
documentation and behaviour cannot drift apart.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import msgspec

from config.errors import ConfigError
from config.masking import mask_secrets
from config.keywords import validated as keyword_map_text

CHANNELS = ("sms", "mms", "rcs", "viber", "whatsapp", "email", "verify")

# Where a client points when REDIS_URL is unset outside `tspipe run`: nowhere, on purpose, so it
# fails with a connection error naming this URL instead of silently using somebody else's 6379.
UNREACHABLE_REDIS_URL = "redis://127.0.0.1:1/0"


# --- parsers: each takes the raw string and returns a value or raises ValueError with a reason ---


def _int(minimum: int | None = None) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        try:
            value = int(raw.strip())
        except ValueError:
            raise ValueError(f"must be an integer, got {raw!r}") from None
        if minimum is not None and value < minimum:
            raise ValueError(f"must be at least {minimum}, got {value}")
        return value

    return parse


def _float(minimum: float | None = None) -> Callable[[str], float]:
    def parse(raw: str) -> float:
        try:
            value = float(raw.strip())
        except ValueError:
            raise ValueError(f"must be a number, got {raw!r}") from None
        if value != value or (minimum is not None and value < minimum):
            raise ValueError(f"must be a number of at least {minimum}, got {raw!r}")
        return value

    return parse


def _bool(raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"must be true or false, got {raw!r}")


def _url(*schemes: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        value = raw.strip()
        parts = urlsplit(value)
        if parts.scheme not in schemes or not parts.netloc:
            raise ValueError(f"must be a URL starting with {' or '.join(s + '://' for s in schemes)}, got {_mask_url(value)!r}")
        return value.rstrip("/") if parts.scheme.startswith("http") else value

    return parse


def _postgres_url(raw: str) -> str:
    """A libpq URL; the host may be empty (a unix socket given by ?host=), as PaaS and pgserver write them."""
    value = raw.strip()
    if urlsplit(value).scheme not in ("postgres", "postgresql"):
        raise ValueError(f"must be a URL starting with postgresql:// or postgres://, got {_mask_url(value)!r}")
    return value


def _str(raw: str) -> str:
    return raw.strip()


def _choice(*options: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        value = raw.strip().lower()
        if value not in options:
            raise ValueError(f"must be one of {', '.join(options)}, got {raw!r}")
        return value

    return parse


def _keys(raw: str) -> tuple[str, ...]:
    """Several API keys, separated by commas or white space, so keys can be rotated without downtime.

    Each must decode to a usable key, checked here so every process (and `config check`) refuses the
    same value with the same line, instead of the web process dying later on a binascii.Error.
    """
    from pipeline.signature import decode_api_key

    keys = tuple(k for k in raw.replace(",", " ").split() if k)
    for number, key in enumerate(keys, 1):
        try:
            decode_api_key(key)
        except ValueError as exc:
            which = f"key {number} of {len(keys)}" if len(keys) > 1 else "the key"
            raise ValueError(f"{which} {exc}") from None
    return keys


def _channels(raw: str) -> tuple[str, ...]:
    values = tuple(c.strip().lower() for c in raw.split(",") if c.strip())
    for value in values:
        if value not in CHANNELS:
            raise ValueError(f"unknown channel {value!r}; known channels: {', '.join(CHANNELS)}")
    return values


def _json_or_path(raw: str) -> str:
    """Kept as text here; the module that owns the shape validates it (see config/destinations.py)."""
    return raw.strip()


def _mask_url(url: str) -> str:
    return mask_secrets(url)


@dataclass(frozen=True)
class Setting:
    field: str
    env: str
    default: Any
    parse: Callable[[str], Any]
    doc: str
    secret: bool = False


SETTINGS: tuple[Setting, ...] = (
    Setting("redis_url", "REDIS_URL", None, _url("redis", "rediss", "unix"),
            "Redis for the queue and the state store. Unset: `tspipe run` starts an embedded Redis under TSPIPE_DATA_DIR.", secret=False),
    Setting("telesign_customer_id", "TELESIGN_CUSTOMER_ID", None, _str,
            "Your Telesign customer id: checked in callback signatures when present, and used for auto-replies and status polls."),
    Setting("telesign_api_keys", "TELESIGN_API_KEY", (), _keys,
            "Telesign API key(s), base64, each decoding to at least 16 bytes (start-up refuses anything shorter, such as an env file's `""`). Several, separated by commas, during a key rotation. Unset: callbacks are NOT authenticated (a warning is logged).", secret=True),
    Setting("telesign_api_url", "TELESIGN_API_URL", "https://rest-ws.telesign.com", _url("http", "https"),
            "Base URL of Telesign's REST API, for auto-replies and status polls."),
    Setting("port", "PORT", 8000, _int(1), "Port the web process listens on."),
    Setting("host", "TSPIPE_HOST", "0.0.0.0", _str, "Address the web process binds."),
    Setting("data_dir", "TSPIPE_DATA_DIR", ".tspipe", _str, "Local folder for the embedded Redis data and the ingress spool."),
    Setting("max_body_bytes", "TSPIPE_MAX_BODY_BYTES", 65536, _int(1), "Largest callback body accepted; larger ones get 413."),
    Setting("header_timeout_seconds", "TSPIPE_HEADER_TIMEOUT_S", 10.0, _float(0.1), "Seconds a client has from connecting to finish sending request headers (and most an idle keep-alive connection stays open); slow clients are disconnected."),
    Setting("batch_max_records", "TSPIPE_BATCH_MAX_RECORDS", 500, _int(1), "Most callbacks written to Redis in one round trip."),
    Setting("batch_max_wait_ms", "TSPIPE_BATCH_MAX_WAIT_MS", 5.0, _float(0), "Under steady traffic, the least time between two queue writes, in milliseconds: callbacks wait up to this long to share a batch (a lone callback after a quiet spell is written at once)."),
    Setting("batch_target_records", "TSPIPE_BATCH_TARGET_RECORDS", 32, _int(1), "A batch this large is written without waiting for TSPIPE_BATCH_MAX_WAIT_MS: enough callbacks to amortize a worker's per-message cost."),
    Setting("max_pending_requests", "TSPIPE_MAX_PENDING", 20000, _int(1), "Requests waiting for a write before the ingress answers 503 (back-pressure)."),
    Setting("spool_dir", "TSPIPE_SPOOL_DIR", None, _str, "Where the ingress spools batches while Redis is down. Default: TSPIPE_DATA_DIR/spool."),
    Setting("spool_max_bytes", "TSPIPE_SPOOL_MAX_BYTES", 512 * 1024 * 1024, _int(1), "Spool size at which the ingress answers 503 instead of 200."),
    Setting("channels", "TSPIPE_CHANNELS", CHANNELS, _channels, "Channels accepted on /callbacks/{channel}, comma-separated."),
    Setting("api_token", "TSPIPE_API_TOKEN", None, _str, "Bearer token for the query API and the dashboard. Unset: they answer loopback clients only (403 to anyone else; a warning is logged).", secret=True),
    Setting("queue", "TSPIPE_QUEUE", "tspipe.ingest", _str, "Celery queue that carries callback batches."),
    Setting("worker_concurrency", "TSPIPE_WORKER_CONCURRENCY", 2, _int(1), "Celery worker processes."),
    Setting("state_ttl_seconds", "TSPIPE_STATE_TTL_SECONDS", 3 * 86400, _int(60), "How long Redis keeps a message's state, history and dedup set after its last event (then the archive answers)."),
    Setting("dedup_ttl_seconds", "TSPIPE_DEDUP_TTL_SECONDS", 86400, _int(60), "How long an event without a reference id is remembered for deduplication, and an unconfirmed fan-out is retried."),
    Setting("history_max", "TSPIPE_HISTORY_MAX", 50, _int(1), "Events kept in each message's history."),
    Setting("quarantine_max", "TSPIPE_QUARANTINE_MAX", 100000, _int(1), "Quarantined bodies kept (oldest dropped first)."),
    Setting("quarantine_max_bytes", "TSPIPE_QUARANTINE_MAX_BYTES", 32 * 1024 * 1024, _int(1024), "Bytes of quarantined bodies kept in Redis (oldest dropped first, counted in tspipe_quarantine_dropped_total)."),
    Setting("deadletter_max_bytes", "TSPIPE_DEADLETTER_MAX_BYTES", 128 * 1024 * 1024, _int(1024), "Bytes of dead letters kept in Redis (oldest dropped first, counted in tspipe_deadletters_dropped_total)."),
    Setting("destinations", "TSPIPE_DESTINATIONS", None, _json_or_path, "Downstream webhooks: JSON, or a path to a .json/.toml file (see README)."),
    Setting("plugins", "TSPIPE_PLUGINS", None, _str, "Extra plug-in tasks, comma-separated dotted paths (entry point group tspipe.plugins is always read)."),
    Setting("autoreplies", "TSPIPE_AUTOREPLIES", None, _json_or_path, "Auto-reply texts per action and language, JSON or a path. Unset: no auto-replies are sent."),
    Setting("reconcile_after_seconds", "TSPIPE_RECONCILE_AFTER_SECONDS", 600, _int(1), "Poll Telesign for a message still not final this long after its last event."),
    Setting("reconcile_max_per_run", "TSPIPE_RECONCILE_MAX_PER_RUN", 500, _int(1), "Most status polls in one reconciliation run."),
    Setting("reconcile_rate_per_second", "TSPIPE_RECONCILE_RATE", 10.0, _float(0.1), "Most status polls per second."),
    Setting("reconcile_interval_seconds", "TSPIPE_RECONCILE_INTERVAL_SECONDS", 60, _int(1), "How often beat runs the reconciliation."),
    Setting("journal_grace_seconds", "TSPIPE_JOURNAL_GRACE_S", 30.0, _float(1), "A queued batch not applied after this long, and neither queued nor held by a worker, is queued again (beat checks every third of it)."),
    Setting("delivery_lease_grace_seconds", "TSPIPE_DELIVERY_LEASE_GRACE_S", 30.0, _float(0.1), "A webhook the delivery engine claimed is taken over by another engine this long after the destination's timeout, should the engine that held it have died."),
    Setting("log_format", "TSPIPE_LOG_FORMAT", "auto", _choice("auto", "json", "console"), "Log format: json for production, console for a terminal, auto picks by whether stderr is a terminal."),
    Setting("log_level", "TSPIPE_LOG_LEVEL", "info", _choice("debug", "info", "warning", "error"), "Log level."),
    Setting("body_timeout_seconds", "TSPIPE_BODY_TIMEOUT_S", 10.0, _float(0.1), "Seconds a callback body that did not come with its headers may take to arrive; slower ones get 408 and the connection is closed."),
    Setting("max_slow_bodies", "TSPIPE_MAX_SLOW_BODIES", 256, _int(1), "Request bodies still arriving (not yet authenticated) at one time; beyond it a request gets 503 at once, so slow clients cannot hold every connection."),
    Setting("database_url", "DATABASE_URL", None, _postgres_url,
            "PostgreSQL for the event archive (search, retention, erasure). Unset: `tspipe run` starts an embedded PostgreSQL under TSPIPE_DATA_DIR; other commands run with the archive off."),
    Setting("archive_days", "TSPIPE_ARCHIVE_DAYS", 90, _int(1), "Days of events the archive keeps; beat drops older day partitions whole."),
    Setting("archive_backlog_max_bytes", "TSPIPE_ARCHIVE_BACKLOG_MAX_BYTES", 1024 * 1024 * 1024, _int(1024),
            "Most bytes of events waiting in Redis for the archive (while PostgreSQL is down or slow); past it new events skip the archive and tspipe_archive_dropped_total counts them."),
    Setting("erasure_key", "TSPIPE_ERASURE_KEY", None, _str,
            "Secret for the keyed hash that keeps an erased address's opt-out. Needed by `tspipe erase` and DELETE /v1/subjects; `tspipe run` makes one under TSPIPE_DATA_DIR when unset.", secret=True),
    Setting("alert_window_minutes", "TSPIPE_ALERT_WINDOW_MINUTES", 60, _int(1), "Delivery-rate alerts compare the last this many minutes of each channel, country and carrier with its baseline."),
    Setting("alert_baseline_days", "TSPIPE_ALERT_BASELINE_DAYS", 7, _int(1), "The baseline: the same hours of this many previous days."),
    Setting("alert_min_volume", "TSPIPE_ALERT_MIN_VOLUME", 50, _int(1), "Final messages a group needs in the window, and in its baseline, before it can raise an alert."),
    Setting("alert_min_drop", "TSPIPE_ALERT_MIN_DROP", 0.2, _float(0.01), "Fall of the delivery rate below the baseline (0.2 = 20 points) that raises an alert."),
    Setting("alert_interval_seconds", "TSPIPE_ALERT_INTERVAL_SECONDS", 60, _int(1), "How often beat evaluates the alerts (needs the archive)."),
    Setting("keywords", "TSPIPE_KEYWORDS", None, keyword_map_text,
            "Keyword map for inbound messages: a preset (telesign, ctia), JSON, or a path to a .json/.toml file (see README). Unset: the telesign preset."),
)


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    redis_url: str | None = None
    telesign_customer_id: str | None = None
    telesign_api_keys: tuple[str, ...] = ()
    telesign_api_url: str = "https://rest-ws.telesign.com"
    port: int = 8000
    host: str = "0.0.0.0"
    data_dir: str = ".tspipe"
    max_body_bytes: int = 65536
    header_timeout_seconds: float = 10.0
    batch_max_records: int = 500
    batch_max_wait_ms: float = 5.0
    batch_target_records: int = 32
    max_pending_requests: int = 20000
    spool_dir: str | None = None
    spool_max_bytes: int = 512 * 1024 * 1024
    channels: tuple[str, ...] = CHANNELS
    api_token: str | None = None
    queue: str = "tspipe.ingest"
    worker_concurrency: int = 2
    state_ttl_seconds: int = 3 * 86400
    dedup_ttl_seconds: int = 86400
    history_max: int = 50
    quarantine_max: int = 100000
    quarantine_max_bytes: int = 32 * 1024 * 1024
    deadletter_max_bytes: int = 128 * 1024 * 1024
    destinations: str | None = None
    plugins: str | None = None
    autoreplies: str | None = None
    reconcile_after_seconds: int = 600
    reconcile_max_per_run: int = 500
    reconcile_rate_per_second: float = 10.0
    reconcile_interval_seconds: int = 60
    journal_grace_seconds: float = 30.0
    delivery_lease_grace_seconds: float = 30.0
    log_format: str = "auto"
    log_level: str = "info"
    body_timeout_seconds: float = 10.0
    max_slow_bodies: int = 256
    database_url: str | None = None
    archive_days: int = 90
    archive_backlog_max_bytes: int = 1024 * 1024 * 1024
    erasure_key: str | None = None
    alert_window_minutes: int = 60
    alert_baseline_days: int = 7
    alert_min_volume: int = 50
    alert_min_drop: float = 0.2
    alert_interval_seconds: int = 60
    keywords: str | None = None

    @property
    def effective_spool_dir(self) -> str:
        return self.spool_dir or os.path.join(self.data_dir, "spool")

    @property
    def auth_enabled(self) -> bool:
        return bool(self.telesign_api_keys)


def load_settings(environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Read every setting from `environ` (default: os.environ). Raises ConfigError naming the variable."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for setting in SETTINGS:
        raw = env.get(setting.env)
        if raw is None or raw.strip() == "":
            continue
        try:
            values[setting.field] = setting.parse(raw)
        except ValueError as exc:
            raise ConfigError(setting.env, str(exc)) from None
    values.update(overrides)
    return Settings(**values)


def describe(settings: Settings) -> list[tuple[str, str, str]]:
    """(variable, effective value, meaning) for every setting, secrets masked: what `tspipe config check` prints.

    A setting marked secret is hidden whole; every other value still goes through mask_secrets, because
    secrets hide inside values (a webhook `secret` in TSPIPE_DESTINATIONS, a password in a URL).
    """
    rows = []
    for setting in SETTINGS:
        value = getattr(settings, setting.field)
        if setting.secret and value:
            shown = "***" if isinstance(value, str) else f"*** ({len(value)} set)"
        elif value is None:
            shown = "(unset)"
        elif isinstance(value, tuple):
            shown = mask_secrets(",".join(value))
        else:
            shown = mask_secrets(str(value))
        rows.append((setting.env, shown, setting.doc))
    return rows


_cached: Settings | None = None


def get_settings() -> Settings:
    """The process-wide settings, read on first use."""
    global _cached
    if _cached is None:
        _cached = load_settings()
    return _cached


def reset_settings_cache() -> None:
    """Forget the cached settings; tests and `tspipe run` call this after changing the environment."""
    global _cached
    _cached = None

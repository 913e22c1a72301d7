"""Downstream webhook destinations, parsed from TSPIPE_DESTINATIONS.

The setting is JSON (a list of objects) or a path to a .json/.toml file.
It is validated once at start-up into frozen Structs, so a typo in an
operator's config stops the process with a line naming the variable rather
than failing later, one delivery at a time.
"""

from __future__ import annotations

import json
import re
import tomllib
from functools import lru_cache
from pathlib import Path

import msgspec

from config.errors import ConfigError
from config.settings import get_settings
from pipeline.event import Event
from pipeline.webhooks import secret_bytes

VARIABLE = "TSPIPE_DESTINATIONS"
# Below the broker visibility timeout (workers/app.py) so a delayed retry is never redelivered early.
MAX_DELAY_SECONDS = 240
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


class Filter(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Which events a destination or plug-in wants. An empty list means "any".

    `keywords` matches the event's keyword case-folded and exactly ("JOIN"
    wants "join", not "join now"): a handler per keyword of the sender's map.
    """

    kinds: list[str] = []
    outcomes: list[str] = []
    channels: list[str] = []
    actions: list[str] = []
    keywords: list[str] = []
    final_only: bool = False

    def __post_init__(self) -> None:
        if self.keywords:
            msgspec.structs.force_setattr(self, "keywords", [k.strip().casefold() for k in self.keywords])

    def matches(self, event: Event) -> bool:
        if self.kinds and event.kind.value not in self.kinds:
            return False
        if self.outcomes and event.status.outcome.value not in self.outcomes:
            return False
        if self.channels and (event.channel is None or event.channel.value not in self.channels):
            return False
        if self.actions and (event.action is None or event.action.value not in self.actions):
            return False
        if self.keywords and (event.keyword is None or event.keyword.casefold() not in self.keywords):
            return False
        return not (self.final_only and not event.status.final)


class Destination(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: str
    url: str
    secret: str
    filter: Filter = Filter()
    timeout: float = 10.0
    max_attempts: int = 8
    max_age_seconds: float = 24 * 3600
    batch_size: int = 1
    # Celery rate limit string for this destination's queue consumer, e.g. "50/s".
    rate_limit: str | None = None
    # Exponential backoff with full jitter: sleep uniform(0, min(cap, base * 2**attempt)).
    # The cap stays under the broker's visibility timeout (300 s): a Redis-transport message
    # delayed longer than that is redelivered, i.e. sent twice.
    backoff_base: float = 2.0
    backoff_max: float = 240.0
    # Consecutive failures that open the circuit, and how long it stays open before a probe.
    circuit_threshold: int = 5
    circuit_cooldown: float = 30.0
    # Requests in flight to this destination at once, per delivery engine: its share, so a
    # receiver that hangs holds at most this many of the engine's requests.
    concurrency: int = 16
    # Deliveries waiting (new, or waiting for a retry or for the circuit to close) at most;
    # beyond it new ones go straight to the dead-letter store, so a destination that is down
    # for hours stops growing Redis and an operator sees why.
    max_queued: int = 100_000

    @property
    def queue(self) -> str:
        """The Celery queue of tspipe before the delivery engine: still drained (workers/delivery.py)."""
        return f"tspipe.dest.{self.name}"


_decoder = msgspec.json.Decoder(list[Destination])


def _load_text(raw: str) -> list:
    text = raw.strip()
    if text.startswith("["):
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(VARIABLE, f"invalid JSON: {exc}") from None
    path = Path(text)
    if not path.is_file():
        raise ConfigError(VARIABLE, f"neither a JSON list nor an existing .json/.toml file: {text!r}")
    try:
        if path.suffix == ".toml":
            data = tomllib.loads(path.read_text())
            return data.get("destinations", [])
        if path.suffix == ".json":
            return json.loads(path.read_text())
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(VARIABLE, f"{path}: {exc}") from None
    raise ConfigError(VARIABLE, f"file must end in .json or .toml: {text!r}")


def parse_destinations(raw: str | None) -> list[Destination]:
    """Validate the setting; raises ConfigError("TSPIPE_DESTINATIONS", why) on any problem."""
    if raw is None or not raw.strip():
        return []
    data = _load_text(raw)
    if not isinstance(data, list):
        raise ConfigError(VARIABLE, "must be a list of destinations")
    try:
        destinations = msgspec.convert(data, list[Destination])
    except msgspec.ValidationError as exc:
        raise ConfigError(VARIABLE, str(exc)) from None
    seen: set[str] = set()
    for index, dest in enumerate(destinations):
        where = f"destination {index} ({dest.name!r})"
        if not _NAME.match(dest.name):
            raise ConfigError(VARIABLE, f"{where}: name may hold only letters, digits, '.', '_' and '-'")
        if dest.name in seen:
            raise ConfigError(VARIABLE, f"{where}: duplicate name")
        seen.add(dest.name)
        if not dest.url.startswith(("http://", "https://")):
            raise ConfigError(VARIABLE, f"{where}: url must start with http:// or https://")
        try:
            secret_bytes(dest.secret)
        except ValueError as exc:
            raise ConfigError(VARIABLE, f"{where}: {exc}") from None
        if not 0 < dest.backoff_max <= MAX_DELAY_SECONDS or not 0 < dest.circuit_cooldown <= MAX_DELAY_SECONDS:
            raise ConfigError(VARIABLE, f"{where}: backoff_max and circuit_cooldown must be between 0 and {MAX_DELAY_SECONDS}")
        if dest.rate_limit is not None and not re.fullmatch(r"\d+(\.\d+)?/[sm]", dest.rate_limit):
            raise ConfigError(VARIABLE, f"{where}: rate_limit must look like 50/s or 600/m")
        if dest.timeout <= 0 or dest.max_attempts < 1 or dest.batch_size < 1 or dest.max_age_seconds <= 0:
            raise ConfigError(VARIABLE, f"{where}: timeout, max_attempts, batch_size and max_age_seconds must be positive")
        if dest.concurrency < 1 or dest.max_queued < 1:
            raise ConfigError(VARIABLE, f"{where}: concurrency and max_queued must be at least 1")
    return destinations


@lru_cache(maxsize=8)
def _parsed(raw: str | None) -> tuple[Destination, ...]:
    # A file's content may change between runs, not within one: parse once per process and setting.
    return tuple(parse_destinations(raw))


def load_destinations() -> tuple[Destination, ...]:
    """The destinations of the process-wide settings; parsed once, since fan-out asks on every batch."""
    return _parsed(get_settings().destinations)


def by_name(name: str) -> Destination | None:
    return next((d for d in load_destinations() if d.name == name), None)

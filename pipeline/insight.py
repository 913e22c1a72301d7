"""What the delivery figures need from one event: country, carrier, spend and timing (pure).

The normalized event (CONTRACT.md section 1) has no field for Telesign's
`additional_info` (mcc, mnc, price, currency, message_parts_count) nor for
`submit_timestamp`, so they are read here from the raw body the event carries.
This runs in the archive writer, once per archived event, never on the
ingress's hot path.

Where the groups come from:
- country: the phone number's region by Google's libphonenumber data
  (`phonenumbers`); when the number is absent or not valid, the region of its
  calling code, then the mcc's country;
- carrier: `mcc-mnc` (e.g. "310-004") where Telesign sends both, named by
  P1 Security's MCC/MNC dataset when the optional `mcc-mnc-p1` package is
  installed; otherwise the carrier libphonenumber knows for the number's
  prefix (e.g. "T-Mobile"); otherwise None.

A libphonenumber parse costs about 100 µs, so results are cached per
8-digit prefix of the number: region and carrier data are prefix tables
whose prefixes are almost never longer than that.
"""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from importlib import resources

import msgspec
import phonenumbers
from phonenumbers import carrier as _carrier_data

from pipeline.event import Event
from pipeline.timestamps import parse_timestamp

PREFIX_DIGITS = 8


class _AdditionalInfo(msgspec.Struct, gc=False):
    mcc: str | int | None = None
    mnc: str | int | None = None
    price: str | float | int | None = None
    currency: str | None = None
    message_parts_count: int | str | None = None


class _Extra(msgspec.Struct, gc=False):
    additional_info: _AdditionalInfo | None = None
    submit_timestamp: str | None = None


_EXTRA = msgspec.json.Decoder(_Extra, strict=False)


class Facts(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """The grouping keys and amounts of one event. Any of them may be unknown (None)."""

    country: str | None = None  # ISO 3166-1 alpha-2
    carrier: str | None = None  # "mcc-mnc", or libphonenumber's carrier name
    price: Decimal | None = None  # Telesign's price of one part
    currency: str | None = None
    parts: int = 1
    submitted_at: datetime | None = None

    @property
    def spend(self) -> Decimal | None:
        """price × parts (Telesign's price is per part of a split message)."""
        if self.price is None or not self.currency:
            return None
        return self.price * self.parts


def facts_of(event: Event) -> Facts:
    """Country, carrier, price, parts and submit time of one event; never raises on odd input."""
    info, submitted = _extra(event.raw)
    mcc = _code(info.mcc, 3) if info is not None else None
    mnc = _code(info.mnc, 3) if info is not None else None
    country, pn_carrier = number_facts(event.phone_number)
    carrier = f"{mcc}-{mnc}" if mcc and mnc else pn_carrier
    if country is None and mcc and mnc:
        country = network_country(mcc + mnc)
    return Facts(
        country=country,
        carrier=carrier,
        price=_price(info.price) if info is not None else None,
        currency=_currency(info.currency) if info is not None else None,
        parts=_parts(info.message_parts_count) if info is not None else 1,
        submitted_at=parse_timestamp(submitted) if submitted else None,
    )


def _extra(raw: str) -> tuple[_AdditionalInfo | None, str | None]:
    if not raw:
        return None, None
    try:
        extra = _EXTRA.decode(raw)
    except (msgspec.MsgspecError, RecursionError):
        return None, None  # a body that decoded as an event but has odd extras: no facts, no failure
    return extra.additional_info, extra.submit_timestamp if type(extra.submit_timestamp) is str else None


def _digits(value: str | None) -> str:
    if not value:
        return ""
    if value.isdigit():  # as Telesign sends them
        return value
    return "".join(ch for ch in value if ch.isdigit())


def number_facts(phone_number: str | None) -> tuple[str | None, str | None]:
    """(region, carrier name) of a phone number as Telesign sends it (E.164, with or without '+')."""
    digits = _digits(phone_number)
    if len(digits) < 7 or len(digits) > 15:
        return None, None
    return _prefix_facts(digits[:PREFIX_DIGITS], digits)


_PREFIX_CACHE: dict[str, tuple[str | None, str | None]] = {}
_PREFIX_CACHE_MAX = 65536


def _prefix_facts(prefix: str, digits: str) -> tuple[str | None, str | None]:
    """Cached per prefix: the first number seen with a prefix stands for all of them."""
    hit = _PREFIX_CACHE.get(prefix)
    if hit is None:
        if len(_PREFIX_CACHE) >= _PREFIX_CACHE_MAX:
            _PREFIX_CACHE.clear()
        hit = _PREFIX_CACHE[prefix] = _lookup(digits)
    return hit


def _lookup(digits: str) -> tuple[str | None, str | None]:
    try:
        number = phonenumbers.parse("+" + digits)
    except phonenumbers.NumberParseException:
        return None, None
    region = phonenumbers.region_code_for_number(number)
    if region is None or region == "001":
        main = phonenumbers.region_code_for_country_code(number.country_code)
        region = main if main not in (None, "ZZ", "001") else None
    name = _carrier_data.name_for_number(number, "en") or None
    return region, name


def _code(value: object, width: int) -> str | None:
    """An mcc or mnc as digits; mnc keeps its leading zeros as sent ("004" and "04" are different networks)."""
    if isinstance(value, bool) or value is None:
        return None
    text = str(value).strip()
    if not text.isdigit() or len(text) > width:
        return None
    return text


def _price(value: object) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        price = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    return price if price.is_finite() and price >= 0 else None


def _currency(value: object) -> str | None:
    text = str(value).strip().upper() if isinstance(value, str) else ""
    return text if len(text) == 3 and text.isalpha() else None


def _parts(value: object) -> int:
    try:
        parts = int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return 1
    return parts if 1 <= parts <= 255 else 1


@lru_cache(maxsize=1)
def _mnc_table() -> dict[str, list[dict]]:
    """P1 Security's MCC/MNC table (optional package): "mcc" + "mnc" -> its rows; empty when not installed.

    A code shared by networks in several territories has a list of rows instead of one.
    """
    try:
        text = resources.files("mcc_mnc_lut").joinpath("p1_mnc.json").read_text("utf-8")
    except (ModuleNotFoundError, FileNotFoundError, OSError):
        return {}
    data = json.loads(text)
    # The file is [metadata, table].
    table = data[1] if isinstance(data, list) and len(data) > 1 else data
    if not isinstance(table, dict):
        return {}
    return {key: [r for r in (rows if isinstance(rows, list) else [rows]) if isinstance(r, dict)]
            for key, rows in table.items()}


@lru_cache(maxsize=4096)
def carrier_name(carrier: str | None) -> str | None:
    """A display name for a carrier key: "Verizon (310-004)" for an mcc-mnc the dataset knows, else the key."""
    if not carrier:
        return None
    mcc, sep, mnc = carrier.partition("-")
    if not sep or not mcc.isdigit() or not mnc.isdigit():
        return carrier
    rows = _mnc_table().get(mcc + mnc)
    if not rows:
        return carrier
    name = rows[0].get("brand") or rows[0].get("operator")
    return f"{name} ({carrier})" if name else carrier


def network_country(plmn: str) -> str | None:
    """The ISO country of a network ("mcc" + "mnc") when the dataset places it in exactly one."""
    countries = {cc for row in _mnc_table().get(plmn, ()) for cc in row.get("cc2s") or ()}
    return countries.pop() if len(countries) == 1 else None

"""The status tables against the seed pages themselves: every code, with the finality the seed states."""

import re

import pytest

from pipeline.event import Outcome
from pipeline.status_codes import STATUS_CODES, lookup
from tests.conftest import SEEDS

MESSAGING = (SEEDS / "000_fcd88f5894600453.txt").read_text()
VERIFY = (SEEDS / "002_385b974b23f60eaf.txt").read_text()
INBOUND = (SEEDS / "003_6eaf81b40e5fb6be.txt").read_text()


def _seed_rows(text: str, pattern: str) -> list[tuple[int, str]]:
    return [(int(m.group(1)), m.group(2)) for m in re.finditer(pattern, text, flags=re.M)]


MESSAGING_ROWS = _seed_rows(MESSAGING, r"^(3\d{3})(\D.*)$")
VERIFY_ROWS = _seed_rows(VERIFY, r"^([2-5]\d\d)([A-Z].*)$")
ERROR_CODES = sorted({int(m) for m in re.findall(r"^(-\d{5})", VERIFY, flags=re.M)})


def _stated_finality(line: str) -> bool | None:
    if line.rstrip().endswith("(Final)"):
        return True
    if line.rstrip().endswith("(Intermediate)"):
        return False
    return None


def test_table_holds_exactly_the_seed_codes():
    assert len(MESSAGING_ROWS) == 81 and len(VERIFY_ROWS) == 40 and len(ERROR_CODES) == 22
    seeded = {code for code, _ in MESSAGING_ROWS + VERIFY_ROWS} | set(ERROR_CODES) | {1500}
    assert set(STATUS_CODES) == seeded


@pytest.mark.parametrize(("code", "line"), MESSAGING_ROWS + VERIFY_ROWS, ids=lambda v: str(v)[:12])
def test_every_seed_code_is_in_the_table_with_its_finality(code, line):
    assert code in STATUS_CODES
    info = STATUS_CODES[code]
    assert line.startswith(info.description.split("{")[0].strip()[:15]) or info.description[:10] in line
    stated = _stated_finality(line)
    if code == 3000:
        assert lookup(3000, "sms").final and lookup(3000, "mms").final
        assert not lookup(3000, "whatsapp").final and not lookup(3000, "rcs").final
        assert not lookup(3000, "viber").final
    elif stated is not None:
        assert info.final is stated
    else:
        assert info.final is (info.outcome is not Outcome.PENDING)


@pytest.mark.parametrize("code", ERROR_CODES)
def test_every_error_code_is_in_the_table(code):
    assert code in STATUS_CODES


def test_inbound_code():
    assert '"code": 1500' in INBOUND
    assert STATUS_CODES[1500].outcome is Outcome.RECEIVED


@pytest.mark.parametrize("code", [3041, 3043, 3055, 3500, 503, 505, 210, 3030, -90001])
def test_temporary_codes_are_retryable(code):
    assert STATUS_CODES[code].retryable


@pytest.mark.parametrize(
    ("code", "outcome"),
    [(3039, "unknown"), (250, "unknown"), (251, "unknown"), (599, "unknown"), (3001, "pending"),
     (290, "pending"), (3037, "blocked"), (3400, "rejected"), (3005, "read"), (200, "delivered")],
)
def test_outcomes(code, outcome):
    assert STATUS_CODES[code].outcome.value == outcome


def test_unknown_code_is_unknown_not_an_error():
    info = lookup(4242)
    assert info.outcome is Outcome.UNKNOWN

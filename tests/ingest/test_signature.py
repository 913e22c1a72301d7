"""The Telesign signature scheme, including the contract's test vector."""

from __future__ import annotations

import pytest

from pipeline.signature import SignatureError, SignatureVerifier, decode_api_key, sign

API_KEY = "EXAMPLE----TE8sTgg45yusumoN6BYsBVkh+yRJ5czgsnCehZaOYldPJdmFh6NeX8kunZ2zU1YWaUw/0wV6xfw=="
BODY = b"{'test': 123}"
SIGNATURE = "B97g3N9lPdVaptvifxRau7bzVAC5hhRBZ6HKXABN744="
OTHER_KEY = "c2Vjb25kIGtleSBmb3Igcm90YXRpb24="


def test_contract_vector() -> None:
    assert sign(decode_api_key(API_KEY), BODY) == SIGNATURE


@pytest.mark.parametrize("header", [SIGNATURE, f"TSA CUST-1:{SIGNATURE}", f"tsa CUST-1:{SIGNATURE}", f"  {SIGNATURE} "])
def test_accepted_forms(header: str) -> None:
    SignatureVerifier([API_KEY], "CUST-1").verify(header, BODY)


def test_customer_id_unchecked_when_not_configured() -> None:
    SignatureVerifier([API_KEY]).verify(f"TSA anyone:{SIGNATURE}", BODY)


def test_rotation_accepts_either_key() -> None:
    verifier = SignatureVerifier([OTHER_KEY, API_KEY])
    verifier.verify(SIGNATURE, BODY)
    verifier.verify(sign(decode_api_key(OTHER_KEY), BODY), BODY)


@pytest.mark.parametrize(
    ("header", "body", "reason"),
    [
        (None, BODY, "missing"),
        ("", BODY, "missing"),
        (f"TSA WRONG:{SIGNATURE}", BODY, "customer_id"),
        ("TSA CUST-1", BODY, "malformed"),
        (SIGNATURE[:-8], BODY, "malformed"),
        ("not*base64!", BODY, "malformed"),
        (sign(b"forged", BODY), BODY, "mismatch"),
        (SIGNATURE, b"{'test': 124}", "mismatch"),
    ],
)
def test_refusals(header: str | None, body: bytes, reason: str) -> None:
    with pytest.raises(SignatureError) as info:
        SignatureVerifier([API_KEY], "CUST-1").verify(header, body)
    assert info.value.reason == reason


def test_disabled_without_keys() -> None:
    verifier = SignatureVerifier([])
    assert not verifier.enabled
    verifier.verify(None, BODY)


@pytest.mark.parametrize("key_length", [0, 1, 32, 63, 64, 65, 200])
def test_prepared_hmac_equals_hmac_digest(key_length: int) -> None:
    import hmac
    import os

    from pipeline.signature import _KeyedSha256

    key = os.urandom(key_length)
    keyed = _KeyedSha256(key)
    for body in (b"", b"x", os.urandom(63), os.urandom(64), os.urandom(693), os.urandom(70000)):
        assert keyed.digest(body) == hmac.digest(key, body, "sha256")
    assert keyed.digest(b"again") == hmac.digest(key, b"again", "sha256")  # the prepared states are not consumed

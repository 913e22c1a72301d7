"""Standard Webhooks signing and backoff."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

import pytest

from pipeline.webhooks import backoff, batch_id, new_secret, secret_bytes, sign


def test_standard_webhooks_reference_vector() -> None:
    """The example from the Standard Webhooks reference libraries."""
    signature = sign("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330,
                     b'{"test": 2432232314}')
    assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_secret_must_be_whsec_base64_of_enough_bytes() -> None:
    key = b"k" * 24
    expected = base64.b64encode(hmac.new(key, b"id.5.{}", hashlib.sha256).digest()).decode()
    assert sign("whsec_" + base64.b64encode(key).decode(), "id", 5, b"{}") == "v1," + expected
    for bad, why in (("my-plain-secret", "whsec_"), ("whsec_c2VjcmV0MTIz", "fewer than 16"), ("whsec_!!!", "base64")):
        with pytest.raises(ValueError, match=why):
            secret_bytes(bad)


def test_new_secret_is_accepted_by_svix_and_by_us() -> None:
    from svix.webhooks import Webhook

    secret = new_secret()
    assert secret.startswith("whsec_") and len(secret_bytes(secret)) == 32 and new_secret() != secret
    headers = {"webhook-id": "msg_1", "webhook-timestamp": str(int(time.time()))}
    headers["webhook-signature"] = sign(secret, "msg_1", int(headers["webhook-timestamp"]), b"{}")
    Webhook(secret).verify(b"{}", headers)


def test_batch_id_is_stable_and_single_events_keep_their_id() -> None:
    assert batch_id(["a"]) == "a"
    assert batch_id(["a", "b"]) == batch_id(["a", "b"]) != batch_id(["b", "a"])


def test_backoff_is_full_jitter_under_the_cap() -> None:
    values = [backoff(10, 1.0, 5.0) for _ in range(200)]
    assert all(0 <= v <= 5.0 for v in values) and len(set(values)) > 100

"""Standard Webhooks signing and backoff."""

from __future__ import annotations

import base64
import hashlib
import hmac

from workers.webhooks import backoff, batch_id, sign


def test_standard_webhooks_reference_vector() -> None:
    """The example from the Standard Webhooks reference libraries."""
    signature = sign("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330,
                     b'{"test": 2432232314}')
    assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_plain_secret_is_used_as_utf8() -> None:
    expected = base64.b64encode(hmac.new(b"plain", b"id.5.{}", hashlib.sha256).digest()).decode()
    assert sign("plain", "id", 5, b"{}") == "v1," + expected


def test_batch_id_is_stable_and_single_events_keep_their_id() -> None:
    assert batch_id(["a"]) == "a"
    assert batch_id(["a", "b"]) == batch_id(["a", "b"]) != batch_id(["b", "a"])


def test_backoff_is_full_jitter_under_the_cap() -> None:
    values = [backoff(10, 1.0, 5.0) for _ in range(200)]
    assert all(0 <= v <= 5.0 for v in values) and len(set(values)) > 100

from datetime import datetime, timezone

import pytest

from pipeline.keywords import detect
from pipeline.timestamps import parse_timestamp

UTC = timezone.utc


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2021-11-26T15:01:39.000000Z", datetime(2021, 11, 26, 15, 1, 39, tzinfo=UTC)),
        ("2020-05-04 22:07:01:226", datetime(2020, 5, 4, 22, 7, 1, 226000, tzinfo=UTC)),
        ("2020-05-04 22:05:00.325", datetime(2020, 5, 4, 22, 5, 0, 325000, tzinfo=UTC)),
        ("Thu, 23 Jun 2022 19:03:44 GMT", datetime(2022, 6, 23, 19, 3, 44, tzinfo=UTC)),
        ("2022-06-23T21:03:44+02:00", datetime(2022, 6, 23, 19, 3, 44, tzinfo=UTC)),
        ("Thu, 23 Jun 2022 21:03:44 +0200", datetime(2022, 6, 23, 19, 3, 44, tzinfo=UTC)),
        ("Thu, 23 Jun 2022 19:03:44", datetime(2022, 6, 23, 19, 3, 44, tzinfo=UTC)),
        ("Thu, 31 Feb 2022 19:03:44 GMT", None),
        ("Thu, 23 Foo 2022 19:03:44 GMT", None),
        (" 2021-11-26T15:01:39Z ", datetime(2021, 11, 26, 15, 1, 39, tzinfo=UTC)),
        ("2020-05-04 22:07:01:2", datetime(2020, 5, 4, 22, 7, 1, 200000, tzinfo=UTC)),
        ("2020-05-04 25:07:01", None),
        ("yesterday", None),
        ("", None),
        (12, None),
        (None, None),
    ],
)
def test_parse_timestamp(raw, expected):
    parsed = parse_timestamp(raw)
    assert parsed == expected
    if parsed is not None:
        assert parsed.tzinfo is UTC


@pytest.mark.parametrize(
    ("text", "action", "keyword"),
    [
        ("STOP", "stop", "stop"), (" Stop. ", "stop", "stop"), ("ARRÊT", "stop", "arrêt"), ("unsubscribe!", "stop", "unsubscribe"),
        ("Help?", "help", "help"), ("info", "help", "info"), ("start", "start", "start"),
        ("stop it", "generic", None), ("", "generic", None), (None, "generic", None), ("Thank you! 😎", "generic", None),
    ],
)
def test_detect(text, action, keyword):
    got_action, got_keyword = detect(text)
    assert (got_action.value, got_keyword) == (action, keyword)

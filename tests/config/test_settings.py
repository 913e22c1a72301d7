import pytest

from config import ConfigError, Settings, describe, load_settings
from config.settings import SETTINGS


def test_defaults_work_with_an_empty_environment():
    settings = load_settings({})
    assert settings.max_body_bytes == 65536
    assert settings.redis_url is None
    assert not settings.auth_enabled


def test_declared_defaults_match_the_struct():
    defaults = Settings()
    for setting in SETTINGS:
        assert getattr(defaults, setting.field) == setting.default, setting.env


@pytest.mark.parametrize(
    ("env", "value", "fragment"),
    [
        ("TSPIPE_MAX_BODY_BYTES", "-5", "at least 1"),
        ("TSPIPE_MAX_BODY_BYTES", "lots", "integer"),
        ("REDIS_URL", "localhost:6379", "URL"),
        ("TELESIGN_API_URL", "ftp://x", "URL"),
        ("TSPIPE_CHANNELS", "sms,pigeon", "unknown channel 'pigeon'"),
        ("TSPIPE_LOG_FORMAT", "xml", "one of"),
        ("TSPIPE_BATCH_MAX_WAIT_MS", "nan", "number"),
    ],
)
def test_bad_values_name_the_variable(env, value, fragment):
    with pytest.raises(ConfigError) as info:
        load_settings({env: value})
    assert str(info.value).startswith(f"{env}: ")
    assert fragment in str(info.value)


def test_several_keys_for_rotation_and_secrets_masked():
    settings = load_settings({"TELESIGN_API_KEY": "a2V5MS1mb3Itcm90YXRpb24=, a2V5Mi1mb3Itcm90YXRpb24=", "TSPIPE_API_TOKEN": "s3cret", "REDIS_URL": "redis://:pw@host:1/0"})
    assert settings.telesign_api_keys == ("a2V5MS1mb3Itcm90YXRpb24=", "a2V5Mi1mb3Itcm90YXRpb24=")
    shown = "\n".join(" ".join(row) for row in describe(settings))
    assert "a2V5MQ" not in shown and "s3cret" not in shown and ":pw@" not in shown

import os
import subprocess
import sys

import pytest

from config.settings import SETTINGS
from tests.conftest import FIXTURES

README = (FIXTURES.parent.parent.parent / "README.md").read_text()


def check(**env):
    base = {k: v for k, v in os.environ.items() if not k.startswith(("TSPIPE_", "TELESIGN_")) and k != "REDIS_URL"}
    return subprocess.run([sys.executable, "-m", "tspipe", "config", "check"], env={**base, **env}, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"REDIS_URL": "not-a-url"}, "REDIS_URL: must be a URL"),
        ({"TSPIPE_MAX_BODY_BYTES": "-1"}, "TSPIPE_MAX_BODY_BYTES: must be at least 1"),
        ({"TSPIPE_CHANNELS": "sms,fax"}, "TSPIPE_CHANNELS: unknown channel 'fax'"),
        ({"TSPIPE_DESTINATIONS": "[{"}, "TSPIPE_DESTINATIONS:"),
        ({"PORT": "eighty"}, "PORT: must be an integer"),
    ],
)
def test_bad_values_one_line_exit_2(env, fragment):
    result = check(**env)
    assert result.returncode == 2
    assert fragment in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_prints_effective_config_with_secrets_masked():
    result = check(TELESIGN_API_KEY="c2VjcmV0a2V5LXNlY3JldGtleQ==", TSPIPE_API_TOKEN="tok3n", REDIS_URL="redis://:pw@127.0.0.1:1/0")
    assert result.returncode == 0
    assert "c2VjcmV0a2V5LXNlY3JldGtleQ==" not in result.stdout and "tok3n" not in result.stdout and ":pw@" not in result.stdout
    assert "TSPIPE_MAX_BODY_BYTES" in result.stdout


def test_readme_documents_every_variable():
    for setting in SETTINGS:
        assert f"`{setting.env}`" in README, setting.env


def test_config_check_masks_secrets_inside_destinations_and_urls():
    destinations = ('[{"name": "crm", "url": "https://hookuser:hookpass@crm.example/in?token=qtok&v=2", '
                    '"secret": "whsec_signing_secret"}]')
    result = check(TSPIPE_DESTINATIONS=destinations, TELESIGN_API_URL="https://apiuser:apipass@rest.example")
    assert result.returncode == 0, result.stderr
    for secret in ("whsec_signing_secret", "hookpass", "qtok", "apipass"):
        assert secret not in result.stdout + result.stderr, secret
    assert "crm.example" in result.stdout and '"secret": "***"' in result.stdout and "rest.example" in result.stdout


def test_config_error_quoting_a_value_masks_its_secrets():
    result = check(TSPIPE_DESTINATIONS='{"name": "crm", "secret": "whsec_signing_secret"}')
    assert result.returncode == 2
    assert "TSPIPE_DESTINATIONS" in result.stderr and "whsec_signing_secret" not in result.stderr


def test_shows_the_effective_keyword_map():
    result = check(TSPIPE_KEYWORDS='{"preset": "ctia", "keywords": {"JOIN": "generic"}, "channels": {"whatsapp": {"parar": "stop"}}}')
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert any(line.split()[:2] == ["all", "stop"] and "stopall" in line and "revoke" in line for line in lines)
    assert any(line.split()[:2] == ["all", "generic"] and "join" in line for line in lines)
    assert any(line.split()[:4] == ["channel", "whatsapp", "stop", "parar"] for line in lines)


def test_refuses_a_keyword_mapped_to_two_actions_with_one_line():
    result = check(TSPIPE_KEYWORDS='{"keywords": {"YES": "start", "yes": "stop"}}')
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "tspipe: bad configuration: TSPIPE_KEYWORDS: keyword 'yes' is mapped to two actions in keywords: start ('YES') and stop ('yes')"
    ]

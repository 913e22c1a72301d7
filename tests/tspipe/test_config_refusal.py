"""Issue 11, items 2 and 16: a configuration any process would refuse is refused by all of them alike.

Every process and command prints the same one line that `tspipe config check` prints, exits 2, and
never shows a traceback; `config check` fails on exactly what the processes would refuse.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from config import ConfigError, load_settings
from pipeline.signature import SignatureVerifier

TSPIPE = str(Path(sys.executable).with_name("tspipe"))
COMMANDS = (
    ["config", "check"], ["web"], ["worker"], ["beat"], ["run"], ["dlq", "list"], ["quarantine", "list"],
    ["send-samples"],
)


def run_all(tmp_path: Path, env: dict[str, str], commands=COMMANDS) -> dict[str, subprocess.CompletedProcess]:
    """Run every command at once (they all stop at start-up), each in its own working folder."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("TSPIPE_", "TELESIGN_")) and k != "REDIS_URL"}
    base.update(REDIS_URL="redis://127.0.0.1:1/0", TSPIPE_DATA_DIR=str(tmp_path / "data"), **env)
    procs = {}
    for command in commands:
        cwd = tmp_path / "-".join(command)
        cwd.mkdir(exist_ok=True)
        procs[" ".join(command)] = subprocess.Popen([TSPIPE, *command], env=base, cwd=cwd, text=True,
                                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    results = {}
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=60)
        results[name] = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    return results


def assert_same_one_line_everywhere(results: dict[str, subprocess.CompletedProcess], fragment: str) -> None:
    expected = results["config check"].stderr
    assert expected.startswith("tspipe: bad configuration: ") and fragment in expected
    for name, result in results.items():
        assert result.returncode == 2, (name, result.stderr[-2000:])
        assert result.stderr == expected, (name, result.stderr[-2000:])
        assert len(result.stderr.strip().splitlines()) == 1


def test_api_key_decoding_to_fewer_than_16_bytes_is_refused_by_every_process(tmp_path: Path) -> None:
    """What a Docker env file gives for `TELESIGN_API_KEY=""`: two quote characters, an empty key."""
    results = run_all(tmp_path, {"TELESIGN_API_KEY": '""'})
    assert_same_one_line_everywhere(results, "TELESIGN_API_KEY: the key decodes to 0 bytes")


@pytest.mark.parametrize("value", ['""', "====", "!!!!", "c2hvcnQ=", "a2V5MQ==, " + "A" * 88])
def test_api_key_decoding_to_fewer_than_16_bytes_is_a_config_error(value: str) -> None:
    with pytest.raises(ConfigError, match="^TELESIGN_API_KEY: .*decodes to [0-9]+ bytes, fewer than 16"):
        load_settings({"TELESIGN_API_KEY": value})
    assert load_settings({"TELESIGN_API_KEY": "A" * 88}).telesign_api_keys == ("A" * 88,)


def test_verifier_refuses_a_short_key_even_when_settings_are_built_in_code() -> None:
    with pytest.raises(ValueError, match="fewer than 16"):
        SignatureVerifier(['""'])


def test_api_key_that_is_not_base64_gives_one_line_naming_the_variable(tmp_path: Path) -> None:
    results = run_all(tmp_path, {"TELESIGN_API_KEY": "abcde"}, (["config", "check"], ["web"], ["beat"]))
    assert_same_one_line_everywhere(results, "TELESIGN_API_KEY: the key is not base64")


def test_malformed_destinations_give_every_process_the_config_check_line(tmp_path: Path) -> None:
    results = run_all(tmp_path, {"TSPIPE_DESTINATIONS": '[{"name": "crm", "url": "https://crm.example"'})
    assert_same_one_line_everywhere(results, "TSPIPE_DESTINATIONS: invalid JSON")


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"TSPIPE_DESTINATIONS": '[{"name": "crm", "url": "https://crm.example", "secret": ""}]'},
         "TSPIPE_DESTINATIONS: destination 0 ('crm'): secret must"),
        ({"TSPIPE_AUTOREPLIES": '{"stop": "not a map"}'}, "TSPIPE_AUTOREPLIES: must map action"),
        ({"TSPIPE_PLUGINS": "no_such_package.tasks.notify"}, "TSPIPE_PLUGINS: cannot find the module"),
    ],
)
def test_config_check_fails_on_what_a_process_would_refuse(tmp_path: Path, env: dict[str, str], fragment: str) -> None:
    results = run_all(tmp_path, env, (["config", "check"], ["worker"]))
    assert_same_one_line_everywhere(results, fragment)

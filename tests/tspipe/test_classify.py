"""`tspipe classify` as a user runs it: a real subprocess, real files."""

import json
import subprocess
import sys

from tests.conftest import FIXTURES


def run(*args, stdin=b""):
    return subprocess.run([sys.executable, "-m", "tspipe", "classify", *args], input=stdin, capture_output=True, timeout=60)


def test_every_fixture_one_line_each_in_order(tmp_path):
    files = sorted(FIXTURES.glob("*.json"))
    result = run(*map(str, files))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.decode().splitlines()
    assert len(lines) == len(files)
    for path, line in zip(files, lines):
        event = json.loads(line)
        assert event["raw"].encode() == path.read_bytes()
        assert event["received_at"] is None


def test_bad_inputs_give_error_lines_and_exit_1(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_bytes(b"[1]")
    good = FIXTURES / "read_notification.json"
    result = run(str(good), str(bad), str(tmp_path / "missing.json"))
    assert result.returncode == 1
    lines = [json.loads(x) for x in result.stdout.decode().splitlines()]
    assert lines[0]["kind"] == "read"
    assert "not a JSON object" in lines[1]["error"]
    assert "cannot read" in lines[2]["error"]
    assert b"Traceback" not in result.stderr and b"bad.json" in result.stderr


def test_stdin_and_channel_hint():
    result = run("--channel", "viber", stdin=(FIXTURES / "mo_viber_text.json").read_bytes())
    assert result.returncode == 0
    assert json.loads(result.stdout)["channel"] == "viber"
    result = run("-", stdin=b"\xff")
    assert result.returncode == 1 and "UTF-8" in json.loads(result.stdout)["error"]


def test_classify_prints_a_line_for_every_input_even_after_invalid_utf8_in_a_field(tmp_path):
    """Issue 11, item 10: one bad string field used to end classify with a traceback, losing later lines."""
    bad = tmp_path / "bad_utf8.json"
    bad.write_bytes(b'{"reference_id": "\xff\xfe", "status": {"code": 200, "description": "Delivered"}}')
    good = FIXTURES / "read_notification.json"
    result = run(str(good), str(bad), str(good))
    assert result.returncode == 1
    lines = result.stdout.decode().splitlines()
    assert len(lines) == 3
    assert "not valid UTF-8" in json.loads(lines[1])["error"]
    assert json.loads(lines[0]) == json.loads(lines[2])
    assert b"Traceback" not in result.stderr
def test_keyword_map_from_the_environment(tmp_path):
    body = (FIXTURES / "mo_sms_keyword_start.json").read_bytes()
    stopall = body.replace(b'"action": "start",', b"").replace(b'"Start"', b'"STOPALL"')
    default = run("-", stdin=stopall)
    assert default.returncode == 0 and json.loads(default.stdout)["action"] == "generic"
    env = {**__import__("os").environ, "TSPIPE_KEYWORDS": "ctia"}
    ctia = subprocess.run([sys.executable, "-m", "tspipe", "classify", "-"], input=stopall, capture_output=True,
                          timeout=60, env=env)
    assert ctia.returncode == 0 and json.loads(ctia.stdout)["action"] == "stop"
    bad = subprocess.run([sys.executable, "-m", "tspipe", "classify", "-"], input=stopall, capture_output=True,
                         timeout=60, env={**env, "TSPIPE_KEYWORDS": "tcpa"})
    assert bad.returncode == 2 and bad.stderr.decode().count("\n") == 1 and b"TSPIPE_KEYWORDS" in bad.stderr

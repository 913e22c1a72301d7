"""`tspipe destinations new-secret`, `tspipe deliver` start-up errors, and where `tspipe beat` keeps its schedule."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.workers.delivery_support import wait_for
from tspipe.cli import cli
from config.destinations import parse_destinations

TSPIPE = str(Path(sys.executable).with_name("tspipe"))


def test_new_secret_prints_a_secret_destinations_accept() -> None:
    result = CliRunner().invoke(cli, ["destinations", "new-secret"])
    secret = result.output.strip()
    assert result.exit_code == 0 and secret.startswith("whsec_")
    (dest,) = parse_destinations(json.dumps([{"name": "crm", "url": "https://crm.example", "secret": secret}]))
    assert dest.secret == secret


@pytest.mark.parametrize("command", ["deliver", "worker", "beat"])
def test_a_plain_secret_stops_start_up_with_one_line_naming_the_destination(command, redis_url, tmp_path) -> None:
    env = dict(os.environ, REDIS_URL=redis_url,
               TSPIPE_DESTINATIONS=json.dumps([{"name": "crm", "url": "https://crm.example", "secret": "my-plain-secret"}]))
    result = subprocess.run([TSPIPE, command], env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    # The same one line every process and `tspipe config check` give for a bad configuration.
    assert lines[0].startswith("tspipe") and ": TSPIPE_DESTINATIONS: destination 0 ('crm'): secret" in lines[0]


def test_beat_writes_its_schedule_under_the_data_dir_not_the_working_directory(redis_url, tmp_path) -> None:
    cwd, data = tmp_path / "cwd", tmp_path / "data"
    cwd.mkdir()
    env = dict(os.environ, REDIS_URL=redis_url, TSPIPE_DATA_DIR=str(data), TSPIPE_LOG_LEVEL="warning")
    beat = subprocess.Popen([TSPIPE, "beat"], env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert wait_for(lambda: data.exists() and any(p.name.startswith("celerybeat-schedule") for p in data.iterdir()),
                        timeout=20)
        time.sleep(0.3)
    finally:
        beat.terminate()
        beat.wait(10)
    assert list(cwd.iterdir()) == []

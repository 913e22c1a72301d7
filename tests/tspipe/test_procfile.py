"""The README's operating commands work as written: `honcho start` (the Procfile) and Flower."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import psutil

from tests.conftest import FIXTURES
from tests.tspipe.test_run import _get, _post, _wait
from tspipe.redis_server import free_port

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _env(redis_url: str, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TSPIPE_", "TELESIGN_"))}
    env.update(REDIS_URL=redis_url, PORT=str(port), TSPIPE_WORKER_CONCURRENCY="1",
               PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}")
    return env


def _stop(proc: subprocess.Popen[bytes]) -> bytes:
    proc.send_signal(signal.SIGINT)
    try:
        output, _ = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        output, _ = proc.communicate()
    return output


def test_honcho_start_runs_the_procfile(redis_url: str, tmp_path: Path) -> None:
    """`honcho start` as the README says, against a real Redis: web, worker, deliver and beat, and Ctrl-C stops them."""
    port = free_port()
    env = _env(redis_url, port)
    env["TSPIPE_DATA_DIR"] = str(tmp_path / "data")
    proc = subprocess.Popen([str(BIN / "honcho"), "-f", str(ROOT / "Procfile"), "-d", str(tmp_path), "start"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=tmp_path)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait(lambda: _get(base + "/readyz")[0] == 200 or proc.poll() is not None, 60, "web to be ready")
        assert proc.poll() is None
        descendants = psutil.Process(proc.pid).children(recursive=True)
        assert _post(base + "/callbacks/sms", (FIXTURES / "delivery_rcs_fallback_to_sms.json").read_bytes()) == 200
        url = base + "/v1/transactions/35C8B5D509BC10689196FED2AD551B8A"
        _wait(lambda: _get(url)[0] == 200, 60, "the worker to apply the callback")
    finally:
        output = _stop(proc).decode(errors="replace")
    for name in ("web", "worker", "deliver", "beat"):
        assert f"{name}.1 started" in output and f"{name}.1 stopped" in output, output[-2000:]
    alive = [p for p in descendants if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert not alive, f"left running: {alive}"


def test_tspipe_flower_monitors_the_broker(redis_url: str, tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "tspipe", "flower", "--port", str(port)], env=_env(redis_url, 8000),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=tmp_path)
    try:
        _wait(lambda: _get(f"http://127.0.0.1:{port}/healthcheck")[0] == 200 or proc.poll() is not None, 30,
              "Flower to answer")
        assert proc.poll() is None
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as response:
            assert response.status == 200 and b"Flower" in response.read()
    finally:
        _stop(proc)

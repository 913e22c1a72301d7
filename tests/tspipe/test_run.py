"""`tspipe run` as `make run` starts it: no REDIS_URL, embedded Redis, web + worker + beat."""

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

import shutil

import psutil
import pytest

from tests.conftest import FIXTURES, postgres_home
from tspipe.redis_server import free_port
from tspipe.supervisor import Supervisor


def _get(url: str):
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except OSError:
        return None, b""


def _post(url: str, body: bytes) -> int:
    request = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as response:
        return response.status


def _wait(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}")


@pytest.fixture
def data_home():
    """TSPIPE_DATA_DIR for `tspipe run`: its embedded PostgreSQL needs a folder outside pytest's tree."""
    home = postgres_home()
    yield home
    shutil.rmtree(home, ignore_errors=True)


def test_run_whole_stack_without_redis_url(tmp_path, data_home):
    """`make run` on a fresh machine: embedded Redis and PostgreSQL, the samples archived and found by phone number."""
    tmp_path = data_home
    port = free_port()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("TSPIPE_", "TELESIGN_")) and k not in ("REDIS_URL", "DATABASE_URL")}
    env.update(PORT=str(port), TSPIPE_DATA_DIR=str(tmp_path / "data"), TSPIPE_WORKER_CONCURRENCY="1")
    proc = subprocess.Popen([sys.executable, "-m", "tspipe", "run"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, cwd=tmp_path)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait(lambda: _get(base + "/readyz")[0] == 200, 60, "the web process to be ready")
        descendants = psutil.Process(proc.pid).children(recursive=True)
        assert len(descendants) >= 4  # redis, web, worker, beat (and the worker's pool)
        body = (FIXTURES / "delivery_rcs_fallback_to_sms.json").read_bytes()
        assert _post(base + "/callbacks/sms", body) == 200
        url = base + "/v1/transactions/35C8B5D509BC10689196FED2AD551B8A"
        status, payload = _wait(lambda: (lambda r: r if r[0] == 200 else None)(_get(url)), 60, "the transaction")
        assert b"3000" in payload and json.loads(payload)
        samples = subprocess.run([sys.executable, "-m", "tspipe", "send-samples"], env=env, capture_output=True,
                                 timeout=60)
        assert samples.returncode == 0, samples.stderr
        search = base + "/v1/events?phone_number=%2B11234567890&limit=1000"

        def archived():
            status, page = _get(search)
            return json.loads(page)["events"] if status == 200 and len(json.loads(page)["events"]) >= 5 else None

        found = _wait(archived, 60, "the samples in the archive")
        assert {e["phone_number"] for e in found} == {"11234567890"}
        assert (tmp_path / "data" / "postgres" / "PG_VERSION").exists()
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            output, _ = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            output, _ = proc.communicate()
    assert proc.returncode == 0, output.decode(errors="replace")[-2000:]
    time.sleep(0.5)
    alive = [p for p in descendants if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert not alive, f"left running: {alive}"
    assert (tmp_path / "data" / "redis" / "appendonly.aof").exists() or any((tmp_path / "data" / "redis").glob("appendonly*"))


def test_supervisor_prefixes_output_and_stops_all_when_one_exits(tmp_path):
    import io

    out = io.StringIO()
    sup = Supervisor({
        "short": [sys.executable, "-c", "print('hello'); import sys; sys.exit(3)"],
        "long": [sys.executable, "-c", "import time\nprint('up', flush=True)\ntime.sleep(60)"],
    }, out=out, stop_timeout=5)
    sup.start()
    assert sup.wait() == 3
    text = out.getvalue()
    assert "short  | hello" in text and "long   | up" in text
    assert all(c.process.poll() is not None for c in sup.children)

"""`tspipe run` as `make run` starts it: no REDIS_URL, embedded Redis, web + worker + deliver + beat."""

import json
import os
import pty
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil
import pytest

from tests.conftest import FIXTURES, postgres_home
from tspipe.redis_server import free_port


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


def _env(tmp_path, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("TSPIPE_", "TELESIGN_")) and k not in ("REDIS_URL", "DATABASE_URL")}
    env.update(PORT=str(port), TSPIPE_DATA_DIR=str(tmp_path / "data"), TSPIPE_WORKER_CONCURRENCY="1")
    return env


def _read_terminal(master: int, sink: list[bytes]) -> None:
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:
            return
        if not chunk:
            return
        sink.append(chunk)


@pytest.fixture
def data_home():
    """A folder for `tspipe run`'s data: its embedded PostgreSQL needs one outside pytest's tree (see postgres_home)."""
    home = postgres_home()
    yield home
    shutil.rmtree(home, ignore_errors=True)


def test_run_on_a_terminal_prefixes_console_logs_without_banners_and_ctrl_c_stops_all(data_home):
    """`make run` as a new user sees it: no REDIS_URL or DATABASE_URL, stdout a terminal.

    Each child's lines are prefixed with its name and written in the console format (not JSON
    mixed with Celery's banners), Celery's per-task received/succeeded lines are off, the
    samples reach the embedded PostgreSQL archive and /v1/events finds them by phone number,
    and Ctrl-C stops every process, the embedded Redis and PostgreSQL included.
    """
    tmp_path = data_home
    port = free_port()
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "tspipe", "run"], env=_env(tmp_path, port), stdin=subprocess.DEVNULL,
                            stdout=slave, stderr=slave, cwd=tmp_path)
    os.close(slave)
    chunks: list[bytes] = []
    reader = threading.Thread(target=_read_terminal, args=(master, chunks), daemon=True)
    reader.start()
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
        _wait(lambda: b"batch applied" in b"".join(chunks), 60, "the worker's batch line")
        samples = subprocess.run([sys.executable, "-m", "tspipe", "send-samples"], env=_env(tmp_path, port),
                                 capture_output=True, timeout=60)
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
            proc.wait(timeout=90)  # stops PostgreSQL too: 20 s on a loaded machine
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        reader.join(5)
        os.close(master)
    output = b"".join(chunks).decode(errors="replace").replace("\r\n", "\n")
    assert proc.returncode == 0, output[-2000:]
    time.sleep(0.5)
    alive = [p for p in descendants if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert not alive, f"left running: {alive}"
    assert (tmp_path / "data" / "redis" / "appendonly.aof").exists() or any((tmp_path / "data" / "redis").glob("appendonly*"))
    lines = [re.sub(r"\x1b\[[0-9;]*m", "", line) for line in output.splitlines() if line.strip()]
    for name in ("web", "worker", "deliver", "beat", "archive", "system"):
        assert any(re.match(rf"\d\d:\d\d:\d\d {name} +\| ", line) for line in lines), f"no {name} lines:\n{output}"
    bodies = [line.split("| ", 1)[1] for line in lines if "| " in line]
    assert not [b for b in bodies if b.lstrip().startswith("{")], f"JSON lines on a terminal:\n{output}"
    assert "-------------- celery@" not in output and "LocalTime ->" not in output, "Celery banner shown"
    assert not re.search(r"Task \S+ received|succeeded in [0-9.]+s", output), "per-task lines shown"
    assert not (tmp_path / "data" / "run.json").exists()  # gone with the run that wrote it


@pytest.fixture(scope="module")
def running():
    """One `tspipe run` (as `make run` starts it) for the tests that work next to it."""
    tmp_path = postgres_home()
    port = free_port()
    env = _env(tmp_path, port)
    log = (tmp_path / "run.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "tspipe", "run", "--no-beat"], env=env, stdout=log,
                            stderr=subprocess.STDOUT, cwd=tmp_path)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait(lambda: _get(base + "/readyz")[0] == 200 or proc.poll() is not None, 60, "the web process to be ready")
        assert proc.poll() is None, (tmp_path / "run.log").read_text()[-2000:]
        yield proc, base, tmp_path, env
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(90)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        shutil.rmtree(tmp_path, ignore_errors=True)


def _tspipe(env: dict[str, str], *args: str, cwd) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tspipe", *args], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=60)


def test_second_run_in_the_same_data_dir_says_already_running(running):
    proc, base, tmp_path, env = running
    redis_files = sorted(p.name for p in (tmp_path / "data" / "redis").iterdir())
    second = _tspipe(env, "run", cwd=tmp_path)
    output = (second.stdout + second.stderr).strip()
    assert second.returncode != 0
    assert output == f"tspipe is already running here: pid {proc.pid}, {base}", output
    assert sorted(p.name for p in (tmp_path / "data" / "redis").iterdir()) == redis_files  # touched no data
    assert _get(base + "/readyz")[0] == 200 and proc.poll() is None


def test_cli_commands_find_the_embedded_redis_of_a_running_run(running, monkeypatch):
    """No REDIS_URL anywhere: dlq, quarantine and config check use the run's Redis (TSPIPE_DATA_DIR/run.json)."""
    from click.testing import CliRunner

    from config.settings import reset_settings_cache
    from tspipe.cli import cli

    proc, base, tmp_path, env = running
    assert "REDIS_URL" not in env
    monkeypatch.setenv("TSPIPE_DATA_DIR", env["TSPIPE_DATA_DIR"])
    monkeypatch.delenv("REDIS_URL", raising=False)

    def invoke(*args: str):
        try:
            result = CliRunner().invoke(cli, list(args))
        finally:
            os.environ.pop("REDIS_URL", None)  # what the command adopted; the next one finds it on its own
            reset_settings_cache()
        assert result.exit_code == 0, result.output
        return result.output

    assert _post(base + "/callbacks/sms", b'{"not": "a callback"}') == 200
    _wait(lambda: "status" in invoke("quarantine", "list"), 30, "the quarantined body to be listed")
    assert invoke("dlq", "list").strip() == "no dead letters"
    state = json.loads((tmp_path / "data" / "run.json").read_text())
    assert state["pid"] == proc.pid and state["web_url"] == base
    assert state["redis_url"] in invoke("config", "check")


def test_a_dead_runs_state_file_is_not_believed(tmp_path):
    """run.json left behind by a killed run: nobody holds the lock, so commands do not use its Redis."""
    env = _env(tmp_path, free_port())
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "run.lock").touch()
    (tmp_path / "data" / "run.json").write_text(json.dumps(
        {"pid": 1, "web_url": "http://127.0.0.1:1", "redis_url": "redis://127.0.0.1:1/0"}))
    result = _tspipe(env, "dlq", "list", cwd=tmp_path)
    assert result.returncode == 2 and "REDIS_URL is not set" in result.stderr and "Traceback" not in result.stderr


ROOT = Path(__file__).resolve().parents[2]


def _walkthrough() -> list[tuple[str, str | None]]:
    """(command, expected text or None) for each line of the README's walkthrough block."""
    readme = (ROOT / "README.md").read_text()
    block = readme.split("## Walkthrough", 1)[1].split("```sh\n", 1)[1].split("```", 1)[0]
    steps = []
    for line in block.splitlines():
        command, _, comment = line.partition("  #")
        expected = comment.strip()[2:].strip() if comment.strip().startswith("→") else None
        steps.append((command.strip(), expected))
    return steps


def test_readme_walkthrough_gives_the_answers_it_shows(running):
    """Each line of the README walkthrough, run as written against `tspipe run`, prints what its comment says."""
    proc, base, tmp_path, env = running
    steps = _walkthrough()
    assert any("--only mo_sms_keyword_start" in c for c, _ in steps)
    for command, expected in steps:
        shell = command.replace(".venv/bin/tspipe", f"{shlex.quote(sys.executable)} -m tspipe")
        shell = shell.replace("http://127.0.0.1:8000", base)

        def run():
            result = subprocess.run(["bash", "-c", shell], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
            assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"
            return result.stdout

        if command.startswith("curl -s http"):  # a read: the worker applies asynchronously
            _wait(lambda: expected in run(), 60, f"{command!r} to answer {expected!r}")
        else:
            output = run()
            assert expected is None or expected in output, f"{command}\n{output}"
    transaction = json.loads(_get(base + "/v1/transactions/35C8B5D509BC10689196FED2AD551B8A")[1])
    assert len(transaction["history"]) == 1  # the samples used reference ids of their own


def test_run_with_an_unusable_data_dir_says_so_in_one_line(tmp_path):
    env = _env(tmp_path, free_port())
    (tmp_path / "data").write_text("a file where the data folder should be")
    result = _tspipe(env, "run", cwd=tmp_path)
    assert result.returncode == 2 and result.stdout == "", result.stdout
    assert result.stderr.strip().startswith("tspipe run: cannot use TSPIPE_DATA_DIR") and "\n" not in result.stderr.strip()

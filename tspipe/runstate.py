"""Which `tspipe run` owns a data directory, and where its embedded Redis listens.

`tspipe run` takes an exclusive lock on TSPIPE_DATA_DIR/run.lock before it
touches any data (a second run would start a second Redis on the same
append-only file), and records its pid, web URL and Redis URL in
TSPIPE_DATA_DIR/run.json. Other commands in the same folder (`tspipe dlq`,
`quarantine`, `config check`, ...) read that file to find the embedded Redis
when REDIS_URL is unset. The lock, not the file, says whether the run is
alive: the kernel drops it when the process dies, however it dies, so a
stale run.json left by a `kill -9` is never believed.
"""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path

import msgspec

from pipeline.errors import TspipeError

LOCK_FILE = "run.lock"
STATE_FILE = "run.json"
PROBE_RETRIES = 4


class RunState(msgspec.Struct, frozen=True):
    pid: int
    web_url: str
    redis_url: str | None = None


class AlreadyRunning(TspipeError):
    """Another `tspipe run` holds the data directory's lock."""

    def __init__(self, state: RunState | None) -> None:
        self.state = state
        where = f"pid {state.pid}, {state.web_url}" if state else "another tspipe run holds the lock"
        super().__init__(f"tspipe is already running here: {where}")


class RunLock:
    """The exclusive lock a running `tspipe run` holds on its data directory, for its whole life."""

    def __init__(self, data_dir: str | os.PathLike[str]) -> None:
        self.dir = Path(data_dir)
        self._fd: int | None = None

    def acquire(self) -> "RunLock":
        """Take the lock or raise AlreadyRunning (with the owner's pid and URL); never blocks."""
        self.dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        for _ in range(PROBE_RETRIES):
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                self._fd = fd
                return self
            except BlockingIOError:
                time.sleep(0.05)  # maybe only another command's live_run() probe, held for microseconds
            except OSError:
                os.close(fd)
                raise
        os.close(fd)
        raise AlreadyRunning(_read_state(self.dir))

    def record(self, state: RunState) -> None:
        """Publish where this run's web process and Redis are (written whole, then renamed)."""
        tmp = self.dir / (STATE_FILE + ".tmp")
        tmp.write_bytes(msgspec.json.encode(state))
        tmp.replace(self.dir / STATE_FILE)

    def release(self) -> None:
        if self._fd is None:
            return
        (self.dir / STATE_FILE).unlink(missing_ok=True)
        os.close(self._fd)  # closing the descriptor drops the lock
        self._fd = None


def live_run(data_dir: str | os.PathLike[str]) -> RunState | None:
    """The state of the `tspipe run` that holds `data_dir`'s lock now, or None (no run, or it died)."""
    directory = Path(data_dir)
    try:
        fd = os.open(directory / LOCK_FILE, os.O_RDONLY)
    except OSError:
        return None
    try:
        # A shared lock is granted only when no run holds the exclusive one; released at once.
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return _read_state(directory)
    finally:
        os.close(fd)
    return None


def _read_state(directory: Path) -> RunState | None:
    try:
        return msgspec.json.decode((directory / STATE_FILE).read_bytes(), type=RunState)
    except (OSError, msgspec.DecodeError):
        return None

"""Run several processes as one, the way `honcho start` runs a Procfile.

Why not depend on honcho: `tspipe run` must also own the embedded Redis's
lifetime and stop every child when any one dies, and that is a few dozen
lines over subprocess. Output lines are prefixed with the process name.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import IO

COLORS = ("\033[36m", "\033[33m", "\033[35m", "\033[32m", "\033[34m")
RESET = "\033[0m"


@dataclass
class Child:
    name: str
    argv: list[str]
    process: subprocess.Popen[bytes] | None = None
    pump: threading.Thread | None = field(default=None, repr=False)


class Supervisor:
    """Start children, prefix their output, and stop them all on a signal or when one exits."""

    def __init__(self, children: dict[str, list[str]], env: dict[str, str] | None = None,
                 out: IO[str] | None = None, stop_timeout: float = 10.0) -> None:
        self.children = [Child(name, argv) for name, argv in children.items()]
        self.env = env if env is not None else dict(os.environ)
        self.out = out or sys.stdout
        self.stop_timeout = stop_timeout
        self.color = self.out.isatty() if hasattr(self.out, "isatty") else False
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self.width = max([len("system")] + [len(c.name) for c in self.children])

    def say(self, name: str, line: str, index: int = -1) -> None:
        prefix = f"{name.ljust(self.width)} | "
        if self.color and index >= 0:
            prefix = f"{COLORS[index % len(COLORS)]}{prefix}{RESET}"
        with self._lock:
            self.out.write(prefix + line.rstrip("\n") + "\n")
            self.out.flush()

    def start(self) -> None:
        for index, child in enumerate(self.children):
            child.process = subprocess.Popen(
                child.argv, env=self.env, stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
            )
            self.say("system", f"{child.name} started (pid {child.process.pid})")
            child.pump = threading.Thread(target=self._pump, args=(child, index), daemon=True)
            child.pump.start()

    def _pump(self, child: Child, index: int) -> None:
        assert child.process and child.process.stdout
        for raw in iter(child.process.stdout.readline, b""):
            self.say(child.name, raw.decode("utf-8", "replace"), index)

    def wait(self) -> int:
        """Block until a child exits or stop() is called; then stop everything. Returns an exit status."""
        status = 0
        while not self._stopping.is_set():
            for child in self.children:
                code = child.process.poll() if child.process else None
                if code is not None:
                    self.say("system", f"{child.name} exited with status {code}; stopping the others")
                    status = code or 1
                    self._stopping.set()
                    break
            self._stopping.wait(0.2)
        self.stop()
        return status

    def request_stop(self, *_: object) -> None:
        self._stopping.set()

    def stop(self) -> None:
        running = [c for c in self.children if c.process and c.process.poll() is None]
        for child in running:
            self.say("system", f"sending SIGTERM to {child.name}")
            _signal_group(child.process, signal.SIGTERM)
        deadline = time.monotonic() + self.stop_timeout
        for child in running:
            try:
                child.process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.say("system", f"{child.name} did not stop in {self.stop_timeout:.0f}s; killing it")
                _signal_group(child.process, signal.SIGKILL)
                child.process.wait()
        for child in self.children:
            if child.pump:
                child.pump.join(2)


def _signal_group(process: subprocess.Popen[bytes], sig: int) -> None:
    """Signal the child's whole process group: Celery's pool processes must go too."""
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        pass

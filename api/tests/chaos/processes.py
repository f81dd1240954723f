"""Processes of the chaos suite: each in its own session (process group), output to a log file.

The service's processes are started with their Procfile command line, run by bash exactly as
honcho would run it, so a scenario exercises what production runs (gunicorn.conf.py, Celery's
prefork pool, beat's persisted schedule).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
BIN = ROOT / ".venv" / "bin"


def procfile_command(role: str) -> str:
    for line in (ROOT / "Procfile").read_text().splitlines():
        name, sep, command = line.partition(":")
        if sep and name.strip() == role and not line.startswith("#"):
            return command.strip()
    raise KeyError(role)


def children_of(pid: int) -> list[int]:
    """Direct children (e.g. a Celery worker's pool processes), from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(entry.name))
    return sorted(found)


class Proc:
    """One started process (its whole process group is stopped together)."""

    def __init__(self, name: str, command: str, env: dict, log: Path, netns: str = ""):
        self.name, self.command, self.env, self.log, self.netns = name, command, env, log, netns
        self.popen: subprocess.Popen | None = None

    def start(self) -> Proc:
        argv = ["bash", "-c", f"exec {self.command}"]
        if self.netns:
            argv = ["ip", "netns", "exec", self.netns, *argv]
        with open(self.log, "ab") as out:
            out.write(f"--- start {self.name}: {time.time():.3f}\n".encode())
            out.flush()
            self.popen = subprocess.Popen(  # noqa: S603 - our own commands
                argv,
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def signal_group(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, sig)

    def pool(self) -> list[int]:
        """A Celery worker's pool processes (children of the main process)."""
        return children_of(self.pid)

    def stop(self, timeout: float = 15) -> None:
        if self.popen is None:
            return
        if self.alive():
            self.signal_group(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout)
        self.signal_group(signal.SIGKILL)  # stragglers of the group (pool children)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(5)

    def kill(self) -> None:
        """SIGKILL the whole group at once (a lost host, an OOM kill)."""
        self.signal_group(signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(10)


def run(argv: list[str], *, env: dict | None = None, check: bool = True, **kwargs) -> str:
    done = subprocess.run(  # noqa: S603 - our own commands
        argv, cwd=ROOT, env=env, capture_output=True, text=True, check=False, **kwargs
    )
    if check and done.returncode != 0:
        raise RuntimeError(f"{argv[:4]} failed ({done.returncode}): {done.stderr[-2000:]}")
    return done.stdout


def wait_for(predicate, *, timeout: float, every: float = 0.2, what: str = "") -> float:
    """Poll until `predicate()` is true; returns the seconds it took."""
    started = time.monotonic()
    while True:
        with contextlib.suppress(Exception):
            if predicate():
                return time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"not within {timeout}s: {what}")
        time.sleep(every)

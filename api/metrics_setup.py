"""prometheus-client's multiprocess mode for a process tree (gunicorn's workers, a Celery
worker's prefork children). Django-free, and it must run before prometheus_client is imported
anywhere in the tree: the library picks its value storage at import time.

Each launcher gets a fresh directory of its own under METRICS_DIR (default: the system's temp
directory), so a web server and a worker on one host, or a restarted process, never read each
other's or stale files; the directory is removed when the launcher exits.
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile

OWNER = "TDS_METRICS_DIR_OWNER"  # the pid that made PROMETHEUS_MULTIPROC_DIR


def prepare(kind: str) -> str:
    """Point PROMETHEUS_MULTIPROC_DIR at a new directory for this process and its children.
    Again in the same process (gunicorn re-reads its config on SIGHUP): the same directory."""
    current = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if current and os.environ.get(OWNER) == str(os.getpid()) and os.path.isdir(current):
        return current
    if "prometheus_client" in sys.modules:
        raise RuntimeError(
            "prometheus_client was imported before its multiprocess directory was set"
        )
    parent = os.environ.get("METRICS_DIR") or tempfile.gettempdir()
    os.makedirs(parent, exist_ok=True)
    path = tempfile.mkdtemp(prefix=f"tds-metrics-{kind}-", dir=parent)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = path
    os.environ[OWNER] = str(os.getpid())
    owner = os.getpid()

    def remove() -> None:
        if os.getpid() == owner:  # not in a forked child that exits
            shutil.rmtree(path, ignore_errors=True)

    atexit.register(remove)
    return path


def child_exited(pid: int) -> None:
    """A worker process ended: its live-gauge files no longer count (counters stay summed)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)

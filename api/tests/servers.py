"""A real gunicorn (the project's gunicorn.conf.py) on a scratch SQLite database, for tests
that need the whole server: several worker processes, the access log."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def scratch_env(tmp_path: Path, **extra) -> dict[str, str]:
    """The environment of a fresh checkout: its own data folder, SQLite and signing key."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "CACHE_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="Work.settings",
        DATA_DIR=str(tmp_path),
        DATABASE_URL=f"sqlite:///{tmp_path}/db.sqlite3",
        DJANGO_SECRET_KEY="scratch-server-" + "k" * 40,
        **extra,
    )
    return env


@contextmanager
def gunicorn(env: dict[str, str], *args: str):
    """Migrate the scratch database, start gunicorn with `args`, yield its port, stop it."""
    subprocess.run(  # noqa: S603 - our own interpreter and code
        [sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True
    )
    port = free_port()
    server = subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "gunicorn", "Work.wsgi:application"]
        + ["--bind", f"127.0.0.1:{port}", "--log-level", "warning", *args],
        cwd=ROOT,
        env=env,
    )
    try:
        # Ready when a worker answers, not when the master has bound the port: on a busy
        # machine the workers take seconds to import Django, and a test's first request
        # would wait for them inside its own timeout.
        deadline = time.monotonic() + 90
        while True:
            try:
                urllib.request.urlopen(  # noqa: S310 - our own local server
                    f"http://127.0.0.1:{port}/healthz", timeout=10
                ).close()
                break
            except (OSError, urllib.error.URLError):
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("gunicorn did not start") from None
                time.sleep(0.2)
        yield port
    finally:
        server.terminate()
        server.wait(10)

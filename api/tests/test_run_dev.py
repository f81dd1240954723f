"""`make run` (scripts/run-dev.sh): the Procfile's web, worker and beat under honcho, in the
foreground with prefixed output; Ctrl-C stops every one of them and leaves nothing behind."""

import contextlib
import os
import re
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

from api.tests.servers import ROOT, free_port, scratch_env


def _processes_of(data_dir: Path) -> list[int]:
    """Every live process started with this DATA_DIR (honcho puts each in its own session)."""
    marker = f"DATA_DIR={data_dir}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if marker in environ.split(b"\0") and state != "Z":
            found.append(int(entry.name))
    return found


def _worker_and_beat_up(log: Path, data_dir: Path) -> bool:
    """The worker has printed its banner's task list (the app is loaded, it is about to
    consume) and beat has written its schedule file into DATA_DIR."""
    worker_up = re.search(r"worker\.1 *\| \[tasks\]", log.read_text()) is not None
    return worker_up and any(data_dir.glob("celerybeat-schedule*"))


def test_make_run_starts_the_procfile_and_ctrl_c_leaves_nothing_behind(tmp_path):
    port = free_port()
    env = scratch_env(tmp_path, PORT=str(port))
    env.pop("DJANGO_SECRET_KEY")  # as on a fresh checkout: a key is made in DATA_DIR
    log = tmp_path / "run.log"
    with log.open("w") as out:
        runner = subprocess.Popen(  # noqa: S603 - our own script
            ["./scripts/run-dev.sh"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            assert runner.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.5)
        while not _worker_and_beat_up(log, tmp_path):  # not a fixed sleep: they are seen up
            assert runner.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.2)
        text = log.read_text()
        for name in ("web.1", "worker.1", "beat.1"):
            assert f"{name} " in text or f"{name}|" in text, text[-3000:]
        assert len(_processes_of(tmp_path)) >= 5  # honcho, gunicorn x3, celery worker + beat
        assert (tmp_path / "secret_key").exists()
    finally:
        # What Ctrl-C does in a terminal (a group that already exited: the assertion says why).
        with contextlib.suppress(ProcessLookupError):
            os.killpg(runner.pid, signal.SIGINT)
        try:
            runner.wait(30)
        finally:
            deadline = time.monotonic() + 15
            while _processes_of(tmp_path) and time.monotonic() < deadline:
                time.sleep(0.5)
            left = _processes_of(tmp_path)
            for pid in left:
                os.kill(pid, signal.SIGKILL)
    assert not left, f"left behind: {left}"

"""An import whose worker is killed mid-way (a real `celery worker` process, kill -9) leaves
whole chunks or nothing, says on its row where it stopped, and once resumed ends exactly where
a clean run ends. Postgres (the lock, COPY) and Redis (the worker's broker)."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from celery import Celery
from django.db import connection

from api.models import Client, ClientImport, ClientImportChunk, ImportStatus
from api.services.client_import import create_import, run_stored_import
from api.tests.conftest import TEST_REDIS_URL

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True)]
ROOT = Path(__file__).resolve().parents[2]
ROWS, CHUNK = 60_000, 500


def build_file() -> tuple[bytes, dict[int, tuple], dict[str, tuple], dict[str, int]]:
    """The CSV, the valid first-seen rows by line, the clean run's final clients and counts."""
    lines = ["phone_number,mobile_operator_code,tag,timezone"]
    applied: dict[int, tuple] = {}
    final: dict[str, tuple] = {}
    counts = {"invalid": 0, "duplicate": 0}
    for n in range(ROWS):
        line = n + 2
        phone = f"7{n if n % 101 else n - 1:010d}"  # every 101st repeats the row before
        code = "9x0" if n % 97 == 0 else f"{900 + n % 7}"
        lines.append(f"{phone},{code},t{n % 5},Europe/Moscow")
        if not code.isdigit():
            counts["invalid"] += 1
        elif phone in final:
            counts["duplicate"] += 1
        else:
            applied[line] = final[phone] = (phone, code, f"t{n % 5}", "Europe/Moscow")
    counts["created"] = len(final)
    return ("\n".join(lines) + "\n").encode(), applied, final, counts


def start_worker(queue: str) -> subprocess.Popen:
    settings = connection.settings_dict
    database = (
        f"postgres://{settings['USER']}:{settings['PASSWORD'] or ''}@{settings['HOST']}:"
        f"{settings['PORT'] or 5432}/{settings['NAME']}"
    )
    env = {
        **os.environ,
        "DATABASE_URL": database,
        "CELERY_BROKER_URL": TEST_REDIS_URL,
        "LOG_LEVEL": "WARNING",
    }
    command = [sys.executable, "-m", "celery", "-A", "Work", "worker", "--pool", "solo"]
    command += ["-Q", queue, "--without-mingle", "--without-gossip", "-l", "WARNING"]
    return subprocess.Popen(command, cwd=ROOT, env=env)  # noqa: S603 - our own worker


def wait_for(predicate, seconds: float, message: str):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(message)


def test_killed_worker_leaves_whole_chunks_and_resume_ends_as_a_clean_run():
    data, applied, final, counts = build_file()
    job = create_import(source="csv", mode="upsert", stream=io.BytesIO(data))
    ClientImport.objects.filter(pk=job.pk).update(chunk_rows=CHUNK)
    kill_worker_mid_import(job.pk)
    stopped = ClientImport.objects.get(pk=job.pk)
    assert stopped.status == ImportStatus.RUNNING and 0 < stopped.committed_line < ROWS + 1
    assert stopped.committed_line % CHUNK == 1  # a chunk's last line (the header is line 1)
    assert stopped.rows_done == stopped.committed_line - 1
    # Whole chunks or nothing: exactly the clients of the chunks recorded as committed (two
    # writers: one beyond the unbroken prefix may be committed too), and that prefix.
    wait_for(lambda: not _killed_backend_alive(), 30, "the killed worker's session lingers")
    committed = set(
        ClientImportChunk.objects.filter(client_import=job).values_list("number", flat=True)
    )
    assert set(range(1, stopped.committed_line // CHUNK + 1)) <= committed
    expected = {row for line, row in applied.items() if (line - 2) // CHUNK + 1 in committed}
    assert set(_clients()) == expected

    done = run_stored_import(import_id=job.pk)

    assert done.status == ImportStatus.DONE
    assert set(_clients()) == set(final.values())
    assert done.counts == counts
    assert done.rows_done == ROWS
    # A re-run of the finished import, and the same file again: nothing written.
    assert run_stored_import(import_id=job.pk).counts == done.counts
    again = create_import(source="csv", mode="upsert", stream=io.BytesIO(data))
    unchanged = {**counts, "unchanged": counts["created"]}
    del unchanged["created"]
    assert run_stored_import(import_id=again.pk).counts == unchanged


def kill_worker_mid_import(import_id: int) -> None:
    """A real worker takes the import; SIGKILL once it has committed ten chunks."""
    queue = f"import-test-{uuid.uuid4().hex[:8]}"
    worker = start_worker(queue)
    try:
        # set_as_current=False: a new app made current would take over every later
        # `shared_task.delay()` in this process (not eager, a default broker).
        with Celery(broker=TEST_REDIS_URL, set_as_current=False) as sender:
            sender.send_task("api.tasks.import_clients", args=[import_id], queue=queue)
        wait_for(
            lambda: ClientImport.objects.get(pk=import_id).committed_line >= 10 * CHUNK,
            120,
            "the worker committed no chunk",
        )
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
    finally:
        if worker.poll() is None:
            worker.kill()


def _clients() -> list[tuple]:
    return list(
        Client.objects.values_list("phone_number", "mobile_operator_code", "tag", "timezone")
    )


def _killed_backend_alive() -> bool:
    """The dead worker's Postgres session, still finishing its statement (it holds the
    import's lock and its uncommitted chunk until it notices the client is gone)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = 13")
        return cursor.fetchone()[0] > 0

"""Bulk client import end to end: a CSV upload through the API, a worker, the report.

    .venv/bin/python bench/bench_import.py --rows 1000000 --repeat 3

Writes a CSV of N clients (1 % refused: a bad operator code), then per repeat, on an emptied
client table: POST /api/clients/import/ to a real gunicorn (202), a real Celery worker runs the
import, the script polls GET /api/imports/<id>/ until done. Then the same file again (every
row unchanged: nothing written) and a file changing every client's tag (every row an update).
In the same run: a bare COPY of the file into an unindexed table (the floor), and 10,000 rows
through POST /api/clients/bulk/ in one request. Peak RSS growth of the worker and of the
gunicorn workers. Targets (issue 13): >= 50,000 rows/s (1M in <= 20 s), RSS growth < 100 MB,
re-import <= 30 s.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench import common, db, processes  # noqa: E402

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/imports_bench"
ZONES = ["Europe/Moscow", "UTC", "Asia/Tokyo", "America/New_York", "Europe/Berlin"]


def write_csv(path: Path, rows: int, *, tag: str = "tag", seed: int = 13) -> None:
    """`rows` clients with random distinct phones; every 100th has a bad operator code."""
    phones = random.Random(seed).sample(range(10**10), rows)
    with path.open("w") as out:
        out.write("phone_number,mobile_operator_code,tag,timezone\n")
        for i, phone in enumerate(phones):
            code = "9x0" if i % 100 == 50 else str(900 + i % 50)
            out.write(f"7{phone:010d},{code},{tag}{i % 20},{ZONES[i % 5]}\n")


def bare_copy(path: Path) -> float:
    """Seconds to COPY the file into an unindexed table (the floor for any import)."""
    from django.db import connection

    db.execute("DROP TABLE IF EXISTS bench_import_copy")
    db.execute("CREATE TABLE bench_import_copy (phone text, code text, tag text, zone text)")
    started = time.perf_counter()
    with connection.cursor() as cursor, path.open("rb") as source:
        sql = "COPY bench_import_copy FROM STDIN (FORMAT csv, HEADER)"
        with cursor.cursor.copy(sql) as copy:
            while block := source.read(1024 * 1024):
                copy.write(block)
    elapsed = time.perf_counter() - started
    db.execute("DROP TABLE bench_import_copy")
    return elapsed


def upload(port: int, token: str, path: Path) -> dict:
    """POST the file as multipart/form-data, streamed from disk."""
    boundary = "bench-import-boundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{path.name}"'
        "\r\nContent-Type: text/csv\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    conn.putrequest("POST", "/api/clients/import/")
    conn.putheader("Authorization", f"Bearer {token}")
    conn.putheader("Content-Type", f"multipart/form-data; boundary={boundary}")
    conn.putheader("Content-Length", str(len(head) + path.stat().st_size + len(tail)))
    conn.endheaders()
    conn.send(head)
    with path.open("rb") as source:
        while block := source.read(1024 * 1024):
            conn.send(block)
    conn.send(tail)
    response = conn.getresponse()
    body = json.loads(response.read())
    if response.status not in (200, 202):
        raise SystemExit(f"upload answered {response.status}: {body}")
    return body


def wait_done(port: int, token: str, import_id: int) -> dict:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    while True:
        status, data, _ = processes.request(conn, "GET", f"/api/imports/{import_id}/", token=token)
        body = json.loads(data)
        if body["status"] in ("done", "failed"):
            return body
        time.sleep(0.1)


class PeakRss:
    """Peak RSS growth (MB) of some processes, from VmHWM after resetting it via clear_refs."""

    def __init__(self, pids: list[int]):
        self.pids = pids
        for pid in pids:
            Path(f"/proc/{pid}/clear_refs").write_text("5")
        self.before = {pid: self._kib(pid, "VmRSS") for pid in pids}

    @staticmethod
    def _kib(pid: int, key: str) -> int:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
        return 0

    def growth_mb(self) -> float:
        return max((self._kib(p, "VmHWM") - self.before[p]) * 1024 / 1e6 for p in self.pids)


def children(pid: int) -> list[int]:
    found = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(child) for child in found]


def timed_import(port, token, path, pids, rows) -> dict:
    rss = PeakRss(pids["worker"] + pids["web"])
    worker_rss = PeakRss(pids["worker"])
    web_rss = PeakRss(pids["web"])
    started = time.perf_counter()
    accepted = upload(port, token, path)
    uploaded = time.perf_counter() - started
    report = wait_done(port, token, accepted["id"])
    elapsed = time.perf_counter() - started
    assert report["status"] == "done", report
    return {
        "seconds": elapsed,
        "upload_seconds": uploaded,
        "rows_per_s": rows / elapsed,
        "rss_worker_mb": worker_rss.growth_mb(),
        "rss_web_mb": web_rss.growth_mb(),
        "rss_mb": rss.growth_mb(),
        "counts": {k: v for k, v in report["counts"].items() if v},
        "loadavg": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


def start_worker(env: dict[str, str]):
    command = [sys.executable, "-m", "celery", "-A", "Work", "worker", "--pool", "solo"]
    command += ["--without-mingle", "--without-gossip", "-l", "WARNING"]
    import subprocess

    worker = subprocess.Popen(command, cwd=processes.ROOT, env=env)  # noqa: S603 - our worker
    time.sleep(3)  # importing Django; its first task waits in Redis meanwhile anyway
    return worker


def bulk_json(port: int, token: str, rows: int) -> float:
    rng = random.Random(7)
    body = [
        {"phone_number": f"7{rng.randrange(10**10):010d}", "mobile_operator_code": "900",
         "tag": "bulk", "timezone": "UTC"}
        for _ in range(rows)
    ]  # fmt: skip
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    status, data, elapsed = processes.request(conn, "POST", "/api/clients/bulk/", body, token)
    if status != 200:
        raise SystemExit(f"bulk answered {status}: {data[:300]!r}")
    return elapsed


def main() -> None:
    parser = common.arguments(__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--port", type=int, default=18301)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/4")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target fails")
    args = parser.parse_args()
    url = os.environ.get("BENCH_IMPORT_DATABASE_URL", DEFAULT_URL)
    env = {"CELERY_BROKER_URL": args.redis, "LOG_LEVEL": "WARNING"}
    common.begin(f"bulk client import: {args.rows:,} rows", database_url=url, extra_env=env)
    from bench.fixtures import api_user

    api_user("bench-import", "bench-import-pass")
    processes.flush_redis(args.redis)
    folder = Path(tempfile.mkdtemp(prefix="bench-import-"))
    first, changed = folder / "clients.csv", folder / "clients-changed.csv"
    write_csv(first, args.rows)
    write_csv(changed, args.rows, tag="new")  # the same phones, every tag different
    print(f"file: {first.stat().st_size / 1e6:.1f} MB")

    try:
        results = run_repeats(args, first, changed)
    finally:
        for path in (first, changed):
            path.unlink()
        folder.rmdir()
    summarize(results, args)


def run_repeats(args, first: Path, changed: Path) -> dict:
    """gunicorn and a worker; per repeat on an emptied table: COPY floor, fresh import, the
    same file again, the changed file, 10k rows of JSON."""
    server_env = {**os.environ, "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost"}
    web = processes.start_gunicorn(args.port, server_env)
    worker = start_worker(server_env)
    try:
        conn = http.client.HTTPConnection("127.0.0.1", args.port, timeout=60)
        token = processes.obtain_token(conn, "bench-import", "bench-import-pass")
        pids = {"web": children(web.pid), "worker": [worker.pid]}
        results = {"copy": [], "fresh": [], "same": [], "update": [], "bulk": []}
        for _ in range(args.repeat):
            db.execute("TRUNCATE api_client RESTART IDENTITY CASCADE")
            db.vacuum_analyze("api_client")
            results["copy"].append(bare_copy(first))
            results["fresh"].append(timed_import(args.port, token, first, pids, args.rows))
            results["same"].append(timed_import(args.port, token, first, pids, args.rows))
            results["update"].append(timed_import(args.port, token, changed, pids, args.rows))
            results["bulk"].append(bulk_json(args.port, token, 10_000))
            print(json.dumps({k: v[-1] for k, v in results.items()}, default=str))
        return results
    finally:
        processes.stop(worker, web)


def summarize(results: dict, args) -> None:
    rows = args.rows
    copy = common.median(results["copy"])
    table, targets = [], []
    for case in ("fresh", "same", "update"):
        runs = results[case]
        seconds = common.median(r["seconds"] for r in runs)
        table.append(
            [case, common.secs(seconds), f"{rows / seconds:,.0f}", f"{seconds / copy:.1f}x",
             f"{max(r['rss_worker_mb'] for r in runs):.1f}",
             f"{max(r['rss_web_mb'] for r in runs):.1f}", runs[-1]["counts"],
             " / ".join(r["loadavg"].split()[0] for r in runs)]
        )  # fmt: skip
    print(f"\nbare COPY of the file into an unindexed table: {common.secs(copy)} "
          f"({rows / copy:,.0f} rows/s), median of {len(results['copy'])}")  # fmt: skip
    common.print_table(
        ["import", "median", "rows/s", "vs COPY", "worker RSS+ MB", "web RSS+ MB", "counts",
         "load (1 min)"], table, title=f"{rows:,} rows through POST /api/clients/import/",
    )  # fmt: skip
    bulk = common.median(results["bulk"])
    print(f"\n10,000 rows through POST /api/clients/bulk/: {common.secs(bulk)} median"
          f" ({10_000 / bulk:,.0f} rows/s)")  # fmt: skip
    fresh = common.median(r["seconds"] for r in results["fresh"])
    again = max(common.median(r["seconds"] for r in results[c]) for c in ("same", "update"))
    rss = max(r["rss_mb"] for c in ("fresh", "same", "update") for r in results[c])
    scale = rows / 1_000_000
    targets = [
        ["1M rows <= 20 s (>= 50,000 rows/s)", f"{rows / fresh:,.0f} rows/s",
         common.verdict(rows / fresh >= 50_000)],
        ["re-import <= 30 s per 1M", f"{again / scale:.1f} s per 1M",
         common.verdict(again / scale <= 30)],
        ["peak RSS growth < 100 MB", f"{rss:.1f} MB", common.verdict(rss < 100)],
    ]  # fmt: skip
    common.print_targets(targets)
    common.save_results("import", {"rows": rows, "results": results})
    raise SystemExit(common.exit_code(targets, args.strict))


if __name__ == "__main__":
    main()

"""Faults from outside, on the real stack: how many messages are sent twice, how long one waits.

Two scenarios, each on a real Celery worker (prefork) and beat, Redis as the broker, Postgres,
and the development gateway (`manage.py fake_gateway`, which counts every accepted id it is sent
again: a double SMS at a gateway that does not deduplicate):

    .venv/bin/python bench/bench_faults.py kill --messages 2000 --kills 3 --error-rate 0.45
    .venv/bin/python bench/bench_faults.py pg-restart --messages 50000

`kill` SIGKILLs every pool process of the worker `--kills` times, `--kill-every` seconds apart,
while a gateway fails `--error-rate` of its requests (503). `pg-restart` restarts Postgres
(`pg_ctlcluster ... restart -m fast`, every connection cut) when a quarter of the messages are
out: it needs root and a Debian cluster, and it cuts every other client of that server too.

Settings are the service's defaults except retries (first backoff 1 s, cap 5 s, so that a
45 %-failing gateway finishes in seconds) and the gateway's latency. Printed: messages, requests,
accepted ids received again, seconds until every message was settled, and for `kill` how long
after the last kill the last stranded message went out.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench import common, processes  # noqa: E402
from bench.fixtures import prepare_messages  # noqa: E402
from bench.processes import gateway_stats  # noqa: E402

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/tds_bench_faults"
DEFAULT_REDIS = "redis://127.0.0.1:6379/13"


def open_counts(database_url: str) -> dict[str, int]:
    """Messages by status, on a fresh connection (the server may have just restarted)."""
    import psycopg

    url = database_url.replace("postgres://", "postgresql://")
    for _ in range(100):
        try:
            with psycopg.connect(url, connect_timeout=2) as conn:
                rows = conn.execute("SELECT status, count(*) FROM api_message GROUP BY 1")
                return dict(rows.fetchall())
        except psycopg.OperationalError:
            time.sleep(0.2)
    raise RuntimeError("the database did not come back")


def pool_children(pid: int) -> list[int]:
    children = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(child) for child in children.read_text().split()] if children.exists() else []


def restart_postgres() -> float:
    version = sorted(os.listdir("/etc/postgresql"))[-1]
    started = time.monotonic()
    subprocess.run(  # noqa: S603 - fixed arguments
        ["/usr/bin/pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart"]
        + ["-m", "fast"],
        check=True,
    )
    return time.monotonic() - started


def run(args) -> None:
    database_url = os.environ.get("BENCH_FAULTS_DATABASE_URL", DEFAULT_URL)
    redis_url = os.environ.get("BENCH_FAULTS_REDIS_URL", DEFAULT_REDIS)
    port = processes.free_port()
    common.setup_django(
        database_url=database_url,
        migrate=False,  # prepare_messages migrates
        extra_env={
            "DJANGO_DEBUG": "false",
            "CELERY_BROKER_URL": redis_url,
            "SMS_GATEWAY_URL": f"http://127.0.0.1:{port}",
            "SMS_GATEWAY_TOKEN": "bench-token",
            "SMS_RETRY_BASE_SECONDS": "1",
            "SMS_RETRY_MAX_SECONDS": "5",
            "LOG_LEVEL": "WARNING",
        },
    )
    env = dict(os.environ)  # what the gateway, the worker and beat run with
    from django.db import connections

    from Work.celery import app

    prepare_messages(args.messages)
    connections.close_all()
    processes.flush_redis(redis_url)
    python = sys.executable
    gateway_cmd = [python, "manage.py", "fake_gateway", "--port", str(port)]
    gateway_cmd += ["--token", "bench-token", "--no-record", "--latency-ms", str(args.latency_ms)]
    gateway_cmd += ["--error-rate", str(args.error_rate)]
    scratch = tempfile.mkdtemp(prefix="bench-faults-")
    started_processes = {
        "gateway": subprocess.Popen(  # noqa: S603 - our own commands
            gateway_cmd, cwd=ROOT, env={**env, "DATABASE_URL": ""}, stdout=subprocess.DEVNULL
        ),
        "worker": subprocess.Popen(  # noqa: S603
            [python, "-m", "celery", "-A", "Work", "worker", "-P", "prefork"]
            + ["-c", str(args.pool), "--without-gossip", "--without-mingle", "-l", "WARNING"],
            cwd=ROOT,
            env=env,
        ),
        "beat": subprocess.Popen(  # noqa: S603
            [python, "-m", "celery", "-A", "Work", "beat", "-l", "WARNING"]
            + ["-s", f"{scratch}/schedule"],
            cwd=ROOT,
            env=env,
        ),
    }
    try:
        for _ in range(150):
            if len(pool_children(started_processes["worker"].pid)) == args.pool:
                break
            time.sleep(0.2)
        started = time.monotonic()
        app.send_task("api.tasks.dispatch")
        last_fault, restart_seconds = None, None
        if args.scenario == "kill":
            for number in range(args.kills):
                time.sleep(args.kill_every)
                children = pool_children(started_processes["worker"].pid)
                for child in children:
                    os.kill(child, signal.SIGKILL)
                last_fault = time.monotonic()
                print(f"kill {number + 1}: {len(children)} pool processes", flush=True)
        else:
            while gateway_stats(port)["delivered"] < args.messages // 4:
                time.sleep(0.05)
            restart_seconds = restart_postgres()
            last_fault = time.monotonic()
            print(f"postgres restarted in {restart_seconds:.1f} s", flush=True)
        while True:
            counts = open_counts(database_url)
            if not counts.get("pending") and not counts.get("sending"):
                break
            if time.monotonic() - started > args.timeout:
                print(f"not settled after {args.timeout} s: {counts}")
                break
            time.sleep(0.25)
        settled = time.monotonic()
        stats = gateway_stats(port)
    finally:
        processes.stop(*started_processes.values(), timeout=20)
    print()
    print(f"scenario                 {args.scenario}")
    print(f"messages                 {args.messages}  ({counts})")
    print(f"gateway requests         {stats['requests']}  (error rate {args.error_rate:.0%})")
    print(f"accepted ids sent again  {stats['duplicates']}")
    print(f"settled after            {settled - started:.1f} s")
    print(f"  of which after the last fault {settled - last_fault:.1f} s")


def main() -> None:
    parser = common.arguments(__doc__)
    parser.add_argument("scenario", choices=["kill", "pg-restart"])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--kills", type=int, default=3)
    parser.add_argument("--kill-every", type=float, default=1.5)
    parser.add_argument("--pool", type=int, default=3)
    parser.add_argument("--error-rate", type=float, default=0.0)
    parser.add_argument("--latency-ms", type=float, default=50)
    parser.add_argument("--timeout", type=float, default=600)
    run(parser.parse_args())


if __name__ == "__main__":
    main()

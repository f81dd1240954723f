"""Mixed API traffic at a bounded rate while a large campaign dispatches (issue #14, Load).

Targets (this 2-core box): 0 errors and p99 < 100 ms per endpoint at 300 requests/s, and the
dispatch slowed by < 30 % (its rate alone vs under the load, in the same round).

    .venv/bin/python bench/bench_load.py --messages 100000 --seconds 60 --rounds 3
    .venv/bin/python bench/bench_load.py --messages 5000 --seconds 10 --rounds 1   # a quick look

gunicorn serves the API as the Procfile starts it (4 workers x 2 threads, gunicorn.conf.py);
`--workers` processes run dispatch_due_messages() (the stream a Celery worker runs) against
bench/sink.py, which answers each send `--latency-ms` later (a real gateway's latency; at 100
ms two processes send ~1,700 msg/s, so 100,000 messages take about the load's 60 s). Each
round dispatches the campaign once alone, then again (re-planned) under the load. The traffic
is one wrk per kind of request (bench/wrk_load.lua, paced callers), so each endpoint has its
own latency histogram; wrk times from send to reply, on loopback. All of it comes from one
address, so the token throttle (20/min per address) is raised for the run.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench import common, cpu_share, processes  # noqa: E402
from bench.fixtures import api_user, prepare_messages  # noqa: E402

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/tds_bench_load"
SCRIPT = Path(__file__).resolve().parent / "wrk_load.lua"
# Requests/s of each kind in a 300/s mix (scaled to --rate): mostly reads, as integrators poll.
MIX = {
    "client_list": 75,
    "message_list": 45,
    "campaign_list": 30,
    "campaign_stats": 60,
    "client_create": 30,
    "client_update": 45,
    "token_refresh": 15,
}


def worker_process(queue) -> None:
    import django

    django.setup()
    from api.services.dispatch import dispatch_due_messages

    started = time.perf_counter()
    report = dispatch_due_messages(time_budget=3600)
    queue.put((report.outcomes.get("sent", 0), time.perf_counter() - started))


class Dispatch:
    """The dispatch running in the background (`--workers` forked processes), and how many
    sends the sink has seen since it started."""

    def __init__(self, workers: int, sink_port: int):
        import threading

        from django.db import connections

        connections.close_all()  # the forked processes must not share the parent's connection
        self.sink_port = sink_port
        self.first = processes.gateway_stats(sink_port)["requests"]
        self.started = time.perf_counter()
        self.result: dict = {}
        self.thread = threading.Thread(target=self._run, args=(workers,))
        self.thread.start()

    def _run(self, workers: int) -> None:
        self.result["seconds"], outcomes = processes.fork_and_collect(
            worker_process, [()] * workers
        )
        self.result["sent"] = sum(sent for sent, _ in outcomes)

    def rate_so_far(self) -> float:
        """Sends per second from the start until now, or until the dispatch ended if it did."""
        sent = processes.gateway_stats(self.sink_port)["requests"] - self.first
        elapsed = self.result.get("seconds") or time.perf_counter() - self.started
        return sent / elapsed

    def wait(self) -> tuple[int, float]:
        self.thread.join()
        return self.result["sent"], self.result["seconds"]


def start_wrk(kind: str, rate: float, args, env: dict) -> subprocess.Popen:
    """One paced wrk for `kind`: enough connections that each, waiting pace + latency between
    requests, offers `rate` requests/s between them."""
    connections = max(1, round(rate * (args.pace_ms + args.expected_ms) / 1000))
    command = [shutil.which("wrk"), "-t1", f"-c{connections}", f"-d{args.seconds}s"]
    command += ["--timeout", "5s", "-s", str(SCRIPT), "-H", f"Authorization: Bearer {env['token']}"]
    wrk_env = {**os.environ, "WRK_KIND": kind, "WRK_PACE_MS": str(args.pace_ms), **env["wrk"]}
    if kind == "token_refresh":
        # Spare tokens: wrk may build a request it never sends (a connection's first).
        wrk_env["WRK_TOKENS"] = ",".join(env["refresh"](2 * connections + 4))
    command.append(env["url"])
    return subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=wrk_env)  # noqa: S603


def collect(process: subprocess.Popen) -> dict:
    out, _ = process.communicate(timeout=600)
    line = next((x for x in out.splitlines() if x.startswith("LOAD ")), None)
    if line is None:
        raise SystemExit(f"wrk printed no summary:\n{out}")
    result = json.loads(line[5:])
    result["errors"] = sum(n for code, n in result["statuses"].items() if not code.startswith("2"))
    result["errors"] += sum(result[key] for key in ("connect", "read", "write", "timeout"))
    return result


def refresh_tokens(user):
    from rest_framework_simplejwt.tokens import RefreshToken

    return lambda count: [str(RefreshToken.for_user(user)) for _ in range(count)]


class AnalyzeEvery:
    """ANALYZE the message table every `seconds` in the background, as autovacuum's analyze
    does on a production server (autovacuum_naptime = 10 s, the 2 % analyze scale factor each
    partition is created with; see "Autovacuum on the message partitions"). This CI server runs
    with autovacuum off: without it the planner keeps the statistics of the freshly planned
    run ("all pending") through the whole dispatch, estimates 1 row for status=sent, and
    lists a campaign's sent messages with a scan and sort of the whole partition (191 ms
    instead of 0.3 ms, EXPLAIN ANALYZE)."""

    def __init__(self, seconds: float):
        import threading

        self.seconds, self.stop = seconds, threading.Event()
        self.thread = threading.Thread(target=self._run)

    def _run(self) -> None:
        from django.db import connection

        try:
            while not self.stop.wait(self.seconds):
                with connection.cursor() as cursor:
                    cursor.execute("ANALYZE api_message")
        finally:
            connection.close()

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join()


def one_round(args, env: dict) -> dict:
    """The campaign dispatched alone, then again under the load; each rate is taken over the
    load's window (`--seconds`) or the whole dispatch if it ends sooner."""
    from api.models import Campaign

    prepare_messages(args.messages)
    with AnalyzeEvery(args.analyze_every):
        alone = Dispatch(args.workers, env["sink_port"])
        alone.thread.join(args.seconds)
        alone_rate = alone.rate_so_far()
        alone_sent, alone_s = alone.wait()
    assert alone_sent == args.messages, f"{alone_sent} of {args.messages} sent alone"
    prepare_messages(args.messages)  # the same campaign again, re-planned
    campaign = Campaign.objects.get()
    env["wrk"].update({"WRK_CAMPAIGN": str(campaign.pk), "WRK_CLIENTS": str(args.messages)})
    scale = args.rate / sum(MIX.values())
    wrks = {kind: start_wrk(kind, share * scale, args, env) for kind, share in MIX.items()}
    with AnalyzeEvery(args.analyze_every):
        loaded = Dispatch(args.workers, env["sink_port"])
        cores = cpu_during(args.seconds, env, {p.pid: "wrk" for p in wrks.values()})
        results = {kind: collect(process) for kind, process in wrks.items()}
        loaded_rate = loaded.rate_so_far()
        loaded_sent, loaded_s = loaded.wait()
    assert loaded_sent == args.messages, f"{loaded_sent} of {args.messages} sent under load"
    return {
        "endpoints": results,
        "alone_rate": alone_rate,
        "loaded_rate": loaded_rate,
        "alone_seconds": alone_s,
        "loaded_seconds": loaded_s,
        "loadavg": os.getloadavg(),
        "cores": cores,
    }


def cpu_during(seconds: int, env: dict, roles: dict[int, str]) -> dict[str, float]:
    """Cores used by each part over the load's window (its first and last seconds aside, so
    every process is alive at both snapshots)."""
    from django.db import connection

    def database_pids() -> set[int]:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
            return {pid for (pid,) in cursor.fetchall()}

    roles = {**roles, **env["roles"]}
    time.sleep(1)
    started, pids = time.perf_counter(), database_pids()
    before = cpu_share.snapshot(roles, pids)
    time.sleep(max(1, seconds - 3))
    pids |= database_pids()
    after = cpu_share.snapshot(roles, pids)
    connection.close()  # not held across the fork of the next round's dispatch
    return cpu_share.shares(before, after, time.perf_counter() - started)


def report(rounds: list[dict], target_rate: float) -> list[list]:
    """Per endpoint, the median over rounds of each percentile; errors summed."""
    rows = []
    for kind in MIX:
        runs = [r["endpoints"][kind] for r in rounds]
        rate = common.median(x["requests"] / x["seconds"] for x in runs)
        # A round whose every request timed out has no latencies (wrk reports 0): infinite.
        cells = [
            common.median(x[f"p{p}_us"] / 1000 if x[f"p{p}_us"] else float("inf") for x in runs)
            for p in (50, 95, 99)
        ]
        errors = sum(x["errors"] for x in runs)
        codes = sorted({code for x in runs for code in x["statuses"]})
        rows.append([kind, f"{rate:.1f}", *(f"{c:.1f}" for c in cells), errors, codes])
    common.print_table(
        ["endpoint", "req/s", "p50 ms", "p95 ms", "p99 ms", "errors", "statuses"], rows
    )
    total = sum(float(row[1]) for row in rows)
    worst = max(float(row[4]) for row in rows)
    errors = sum(row[5] for row in rows)
    slowdowns = [1 - r["loaded_rate"] / r["alone_rate"] for r in rounds]
    for number, r in enumerate(rounds, 1):
        print(
            f"round {number}: dispatch alone {r['alone_rate']:.0f} msg/s, under load"
            f" {r['loaded_rate']:.0f} msg/s (over the load's window; the whole campaign took"
            f" {r['alone_seconds']:.0f} s alone, {r['loaded_seconds']:.0f} s under load),"
            f" load average {r['loadavg'][0]:.2f}"
        )
        cores = ", ".join(f"{role} {value:.2f}" for role, value in r["cores"].items())
        print(f"  cores used during the load: {cores}")
    slowdown = common.median(slowdowns)
    return [
        # wrk's callers wait for each reply: a slow server lowers the rate it is offered.
        [
            f"served >= 95 % of {target_rate:.0f} req/s",
            f"{total:.0f} req/s",
            common.verdict(total >= 0.95 * target_rate),
        ],
        ["0 errors", str(errors), common.verdict(errors == 0)],
        ["p99 < 100 ms, every endpoint", f"worst {worst:.1f} ms", common.verdict(worst < 100)],
        ["dispatch slowed < 30 %", f"{slowdown:.0%} (median)", common.verdict(slowdown < 0.3)],
    ]


def main() -> int:
    parser = common.arguments(__doc__)
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--rate", type=float, default=300, help="requests/s offered in all")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2, help="dispatching processes")
    parser.add_argument("--latency-ms", type=float, default=100, help="the sink's reply delay")
    parser.add_argument("--pace-ms", type=int, default=1000, help="mean wait between requests")
    parser.add_argument("--expected-ms", type=int, default=10, help="latency assumed for pacing")
    parser.add_argument(
        "--analyze-every", type=float, default=10, help="seconds between ANALYZEs (autovacuum's)"
    )
    parser.add_argument("--port", type=int, default=0, help="gunicorn's; the sink takes +1")
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", ""))
    parser.add_argument(
        "--profile", type=int, default=0, help="then time each kind N times in process, profiled"
    )
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("needs wrk on the PATH: apt-get install wrk")

    port = args.port or processes.free_port()
    sink_port = port + 1 if args.port else processes.free_port()
    settings_env = {
        "SMS_GATEWAY_URL": f"http://127.0.0.1:{sink_port}",
        "SMS_GATEWAY_TOKEN": "bench-token",
        "TOKEN_RATE_PER_IP": "1000000/min",  # one address sends everything
    }
    if args.redis_url:  # the throttle counters' cache and the broker, as in production
        settings_env.update({"CACHE_URL": args.redis_url, "CELERY_BROKER_URL": args.redis_url})
    url, machine = common.begin(
        "Load: mixed API traffic while a campaign dispatches",
        database_url=os.environ.get("BENCH_LOAD_DATABASE_URL", DEFAULT_URL),
        extra_env=settings_env,
    )
    from rest_framework_simplejwt.tokens import AccessToken

    user = api_user("bench-load", "bench-load-password")
    env = {
        "url": f"http://127.0.0.1:{port}",
        "token": str(AccessToken.for_user(user)),
        "refresh": refresh_tokens(user),
        "wrk": {"WRK_PHONES": "77"},
        "sink_port": sink_port,
    }
    gunicorn = processes.start_gunicorn(port, dict(os.environ))
    sink = processes.start_sink(sink_port, args.latency_ms)
    env["roles"] = {gunicorn.pid: "api (gunicorn)", sink.pid: "sink"}
    try:
        rounds = [one_round(args, env) for _ in range(args.rounds)]
    finally:
        processes.stop(gunicorn, sink)
    targets = report(rounds, args.rate) if rounds else []
    common.print_targets(targets)
    if args.profile:
        if not rounds:  # --rounds 0: the fixture alone, then the profile
            prepare_messages(args.messages)
        from api.models import Campaign
        from bench.request_profile import profile_requests

        campaign = Campaign.objects.get().pk
        profile_requests(env["token"], user, campaign, args.messages, MIX, args.profile)
    common.save_results("load", {"machine": machine, "args": vars(args), "rounds": rounds})
    return common.exit_code(targets, args.strict)


if __name__ == "__main__":
    sys.exit(main())

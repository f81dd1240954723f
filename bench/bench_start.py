"""Starting a campaign: POST /api/campaigns/<id>/start/ must answer 202 in < 50 ms whatever the
audience size.

A real gunicorn (as `make run` starts it: 4 workers x 2 threads) is started on a free localhost
port against the bench database, with CELERY_BROKER_URL on a local Redis db (default
redis://127.0.0.1:6379/14, flushed afterwards), so the plan_run `.delay()` after commit is a real
enqueue (no worker consumes it). A user signs in at POST /api/token/ for a real JWT. Draft
campaigns (auto_start false, created with the ORM, start = now) targeting a 1,000,000-client tag
and a 1,000-client tag are started alternately over one keep-alive connection; the latency of
each request is measured at the client. The service call alone (start_campaign, in process) is
timed too, to separate it from HTTP and auth.

    .venv/bin/python bench/bench_start.py --clients 1000000 --starts 20
"""

from __future__ import annotations

import http.client
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench import common, db, fixtures, processes  # noqa: I001 - the path line above must run first

TARGET_MS = 50.0
SMALL_AUDIENCE = 1_000
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/14"
USERNAME = "bench"
PASSWORD = "bench-password-not-secret"


def draft_campaigns(tag: str, count: int) -> list[int]:
    from datetime import timedelta

    from django.utils import timezone

    from api.models import Campaign, CampaignStatus

    now = timezone.now()
    campaigns = [
        Campaign(
            text_message="Benchmark start",
            start_datetime=now,
            end_datetime=now + timedelta(days=3),
            tag=tag,
            status=CampaignStatus.DRAFT,
        )
        for _ in range(count)
    ]
    return [c.pk for c in Campaign.objects.bulk_create(campaigns)]


def force_resend_scenario(
    conn: http.client.HTTPConnection, token: str, audiences: dict, samples: int
) -> dict:
    """POST start with force_resend on a campaign whose run is planned (its whole audience
    pending): the request closes the old run before answering. `samples` times per audience
    (a fresh run planned each time), median reported: a single request can land on a
    gunicorn thread that has not talked to the database or the broker yet."""
    from api.services.campaigns import start_campaign
    from api.services.planning import plan_run

    results = {}
    for name, (tag, size) in audiences.items():
        timings, statuses, planned, body = [], [], 0, b""
        for _ in range(samples):
            (campaign_id,) = draft_campaigns(tag, 1)
            run = start_campaign(campaign_id=campaign_id)
            with common.stopwatch() as planning:
                planned = plan_run(run_id=run.id).planned
            db.vacuum_analyze("api_message")
            # A fresh connection: the keep-alive one was closed by gunicorn while we planned.
            # An untimed GET first, so the timed POST pays for the request, not for a worker's
            # first one.
            fresh = http.client.HTTPConnection(conn.host, conn.port, timeout=600)
            started = time.perf_counter()
            try:
                processes.request(fresh, "GET", f"/api/campaigns/{campaign_id}/", token=token)
                started = time.perf_counter()
                status, body, elapsed = processes.request(
                    fresh,
                    "POST",
                    f"/api/campaigns/{campaign_id}/start/",
                    {"force_resend": True},
                    token,
                )
            except (OSError, http.client.HTTPException) as exc:
                status, body = f"error {type(exc).__name__}", b""
                elapsed = time.perf_counter() - started
            finally:
                fresh.close()
            timings.append(elapsed)
            statuses.append(status)
            print(
                f"force_resend with {planned:,} planned messages ({tag}; planned in"
                f" {planning():.1f} s): HTTP {status} in {common.ms(elapsed)}"
            )
        results[name] = {
            "size": size,
            "planned": planned,
            "status": statuses[0] if len(set(statuses)) == 1 else statuses,
            "seconds": common.median(timings),
            "samples": timings,
            "body": body[:300].decode(errors="replace"),
        }
    return results


def queued_tasks(redis_url: str) -> dict[str, int]:
    """Tasks waiting in the Celery queue, by task name (a Celery message's headers.task)."""
    import redis

    client = redis.Redis.from_url(redis_url)
    counts: dict[str, int] = {}
    for raw in client.lrange("celery", 0, -1):
        try:
            name = json.loads(raw)["headers"]["task"]
        except (ValueError, KeyError, TypeError):
            name = "?"
        counts[name] = counts.get(name, 0) + 1
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = common.arguments(__doc__)
    parser.add_argument("--clients", type=int, default=1_000_000, help="the large audience")
    parser.add_argument("--starts", type=int, default=20, help="timed starts per audience")
    parser.add_argument("--warmup", type=int, default=3, help="untimed starts per audience")
    parser.add_argument(
        "--no-resend", action="store_true", help="skip the force_resend of a planned run"
    )
    parser.add_argument(
        "--resends", type=int, default=3, help="force_resend samples per audience (median)"
    )
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target fails")
    args = parser.parse_args(argv)

    redis_url = os.environ.get("BENCH_REDIS_URL") or DEFAULT_REDIS_URL
    try:
        import redis

        redis.Redis.from_url(redis_url, socket_connect_timeout=2).ping()
    except Exception as exc:  # noqa: BLE001 - any failure means no broker to enqueue into
        raise SystemExit(
            f"Redis at {redis_url} does not answer ({exc}); set BENCH_REDIS_URL"
        ) from None
    _, machine = common.begin(
        f"start benchmark: audiences of {args.clients:,} and {SMALL_AUDIENCE:,}",
        extra={"broker": redis_url},
        extra_env={"CELERY_BROKER_URL": redis_url, "CELERY_TASK_ALWAYS_EAGER": "false"},
    )
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from api.services.campaigns import start_campaign

    fixtures.ensure_clients(args.clients, tag="bench")
    fixtures.ensure_clients(SMALL_AUDIENCE, tag="bench_small", phone_prefix="76")
    fixtures.reset_campaigns()
    processes.flush_redis(redis_url)
    fixtures.api_user(USERNAME, PASSWORD)

    audiences = {"large": ("bench", args.clients), "small": ("bench_small", SMALL_AUDIENCE)}
    per_audience = args.warmup + args.starts
    http_ids = {name: draft_campaigns(tag, per_audience) for name, (tag, _) in audiences.items()}
    service_ids = {name: draft_campaigns(tag, per_audience) for name, (tag, _) in audiences.items()}

    env = dict(os.environ)
    port = processes.free_port()
    process = processes.start_gunicorn(port, env)
    http_samples: dict[str, list[float]] = {name: [] for name in audiences}
    resend: dict = {}
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        token = processes.obtain_token(conn, USERNAME, PASSWORD)
        for index in range(per_audience):
            order = ["large", "small"] if index % 2 == 0 else ["small", "large"]
            for name in order:
                campaign_id = http_ids[name][index]
                status, data, elapsed = processes.request(
                    conn, "POST", f"/api/campaigns/{campaign_id}/start/", {}, token
                )
                if status != 202:
                    raise SystemExit(f"start answered {status}: {data[:300]!r}")
                if index >= args.warmup:
                    http_samples[name].append(elapsed)
        if not args.no_resend:
            resend = force_resend_scenario(conn, token, audiences, args.resends)
        conn.close()
    finally:
        processes.stop(process)

    service_samples: dict[str, list[float]] = {name: [] for name in audiences}
    for index in range(per_audience):
        for name in audiences:
            campaign_id = service_ids[name][index]
            with common.stopwatch() as elapsed:
                start_campaign(campaign_id=campaign_id)
            if index >= args.warmup:
                service_samples[name].append(elapsed())

    queries = {}
    for name, (tag, _) in audiences.items():
        (campaign_id,) = draft_campaigns(tag, 1)
        with CaptureQueriesContext(connection) as captured:
            start_campaign(campaign_id=campaign_id)
        queries[name] = [q["sql"] for q in captured.captured_queries]
    counts = {name: len(sqls) for name, sqls in queries.items()}
    print(f"SQL statements per start_campaign(): {counts}")
    for sql in queries["large"]:
        print(f"  {sql[:160]}")

    tasks = queued_tasks(redis_url)
    queued = tasks.get("api.tasks.plan_run", 0)
    # 4 starts per audience and index, one captured start each, 2 per force_resend scenario
    # (the start that makes the run to supersede, then the forced one, which also enqueues a
    # reconcile_run for the cancelled run).
    resends = args.resends * len(resend)
    expected = 4 * per_audience + len(audiences) + 2 * resends
    print(
        f"plan_run tasks enqueued in Redis: {queued} (expected {expected});"
        f" reconcile_run: {tasks.get('api.tasks.reconcile_run', 0)} (expected {resends});"
        f" all tasks: {tasks}"
    )
    processes.flush_redis(redis_url)
    fixtures.reset_campaigns()

    rows = []
    for label, samples in (
        ("HTTP POST .../start/", http_samples),
        ("start_campaign()", service_samples),
    ):
        for name, (tag, size) in audiences.items():
            stats = common.summary(samples[name])
            rows.append(
                [
                    label,
                    f"{size:,} ({tag})",
                    common.ms(stats["median"]),
                    common.ms(stats["p95"]),
                    common.ms(stats["max"]),
                    stats["n"],
                ]
            )
    common.print_table(
        ["what", "audience", "median", "p95", "max", "n"], rows, title="Start latency"
    )
    large = common.summary(http_samples["large"])
    small = common.summary(http_samples["small"])
    ratio = large["median"] / small["median"]
    print(f"median ratio large/small audience (HTTP): {ratio:.2f}x")
    targets = [
        [
            f"202 in < {TARGET_MS:.0f} ms at {args.clients:,} clients (median)",
            common.ms(large["median"]),
            common.verdict(large["median"] * 1000 < TARGET_MS),
        ],
        [
            f"202 in < {TARGET_MS:.0f} ms at {args.clients:,} clients (p95)",
            common.ms(large["p95"]),
            common.verdict(large["p95"] * 1000 < TARGET_MS),
        ],
        [
            "does not grow with the audience (median ratio < 1.5x)",
            f"{ratio:.2f}x",
            common.verdict(ratio < 1.5),
        ],
        [
            "every start enqueued plan_run in Redis",
            f"{queued}/{expected}",
            common.verdict(queued == expected),
        ],
    ]
    if resend:
        large_resend = resend["large"]
        ok = large_resend["status"] == 202 and large_resend["seconds"] * 1000 < TARGET_MS
        targets.append(
            [
                f"force_resend of a planned {args.clients:,}-message run < {TARGET_MS:.0f} ms",
                f"HTTP {large_resend['status']}, median {common.ms(large_resend['seconds'])}"
                f" of {len(large_resend['samples'])}",
                common.verdict(ok),
            ]
        )
    common.print_targets(targets)
    common.save_results(
        f"start-{args.clients}",
        {
            "machine": machine,
            "http": http_samples,
            "service": service_samples,
            "queries": queries,
            "force_resend": resend,
            "targets": targets,
        },
    )
    return common.exit_code(targets, args.strict)


if __name__ == "__main__":
    sys.exit(main())

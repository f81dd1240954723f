"""What a Prometheus scrape of the API's /metrics costs at scale (the state probes).

Target (from the issue): scrapes stay cheap at 10M messages: the live per-run counters, O(due)
probes through the indexes, never a count over the message table.

Fixture: N clients tagged 'bench-metrics' and one campaign for all of them whose daily window is the
whole day, planned by the real plan_run: N pending messages, all due now (a fresh campaign, the
largest due backlog there can be). Measured, as medians of `--calls` scrapes:

  1. the state probes (api.metrics_state.StateCollector) and the whole /metrics view through
     Django's test client, with N due (the due count is capped at METRICS_DUE_LIMIT, default
     10,000);
  2. the same once every message is sent (nothing due: the probes find nothing at once);
  3. for comparison, what a naive exporter does: `SELECT status, count(*) FROM api_message
     GROUP BY status` and an uncapped count of the due messages.

    .venv/bin/python bench/bench_metrics.py --messages 1000000
    .venv/bin/python bench/bench_metrics.py --messages 10000000 --calls 10
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench import common, db, fixtures  # noqa: I001 - the path line above must run first

TARGET_SCRAPE_MS = 50.0


def build(messages: int) -> int:
    from datetime import time as wall_time

    from api.models import Campaign
    from api.services.planning import plan_run

    fixtures.ensure_clients(messages, tag="bench-metrics", phone_prefix="78")
    fixtures.reset_campaigns()
    campaign, run = fixtures.create_campaign_and_run(
        tag="bench-metrics", start_in_seconds=-60, days=3
    )
    Campaign.objects.filter(pk=campaign.pk).update(
        time_interval_start=wall_time(0, 0), time_interval_end=wall_time(23, 59, 59)
    )
    with common.stopwatch() as elapsed:
        planned = plan_run(run_id=run.id).planned
    print(f"fixture: planned {planned:,} messages in {elapsed():.1f} s")
    db.vacuum_analyze("api_message")
    return run.id


def scrape_parts(calls: int) -> dict[str, dict[str, float]]:
    from django.test import Client
    from prometheus_client import generate_latest

    from api import metrics_state

    client = Client()

    def view():
        response = client.get("/metrics")
        assert response.status_code == 200, response.status_code

    return {
        "state probes": common.summary(
            common.time_calls(lambda: generate_latest(metrics_state._state), repeat=calls, warmup=2)
        ),
        "GET /metrics (in process)": common.summary(
            common.time_calls(view, repeat=calls, warmup=2)
        ),
    }


def naive(calls: int) -> dict[str, dict[str, float]]:
    count_by_status = "SELECT status, count(*) FROM api_message GROUP BY status"
    count_due = (
        "SELECT count(*) FROM api_message WHERE status = 'pending' AND next_attempt_at <= now()"
    )
    return {
        "naive: count by status": common.summary(
            common.time_calls(lambda: db.fetchall(count_by_status), repeat=calls, warmup=1)
        ),
        "naive: uncapped due count": common.summary(
            common.time_calls(lambda: db.fetchall(count_due), repeat=calls, warmup=1)
        ),
    }


def main() -> int:
    parser = common.arguments(__doc__)
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args()
    common.setup_django()
    machine = common.print_machine()
    from django.utils import timezone
    from prometheus_client import generate_latest

    from api import metrics_state
    from api.selectors import due_backlog

    build(args.messages)
    due, oldest = due_backlog(now=timezone.now(), limit=10**9)
    print(f"fixture: {due:,} due now (oldest waiting {oldest:.0f} s)")
    results = {}
    common.header(f"{args.messages:,} messages, {due:,} due")
    results["due"] = {**scrape_parts(args.calls), **naive(max(3, args.calls // 4))}
    plans = db.explain_captured(lambda: generate_latest(metrics_state._state))
    for lines in plans:
        if "api_message" in lines[0]:
            print("\n".join(lines[:1] + [f"    {line}" for line in lines[1:12]]))
    db.execute("UPDATE api_message SET status = 'sent', sent_at = now()")
    db.vacuum_analyze("api_message")
    common.header(f"{args.messages:,} messages, all sent, none due")
    results["settled"] = {**scrape_parts(args.calls), **naive(max(3, args.calls // 4))}

    rows = []
    for scenario, parts in results.items():
        for name, stats in parts.items():
            rows.append([scenario, name, common.ms(stats["median"]), common.ms(stats["max"])])
    common.print_table(["fixture", "what", "median", "max"], rows, title="Scrape cost")
    worst = max(results[s]["GET /metrics (in process)"]["median"] for s in results) * 1000
    ratio = results["due"]["naive: count by status"]["median"] / max(
        results["due"]["state probes"]["median"], 1e-9
    )
    targets = [
        [
            f"/metrics median < {TARGET_SCRAPE_MS:.0f} ms at {args.messages:,}",
            f"{worst:.1f} ms",
            common.verdict(worst < TARGET_SCRAPE_MS),
        ],
        ["naive count by status / state probes", f"{ratio:.0f}x", ""],
    ]
    common.print_targets(targets)
    common.save_results(
        f"metrics-{args.messages}", {"machine": machine, "results": results, "targets": targets}
    )
    return common.exit_code(targets, args.strict)


if __name__ == "__main__":
    sys.exit(main())

"""Audience preview at scale: `api.preview.audience_preview` over a 1,000,000-client audience.

    .venv/bin/python bench/bench_preview.py --clients 1000000 --repeat 7

Target (issue #12, this 2-core box): < 1 s per preview at 1M clients. The audience is the
shared client fixture (20 IANA zones, 100 operator codes) with 1 % opted out; each call is one
GROUP BY (zone, operator, opted out) over the audience plus the per-zone planning function,
writing nothing. Prints every sample, the median, and the statement's EXPLAIN (ANALYZE).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench import common, db, fixtures  # noqa: E402

TARGET_SECONDS = 1.0
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/tds_bench_preview"


def explain_preview(campaign) -> list[str]:
    from api.services.sql.where import audience_where

    where = audience_where(campaign, opted_out=None, alias="audience")
    sql = (
        "EXPLAIN (ANALYZE, COSTS OFF) SELECT audience.timezone, audience.mobile_operator_code,"
        " audience.opted_out, COUNT(*) FROM api_client AS audience WHERE "
        + where.sql
        + " GROUP BY 1, 2, 3"
    )
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(sql, where.params)
        return [row[0] for row in cursor.fetchall()]


def main(argv: list[str] | None = None) -> int:
    parser = common.arguments(__doc__)
    parser.add_argument("--clients", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target fails")
    args = parser.parse_args(argv)
    _, machine = common.begin(
        f"audience preview, {args.clients:,} clients",
        database_url=os.environ.get("BENCH_PREVIEW_DATABASE_URL", DEFAULT_URL),
    )
    fixtures.ensure_clients(args.clients, tag="bench", phone_prefix="75")
    db.execute("UPDATE api_client SET opted_out = (id %% 100 = 0) WHERE tag = %s", ["bench"])
    db.vacuum_analyze("api_client")
    fixtures.reset_campaigns()
    campaign, _ = fixtures.create_campaign_and_run(tag="bench", campaign_status="draft")

    from api.preview import audience_preview

    result = audience_preview(campaign, "Europe/Moscow")
    print(
        f"preview: total {result['total']:,}, planned {result['planned']:,}, skipped"
        f" {result['skipped_no_window']:,}, opted out {result['opted_out']:,},"
        f" {len(result['by_timezone'])} zones, {len(result['by_operator_code'])} operator codes,"
        f" {len(result['histogram_utc'])} UTC hours"
    )
    samples = common.time_calls(
        lambda: audience_preview(campaign, "Europe/Moscow"), repeat=args.repeat, warmup=1
    )
    print("samples:", ", ".join(common.secs(s) for s in samples), f"loadavg {os.getloadavg()}")
    stats = common.summary(samples)
    print("\n".join(explain_preview(campaign)))
    targets = [
        [
            f"preview at {args.clients:,} clients < {TARGET_SECONDS:.0f} s (median)",
            common.secs(stats["median"]),
            common.verdict(stats["median"] < TARGET_SECONDS),
        ]
    ]
    common.print_targets(targets)
    common.save_results("preview", {"machine": machine, "clients": args.clients, "seconds": stats})
    return common.exit_code(targets, args.strict)


if __name__ == "__main__":
    raise SystemExit(main())

"""Per-run message counts by status: exact, current, and read in O(runs), never by counting.

Database triggers on the message table (migration 0009) change `api_runstatuscount` in the same
transaction as every insert, status change and delete, whatever code path writes it: planning,
claims, outcomes, the reaper, reconciliation, expiry, client deletion, a manual UPDATE. On
Postgres one trigger per statement adds the statement's net change per (run, status) to the
row of its own backend (shard = process id), so concurrent workers never wait on one hot row;
`fold_shards` (beat's sweep) sums the shards back into shard 0. On SQLite (one writer) a row
trigger keeps shard 0.

Two paths bypass the triggers by design and add their counts themselves: loading a run's
partition before it is attached (planning, `add_counts`), and compaction, which moves rows
between partitions without changing any count.
"""

from __future__ import annotations

import logging
from collections import defaultdict

from django.db import connection, transaction
from django.db.models import Count, Sum

from api.message_ids import of_runs, run_ranges_sql
from api.models import CampaignRun, Message, MessageStatus, RunStatusCount
from api.services.sql import backend

logger = logging.getLogger(__name__)


def add_counts(run_id: int, counts: dict[str, int]) -> None:
    """Add messages written where no trigger sees them (Postgres: a partition loaded before it
    is attached). Must run in the transaction that wrote them."""
    table = connection.ops.quote_name(RunStatusCount._meta.db_table)
    with connection.cursor() as cursor:
        for status, count in sorted(counts.items()):
            if count:
                cursor.execute(
                    f"INSERT INTO {table} (run_id, status, shard, count) VALUES (%s, %s, 0, %s)"
                    f" ON CONFLICT (run_id, status, shard)"
                    f" DO UPDATE SET count = {table}.count + EXCLUDED.count",
                    [run_id, status, count],
                )


def run_counts(run_ids) -> dict[int, dict[str, int]]:
    """{run id: {status: count}} from the counters, every status present."""
    return summed_counts(run_id__in=list(run_ids), key="run_id")


def campaign_counts(campaign_ids) -> dict[int, dict[str, int]]:
    """{campaign id: {status: count}} over all of each campaign's runs, every status present."""
    return summed_counts(run__campaign_id__in=list(campaign_ids), key="run__campaign_id")


def summed_counts(*, key: str, **where) -> dict[int, dict[str, int]]:
    """The counters matching `where`, summed per `key` and status: one grouped query."""
    result: dict[int, dict[str, int]] = defaultdict(empty_counts)
    rows = (
        RunStatusCount.objects.filter(**where)
        .values_list(key, "status")
        .annotate(total=Sum("count"))
        .order_by()
    )
    for owner, status, total in rows:
        result[owner][status] = int(total)
    return result


def empty_counts() -> dict[str, int]:
    return {status: 0 for status in MessageStatus.values}


def counted_from_messages(run_ids) -> dict[int, dict[str, int]]:
    """The same numbers counted from the messages themselves (slow: O(messages))."""
    result: dict[int, dict[str, int]] = defaultdict(empty_counts)
    run_ids = list(run_ids)
    rows = (
        Message.objects.filter(of_runs(run_ids))
        .values_list("run_id", "status")
        .annotate(total=Count("id"))
        .order_by()
    )
    for run_id, status, total in rows:
        result[run_id][status] = total
    return result


def _counters_and_recount(run_ids: list[int]):
    """Both sides in ONE statement, so one snapshot: a worker writing between two separate
    queries would look like drift."""
    kept: dict[int, dict[str, int]] = defaultdict(empty_counts)
    counted: dict[int, dict[str, int]] = defaultdict(empty_counts)
    if not run_ids:
        return kept, counted
    counters_table = connection.ops.quote_name(RunStatusCount._meta.db_table)
    messages_table = connection.ops.quote_name(Message._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT 0, run_id, status, sum(count) FROM {counters_table}"
            f" WHERE run_id IN ({', '.join(str(int(run_id)) for run_id in run_ids)})"
            " GROUP BY run_id, status"
            f" UNION ALL SELECT 1, run_id, status, count(*) FROM {messages_table}"
            f" WHERE {run_ranges_sql(run_ids)} GROUP BY run_id, status"
        )
        for side, run_id, status, total in cursor.fetchall():
            (counted if side else kept)[run_id][status] = int(total)
    return kept, counted


def kept_differs(run_ids, kept, counted) -> dict[int, dict]:
    """{run: {key: (kept, counted)}} for each key whose kept number differs from the recount
    (a missing key counts 0): the comparison of both recounts (statuses, sent minutes)."""
    differences = {}
    for run_id in run_ids:
        mine, actual = kept.get(run_id, {}), counted.get(run_id, {})
        wrong = {
            key: (mine.get(key, 0), actual.get(key, 0))
            for key in sorted(set(mine) | set(actual))
            if mine.get(key, 0) != actual.get(key, 0)
        }
        if wrong:
            differences[run_id] = wrong
    return differences


def recount_runs(run_ids=None, *, repair: bool = False) -> dict[int, dict[str, tuple[int, int]]]:
    """Compare each run's counters with its messages; {run: {status: (counter, counted)}} for
    every difference. With `repair`, the counters are set to what was counted, with writes to
    the messages held off meanwhile (so nothing changes between the count and the repair)."""
    if run_ids is None:
        run_ids = list(CampaignRun.objects.order_by("id").values_list("id", flat=True))
    run_ids = list(run_ids)
    with transaction.atomic():
        if repair:
            backend().hold_message_writes(Message._meta.db_table)
        counters, counted = _counters_and_recount(run_ids)
        differences = kept_differs(run_ids, counters, counted)
        if repair and differences:
            RunStatusCount.objects.filter(run_id__in=list(differences)).delete()
            RunStatusCount.objects.bulk_create(
                RunStatusCount(run_id=run_id, status=status, shard=0, count=count)
                for run_id in differences
                for status, count in counted[run_id].items()
                if count
            )
    for run_id, wrong in differences.items():
        logger.warning("run %s counters differed from its messages: %s", run_id, wrong)
    return differences


def fold_shards() -> int:
    """Sum the shards of backends that have ended into shard 0 (keeps reads to a few rows
    per run); returns the rows folded. Counts do not change; safe to run any time, and twice."""
    return backend().fold_shards(RunStatusCount._meta.db_table, key="status", value="count")

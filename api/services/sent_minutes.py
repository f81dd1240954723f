"""Messages sent per run and minute: the console's "sent over time" chart, exact and cheap.

Database triggers on the message table (migration 0012) add each statement's net change to
`api_runsentminute` in the same transaction, exactly like the status counters
(api/services/counters.py): on Postgres one statement trigger per statement into the row of its
own backend (shard = process id), folded into shard 0 by beat's sweep; on SQLite row triggers on
shard 0. Planning loads only pending messages and compaction moves rows without changing them,
so the two paths that bypass the triggers never change a sent count.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import UTC, datetime

from django.db import connection, transaction
from django.db.models import Sum
from django.utils import timezone

from api.message_ids import run_ranges_sql
from api.models import CampaignRun, Message, RunSentMinute
from api.services.counters import kept_differs
from api.services.sql import backend

logger = logging.getLogger(__name__)


def sent_by_minute(run_ids) -> dict[datetime, int]:
    """{minute (UTC): messages sent} over these runs, in time order, from the kept rows."""
    rows = (
        RunSentMinute.objects.filter(run_id__in=list(run_ids))
        .values_list("minute")
        .annotate(total=Sum("sent"))
        .order_by("minute")
    )
    return {minute: int(total) for minute, total in rows if total}


def _kept_and_counted(run_ids: list[int]):
    """Both sides in one statement (one snapshot), as counters._counters_and_recount."""
    kept: dict[int, dict[datetime, int]] = defaultdict(dict)
    counted: dict[int, dict[datetime, int]] = defaultdict(dict)
    if not run_ids:
        return kept, counted
    minute = backend().minute_sql("sent_at")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT 0, run_id, minute, sum(sent) FROM api_runsentminute"
            f" WHERE run_id IN ({', '.join(str(int(run_id)) for run_id in run_ids)})"
            " GROUP BY run_id, minute"
            f" UNION ALL SELECT 1, run_id, {minute}, count(*) FROM api_message"
            f" WHERE {run_ranges_sql(run_ids)} AND status = 'sent' AND sent_at IS NOT NULL"
            f" GROUP BY run_id, {minute}"
        )
        for side, run_id, at, total in cursor.fetchall():
            if total:
                (counted if side else kept)[run_id][_as_utc(at)] = int(total)
    return kept, counted


def _as_utc(value) -> datetime:
    if isinstance(value, str):  # SQLite hands raw SQL text back
        value = datetime.fromisoformat(value)
    return value if timezone.is_aware(value) else timezone.make_aware(value, UTC)


def recount_sent_minutes(
    run_ids=None, *, repair: bool = False
) -> dict[int, dict[datetime, tuple[int, int]]]:
    """Compare each run's kept sent-per-minute rows with its messages; {run: {minute: (kept,
    counted)}} for every difference. With `repair`, the rows are set to what was counted, with
    writes to the messages held off meanwhile (as counters.recount_runs). O(messages)."""
    if run_ids is None:
        run_ids = list(CampaignRun.objects.values_list("id", flat=True))
    run_ids = list(run_ids)
    with transaction.atomic():
        if repair:
            backend().hold_message_writes(Message._meta.db_table)
        kept, counted = _kept_and_counted(run_ids)
        differences = kept_differs(run_ids, kept, counted)
        if repair and differences:
            RunSentMinute.objects.filter(run_id__in=list(differences)).delete()
            RunSentMinute.objects.bulk_create(
                RunSentMinute(run_id=run_id, minute=at, shard=0, sent=sent)
                for run_id in differences
                for at, sent in counted[run_id].items()
            )
    for run_id, wrong in differences.items():
        logger.warning("run %s sent-per-minute rows differed from its messages: %s", run_id, wrong)
    return differences


def fold_shards() -> int:
    """Sum ended Postgres backends' shards into shard 0; counts do not change. Safe any time."""
    return backend().fold_shards(RunSentMinute._meta.db_table, key="minute", value="sent")

"""Read side: who a campaign targets and how its messages stand. Pure queries, no writes."""

from __future__ import annotations

import functools

from django.db import connection
from django.db.models import Count, QuerySet, Sum

from .domain.audience import audience_filter, audience_tags
from .message_ids import of_runs
from .models import (
    OPEN_MESSAGE_STATUSES,
    Campaign,
    CampaignRun,
    Client,
    Message,
    MessageStatus,
    RunStatus,
    RunStatusCount,
)
from .services.sql import SqliteBackend, backend


def campaign_tags(campaign: Campaign) -> list[str]:
    """The tags the campaign targets: its own first, then client_filter's."""
    return audience_tags(tag=campaign.tag, client_filter=campaign.client_filter)


def campaign_audience(campaign: Campaign) -> QuerySet[Client]:
    """Active (not deleted) clients the campaign targets; empty when it names no audience."""
    condition = audience_filter(tag=campaign.tag, client_filter=campaign.client_filter)
    if condition is None:
        return Client.objects.none()
    return Client.objects.filter(condition)


def client_timezones() -> list[str]:
    """Every time zone any client row names (deleted ones too: a superset of any audience's).

    Postgres: a loose index scan over client_timezone_idx, one probe per distinct zone (a few
    hundred at most), whatever the number of clients; a plain DISTINCT elsewhere.
    """
    sql = backend().zone_names_sql(Client._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return [row[0] for row in cursor.fetchall()]


_MESSAGE_STATUSES = tuple(MessageStatus.values)  # the enum property rebuilds its list each call


RUN_SUMMARY_FIELDS = (
    "id",
    "number",
    "status",
    "planned_messages",
    "skipped_clients",
    "opted_out_clients",
    "created_at",
    "finished_at",
)


# Stats are the call every integrator polls while a campaign runs. One statement gives a row
# per campaign: its status, its counts by status summed over its runs' counters (pivoted into
# columns), and its newest run; the rows become the response's JSON-ready dicts directly, no
# ORM compiling and no serializer on the way (StatsSerializer documents the shape). Times leave
# the database as the text DRF's DateTimeField writes (ISO 8601 in UTC, a Z, microseconds only
# when not zero): parsing and re-formatting datetimes in Python was most of the cost of the
# all-campaign list. bench/bench_stats.py measures it.
@functools.cache  # built once per backend and form: a few dozen string joins
def _stats_sql(sql: SqliteBackend, one: bool) -> str:
    counts = ", ".join(f"COALESCE(k.n_{status}, 0)" for status in _MESSAGE_STATUSES)
    sums = ", ".join(  # CAST: a SUM is numeric in Postgres, a Decimal in Python
        f"CAST(SUM(CASE WHEN s.status = '{status}' THEN s.count ELSE 0 END) AS BIGINT)"
        f" AS n_{status}"
        for status in _MESSAGE_STATUSES
    )
    run = ", ".join(
        sql.iso_utc(f"lr.{name}") if name.endswith("_at") else f"lr.{name}"
        for name in RUN_SUMMARY_FIELDS
    )
    latest = sql.latest_runs_sql(CampaignRun._meta.db_table, one=one)
    return (
        f"SELECT c.id, c.status, {counts}, {run} FROM api_campaign c"
        f" LEFT JOIN (SELECT r.campaign_id, {sums}"
        "  FROM api_campaignrun r JOIN api_runstatuscount s ON s.run_id = r.id"
        f"  {'WHERE r.campaign_id = %s' if one else ''} GROUP BY r.campaign_id) k"
        " ON k.campaign_id = c.id"
        f" LEFT JOIN ({latest}) lr ON lr.campaign_id = c.id"
        f" {'WHERE c.id = %s' if one else ''} ORDER BY c.id"
    )


# Plain str keys and positions fixed once: enum members as keys cost a third of the time of
# turning 1,000 rows into dicts.
_STATUS_KEYS = tuple(str(status) for status in _MESSAGE_STATUSES)
_RUN_AT = 2 + len(_STATUS_KEYS)  # where a row's run columns start
_SENT, _FAILED, _EXPIRED, _CANCELLED = (
    _STATUS_KEYS.index(MessageStatus.SENT),
    _STATUS_KEYS.index(MessageStatus.FAILED),
    _STATUS_KEYS.index(MessageStatus.EXPIRED),
    _STATUS_KEYS.index(MessageStatus.CANCELLED),
)
_OPEN = tuple(_STATUS_KEYS.index(status) for status in OPEN_MESSAGE_STATUSES)


def _stats_from_row(row) -> dict:
    """One row of _stats_sql as the stats response."""
    counts = row[2:_RUN_AT]
    run = row[_RUN_AT:]
    return {
        "campaign_id": row[0],
        "status": row[1],
        "total_messages": sum(counts),
        "sent_messages": counts[_SENT],
        "pending_messages": counts[_OPEN[0]] + counts[_OPEN[1]] + counts[_OPEN[2]],
        "failed_messages": counts[_FAILED],
        "expired_messages": counts[_EXPIRED],
        "cancelled_messages": counts[_CANCELLED],
        "by_status": dict(zip(_STATUS_KEYS, counts)),  # noqa: B905 - lengths fixed above
        "latest_run": None if run[0] is None else dict(zip(RUN_SUMMARY_FIELDS, run)),  # noqa: B905
    }


def campaign_stats(campaign_id: int) -> dict | None:
    """Message counts of every run of the campaign, by status, plus its latest run; None if
    there is no such campaign. Read from the per-run counters (api/services/counters.py):
    exact and current, one indexed statement whatever the number of messages."""
    with connection.cursor() as cursor:
        cursor.execute(_stats_sql(backend(), True), [campaign_id] * 3)
        row = cursor.fetchone()
    return None if row is None else _stats_from_row(row)


def all_campaign_stats() -> list[dict]:
    """campaign_stats for every campaign, by id, in one statement over the run counters."""
    with connection.cursor() as cursor:
        cursor.execute(_stats_sql(backend(), False))
        return [_stats_from_row(row) for row in cursor.fetchall()]


# --- operational state (Prometheus gauges at scrape time) ----------------------------------
def message_status_totals() -> dict[str, int]:
    """Messages by status over every run, from the live counters (every status present)."""
    totals = dict.fromkeys(MessageStatus.values, 0)
    rows = RunStatusCount.objects.values_list("status").annotate(total=Sum("count"))
    for status, total in rows.order_by():
        totals[status] = int(total or 0)
    return totals


def run_status_totals() -> dict[str, int]:
    """Campaign runs by status (every status present)."""
    totals = dict.fromkeys(RunStatus.values, 0)
    for status, total in (
        CampaignRun.objects.values_list("status").annotate(total=Count("id")).order_by()
    ):
        totals[status] = total
    return totals


def due_backlog(*, now, limit: int) -> tuple[int, float]:
    """(due messages of running runs, counted up to `limit`; seconds the oldest has waited).
    Probes of the running runs' due indexes: O(due) bounded by `limit`, never the table."""
    running = list(
        CampaignRun.objects.filter(status=RunStatus.RUNNING).values_list("id", flat=True)
    )
    if not running:
        return 0, 0.0
    due = Message.objects.filter(
        of_runs(running), status=MessageStatus.PENDING, next_attempt_at__lte=now
    )
    oldest = due.order_by("next_attempt_at").values_list("next_attempt_at", flat=True).first()
    if oldest is None:
        return 0, 0.0
    count = due.order_by().values("id")[:limit].count()
    return count, max(0.0, (now - oldest).total_seconds())

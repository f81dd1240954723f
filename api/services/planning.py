"""Planning: a run's audience becomes Message rows in a handful of SQL statements.

`planned_send_at` depends only on (campaign, client time zone), so it is computed once per
distinct zone in Python (zoneinfo, DST-correct) and the rows are written by one
`INSERT ... SELECT` that joins each client's zone to its time (a VALUES list). Memory and
Python work do not grow with the audience; the database does the per-row work.

On Postgres the rows go into a new partition of their own, with no index yet; its primary key
and due index are then built in one sort each and the partition is attached
(api/services/sql/partitions.py):
about twice as fast as maintaining those b-trees row by row.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime

from django.db import connection, transaction
from django.utils import timezone

from api import metrics
from api.message_ids import MESSAGE_ID_RUN_STRIDE
from api.models import (
    Campaign,
    CampaignRun,
    CampaignStatus,
    Client,
    Message,
    MessageStatus,
    RunStatus,
)
from api.selectors import client_timezones

from . import counters
from .send_window import next_send_time
from .sql import backend
from .sql.where import Where, audience_where, failed_in_run_where

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PlanResult:
    run_id: int
    planned: int
    skipped: int
    already_planned: bool = False


def planned_times(campaign: Campaign, zones: list[str], now: datetime) -> dict[str, datetime]:
    """Each zone's first sending instant; zones whose window never opens before the end are
    left out."""
    times = {}
    for zone_name in zones:
        moment = next_send_time(
            not_before=max(now, campaign.start_datetime),
            end=campaign.end_datetime,
            window_start=campaign.time_interval_start,
            window_end=campaign.time_interval_end,
            timezone_name=zone_name,
        )
        if moment is not None:
            times[zone_name] = moment
    return times


def run_audience_where(run: CampaignRun) -> Where:
    """Who the run plans for: the campaign's audience (opted-out clients left out); for a
    resend-to-failed run, only those whose message in the earlier run failed or expired."""
    where = audience_where(run.campaign, alias="audience")
    if run.resend_of_id is not None:
        where = where & failed_in_run_where(run.resend_of_id, alias="audience")
    return where


def message_insert_select(
    run: CampaignRun, times: dict[str, datetime], now: datetime
) -> tuple[str, dict]:
    """The SELECT yielding the run's message rows (MESSAGE_COLUMNS' order), with its named
    parameters: the audience joined on its zone's sending instant."""
    adapt = connection.ops.adapt_datetimefield_value
    where = run_audience_where(run)
    # The zones' times as a VALUES list joined on the client's zone (one hash lookup per row).
    # VALUES columns are named column1, column2 on both Postgres and SQLite.
    zones_sql = "VALUES " + ", ".join(
        f"(%(zone_{index})s, %(at_{index})s)" for index in range(len(times))
    )
    params = {"run": run.id, "pending": MessageStatus.PENDING, "now": adapt(now), **where.params}
    for index, (zone_name, moment) in enumerate(times.items()):
        params[f"zone_{index}"], params[f"at_{index}"] = zone_name, adapt(moment)
    client_table = connection.ops.quote_name(Client._meta.db_table)
    select = (
        f"SELECT %(run)s * {MESSAGE_ID_RUN_STRIDE} + audience.id, %(run)s, audience.id,"
        " %(pending)s, zones.column2, zones.column2, 0, '', %(now)s"
        f" FROM {client_table} AS audience"
        f" INNER JOIN ({zones_sql}) AS zones ON audience.timezone = zones.column1"
        f" WHERE {where.sql}"
    )
    return select, params


MESSAGE_COLUMNS = (
    "(id, run_id, client_id, status, planned_send_at, next_attempt_at, attempts, last_error,"
    " created_at)"
)


def _insert_messages(run: CampaignRun, times: dict[str, datetime], now: datetime) -> int:
    if not times:
        return 0
    select, params = message_insert_select(run, times, now)
    # No ON CONFLICT (it cost ~40 % of planning, bench/README.md): the run row is locked and
    # must still be `scheduled`; the primary key (the id is derived from run and client)
    # turns anything else into an error, never into a duplicate.
    sql = backend()
    planned = sql.load_run_messages(
        run.id, table=Message._meta.db_table, columns=MESSAGE_COLUMNS, select=select, params=params
    )
    if sql.partitioned:  # loaded before its partition was attached: no trigger counted them
        counters.add_counts(run.id, {MessageStatus.PENDING: planned})
    return planned


def count_clients(where: Where) -> int:
    """How many clients a WHERE (over the client table as `audience`) selects."""
    table = connection.ops.quote_name(Client._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COUNT(*) FROM {table} AS audience WHERE {where.sql}", where.params)
        return cursor.fetchone()[0]


def _count_skipped(run: CampaignRun, closed: list[str]) -> int:
    """Audience clients in zones whose window never opens before the end (no scan when every
    zone has a time)."""
    if not closed:
        return 0
    sql = backend()
    zones = Where(sql.any_of_sql("audience.timezone", "closed_zones"))
    zones.params["closed_zones"] = sql.list_param(closed)
    return count_clients(run_audience_where(run) & zones)


def _count_opted_out(run: CampaignRun) -> int:
    """Clients the audience would hold but for their opt-out (client_opted_out_idx: O(opted
    out), not O(audience), on Postgres)."""
    where = audience_where(run.campaign, opted_out=True, alias="audience")
    if run.resend_of_id is not None:
        where = where & failed_in_run_where(run.resend_of_id, alias="audience")
    return count_clients(where)


def plan_run(*, run_id: int) -> PlanResult:
    """Create the run's messages and mark it running. Safe to run twice: the second is a no-op.
    (One transaction from the row lock to the run's new status: kept whole on purpose.)"""
    started = time.perf_counter()
    now = timezone.now()
    with transaction.atomic():
        run = (
            CampaignRun.objects.select_for_update()
            .select_related("campaign")
            .filter(pk=run_id)
            .first()
        )
        if run is None or run.status != RunStatus.SCHEDULED:
            logger.info("plan skipped run=%s status=%s", run_id, run and run.status)
            return PlanResult(run_id, 0, 0, already_planned=True)
        campaign = run.campaign
        # Every zone any client names (a few index probes, not a scan of the audience): a
        # superset of the audience's zones, so every audience client's zone is in `zones`.
        zones = client_timezones()
        times = planned_times(campaign, zones, now)
        planned = _insert_messages(run, times, now)
        skipped = _count_skipped(run, [zone for zone in zones if zone not in times])
        run.status = RunStatus.RUNNING
        run.planned_messages = planned
        run.skipped_clients = skipped
        run.opted_out_clients = _count_opted_out(run)
        run.planned_at = now
        run.save(
            update_fields=[
                "status",
                "planned_messages",
                "skipped_clients",
                "opted_out_clients",
                "planned_at",
            ]
        )
        Campaign.objects.filter(pk=campaign.pk, status=CampaignStatus.SCHEDULED).update(
            status=CampaignStatus.RUNNING, updated_at=now
        )
    seconds = time.perf_counter() - started
    metrics.record_planning(seconds, planned)
    logger.info(
        "run planned campaign=%s run=%s messages=%s skipped=%s zones=%s seconds=%.3f",
        campaign.id,
        run.id,
        planned,
        skipped,
        len(times),
        seconds,
        extra={"campaign_id": campaign.id, "run_id": run.id},
    )
    return PlanResult(run.id, planned, skipped)


def fail_run(*, run_id: int, error: str) -> None:
    """Record a planning failure on the run and its campaign (visible in the API)."""
    with transaction.atomic():
        run = CampaignRun.objects.select_for_update().filter(pk=run_id).first()
        if run is None or run.status != RunStatus.SCHEDULED:
            return
        run.status = RunStatus.FAILED
        run.error = error[:2000]
        run.finished_at = timezone.now()
        run.save(update_fields=["status", "error", "finished_at"])
        Campaign.objects.filter(pk=run.campaign_id).update(
            status=CampaignStatus.FAILED, updated_at=timezone.now()
        )
    logger.error("run planning failed run=%s error=%s", run_id, error)


def due_scheduled_runs(*, now: datetime, lead) -> list[int]:
    """Scheduled runs whose campaign starts within `lead` (the sweep plans them)."""
    return list(
        CampaignRun.objects.filter(
            status=RunStatus.SCHEDULED,
            campaign__status=CampaignStatus.SCHEDULED,
            campaign__start_datetime__lte=now + lead,
        ).values_list("id", flat=True)
    )

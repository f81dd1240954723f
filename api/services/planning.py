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
from api.models import Campaign, CampaignRun, CampaignStatus, Message, MessageStatus, RunStatus
from api.selectors import campaign_audience, client_timezones

from . import counters
from .send_window import next_send_time
from .sql import backend

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


def _insert_messages(run: CampaignRun, times: dict[str, datetime], now: datetime) -> int:
    if not times:
        return 0
    audience_sql, audience_params = (
        campaign_audience(run.campaign).order_by().values("id", "timezone").query.sql_with_params()
    )
    adapt = connection.ops.adapt_datetimefield_value
    # The zones' times as a VALUES list joined on the client's zone (one hash lookup per row).
    # VALUES columns are named column1, column2 on both Postgres and SQLite.
    zones_sql = "VALUES " + ", ".join(["(%s, %s)"] * len(times))
    zones_params: list = []
    for zone_name, moment in times.items():
        zones_params += [zone_name, adapt(moment)]
    # No ON CONFLICT (it cost ~40 % of planning, bench/README.md): the run row is locked and
    # must still be `scheduled`; the primary key (the id is derived from run and client)
    # turns anything else into an error, never into a duplicate.
    select = (
        f"SELECT %s * {MESSAGE_ID_RUN_STRIDE} + audience.id, %s, audience.id, %s, zones.column2,"
        " zones.column2, 0, '', %s"
        f" FROM ({audience_sql}) AS audience"
        f" INNER JOIN ({zones_sql}) AS zones ON audience.timezone = zones.column1"
    )
    params = [run.id, run.id, MessageStatus.PENDING, adapt(now), *audience_params, *zones_params]
    columns = (
        "(id, run_id, client_id, status, planned_send_at, next_attempt_at, attempts, last_error,"
        " created_at)"
    )
    sql = backend()
    planned = sql.load_run_messages(
        run.id, table=Message._meta.db_table, columns=columns, select=select, params=params
    )
    if sql.partitioned:  # loaded before its partition was attached: no trigger counted them
        counters.add_counts(run.id, {MessageStatus.PENDING: planned})
    return planned


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
        closed = [zone for zone in zones if zone not in times]
        skipped = 0
        if closed:  # only then is the audience scanned again, to count who gets nothing
            skipped = campaign_audience(campaign).filter(timezone__any_of=closed).count()
        run.status = RunStatus.RUNNING
        run.planned_messages = planned
        run.skipped_clients = skipped
        run.planned_at = now
        run.save(update_fields=["status", "planned_messages", "skipped_clients", "planned_at"])
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

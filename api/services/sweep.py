"""Beat's periodic pass, in one place: every housekeeping step, in order, and the work it
hands to the workers."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from django.utils import timezone

from api import metrics
from api.services import counters, dispatch, planning, reconcile, sent_minutes
from api.services.campaigns import planning_lead

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Workers:
    """Where the sweep hands work on: api.tasks' Celery tasks. Handed on mid-sweep, in order:
    with CELERY_TASK_ALWAYS_EAGER (the tests) a run is planned and sent before the sweep goes
    on to finish runs and fold counters."""

    plan_run: Callable[[int], object]
    reconcile_run: Callable[[int], object]
    dispatch: Callable[[], object]  # something is due now
    dispatch_when_due: Callable[[datetime], object]  # nothing due now: a wake-up, maybe


@dataclass(frozen=True)
class SweepSummary:
    reaped: int  # messages whose lease ran out, handed back
    expired: int  # unsent messages of ended campaigns
    planning: int  # runs handed to planning
    reconciling: int  # paused or cancelled runs still holding pending messages
    due: bool  # a message was due when the sweep ended

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def run_sweep(*, workers: Workers, now: datetime | None = None) -> SweepSummary:
    """Reap dead leases, expire ended campaigns, hand near runs to planning and stale paused or
    cancelled runs to reconcile, finish completed runs, fold the stats counters' shards, and
    wake a dispatcher if anything is due. Safe to run twice: every step is a guarded UPDATE,
    and what it hands on is idempotent."""
    now = now or timezone.now()
    metrics.record_sweep()
    reaped = dispatch.reap_expired_leases(now=now)
    expired = dispatch.expire_ended_campaigns(now=now)
    runs = planning.due_scheduled_runs(now=now, lead=planning_lead())
    for run_id in runs:
        workers.plan_run(run_id)
    stale = reconcile.runs_out_of_line(now=now, cancelled_within=dispatch.CANCELLED_RUN_REAP_WINDOW)
    for run_id in stale:
        workers.reconcile_run(run_id)
    dispatch.finish_completed_runs()
    counters.fold_shards()
    sent_minutes.fold_shards()
    due = dispatch.due_messages_exist(now=now)
    if due:
        workers.dispatch()
    else:
        workers.dispatch_when_due(now)
    summary = SweepSummary(reaped, expired, len(runs), len(stale), due)
    if reaped or expired or runs or stale:
        logger.info("sweep %s", summary.as_dict())
    return summary

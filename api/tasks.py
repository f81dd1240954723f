"""Celery entry points: ids in, one service call, safe to run twice (the broker may redeliver)."""

from __future__ import annotations

import logging

from celery import shared_task
from django.utils import timezone

from api.services import dispatch, planning, reconcile
from api.services.campaigns import planning_lead

logger = logging.getLogger(__name__)


@shared_task(name="api.tasks.plan_run", acks_late=True)
def plan_run(run_id: int) -> dict:
    """Plan the run's messages, then wake a dispatcher. A repeat is a no-op."""
    try:
        result = planning.plan_run(run_id=run_id)
    except Exception as exc:
        planning.fail_run(run_id=run_id, error=f"{type(exc).__name__}: {exc}")
        raise
    if result.planned:
        dispatch_messages.delay()
    return {"run": run_id, "planned": result.planned, "skipped": result.skipped}


@shared_task(name="api.tasks.dispatch", acks_late=True)
def dispatch_messages() -> dict:
    """Send due messages for up to DISPATCH_TASK_SECONDS; re-enqueue itself while work remains."""
    report = dispatch.dispatch_due_messages()
    if report.more_due:
        dispatch_messages.delay()
    return {"claimed": report.claimed, "outcomes": dict(report.outcomes)}


@shared_task(name="api.tasks.reconcile_run", acks_late=True)
def reconcile_run(run_id: int) -> dict:
    """Move the run's unsent messages to match its status (pause/resume/cancel). Idempotent."""
    moved = reconcile.reconcile_run_messages(run_id=run_id)
    if moved:
        dispatch_messages.delay()  # resumed messages may be due; harmless otherwise
        dispatch.finish_completed_runs()
    return {"run": run_id, "moved": moved}


@shared_task(name="api.tasks.sweep", acks_late=True)
def sweep() -> dict:
    """Beat's periodic pass: reap dead leases, expire ended campaigns, plan runs whose start is
    near, finish completed runs, and wake a dispatcher if anything is due."""
    now = timezone.now()
    reaped = dispatch.reap_expired_leases(now=now)
    expired = dispatch.expire_ended_campaigns(now=now)
    runs = planning.due_scheduled_runs(now=now, lead=planning_lead())
    for run_id in runs:
        plan_run.delay(run_id)
    stale = reconcile.runs_out_of_line(now=now, cancelled_within=dispatch.CANCELLED_RUN_REAP_WINDOW)
    for run_id in stale:
        reconcile_run.delay(run_id)
    dispatch.finish_completed_runs()
    due = dispatch.due_messages_exist(now=now)
    if due:
        dispatch_messages.delay()
    summary = {
        "reaped": reaped,
        "expired": expired,
        "planning": len(runs),
        "reconciling": len(stale),
        "due": due,
    }
    if reaped or expired or runs or stale:
        logger.info("sweep %s", summary)
    return summary

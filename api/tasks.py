"""Celery entry points: ids in, one service call, safe to run twice (the broker may redeliver)."""

from __future__ import annotations

import logging
from datetime import datetime

from celery import shared_task
from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError, connection
from django.utils import timezone

from api.services import compaction, dispatch, planning, reconcile
from api.services.sweep import Workers, run_sweep

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
    """Send due messages for up to DISPATCH_TASK_SECONDS; re-enqueue itself while work remains,
    or ask to be woken when the next message falls due before the next sweep."""
    report = dispatch.dispatch_due_messages()
    if report.more_due:
        dispatch_messages.delay()
    else:
        try:
            wake_dispatcher_when_due()
        except DatabaseError:
            # The connection was cut after the outcomes were written (they are safe): the
            # next sweep finds what is due. A fresh connection for the next task.
            logger.warning("no wake-up scheduled: the database did not answer")
            connection.close()
    return {"claimed": report.claimed, "outcomes": dict(report.outcomes)}


def wake_dispatcher_when_due(*, now: datetime | None = None) -> float | None:
    """Schedule one dispatch task for when the next pending message is due, if that comes
    before beat's next sweep (dispatch.wakeups.claim_wakeup): retries and planned sends then go
    out on time, not up to DISPATCH_INTERVAL_SECONDS late. Returns the countdown, or None."""
    if settings.CELERY_TASK_ALWAYS_EAGER:
        return None  # an eager task would run at once, not wait: the sweep covers tests
    delay = dispatch.wakeups.claim_wakeup(now=now)
    if delay is not None:
        dispatch_messages.apply_async(countdown=delay)
    return delay


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
    """Beat's periodic pass (api.services.sweep.run_sweep): reap, expire, plan, reconcile,
    finish, fold counters, wake a dispatcher. Safe to run twice."""
    workers = Workers(
        plan_run=plan_run.delay,
        reconcile_run=reconcile_run.delay,
        dispatch=dispatch_messages.delay,
        dispatch_when_due=lambda now: wake_dispatcher_when_due(now=now),
    )
    return run_sweep(workers=workers).as_dict()


@shared_task(name="api.tasks.compact_messages", acks_late=True)
def compact_messages() -> dict:
    """Beat, hourly: merge settled runs' message partitions into blocks (few partitions keep
    every query that names no run cheap and within Postgres's lock table)."""
    return {"merged": compaction.compact_settled_runs()}


@shared_task(name="api.tasks.flush_expired_tokens", acks_late=True)
def flush_expired_tokens() -> dict:
    """Beat, daily: forget refresh tokens past their expiry (simplejwt's blacklist keeps a row
    for every token it hands out; an expired one is refused whatever its row says)."""
    from rest_framework_simplejwt.token_blacklist.models import OutstandingToken

    deleted, _ = OutstandingToken.objects.filter(expires_at__lte=timezone.now()).delete()
    return {"deleted": deleted}


@shared_task(name="api.tasks.send_daily_report", acks_late=True)
def send_daily_report() -> dict:
    """Beat, at STATS_EMAIL_TIME and hourly: mail every due day's report not sent yet (a
    missed or failed day too). Safe to run twice: each day is claimed before it is mailed."""
    from api.services import daily_report

    return daily_report.send_due_reports().as_dict()


@shared_task(
    name="api.tasks.import_clients",
    acks_late=True,
    # The database restarted or the connection dropped mid-import: the committed chunks stay,
    # the retry resumes after the last one.
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=5,
    max_retries=8,
)
def import_clients(import_id: int) -> dict:
    """Run or resume a stored bulk client import (after its last committed chunk); a repeat
    once it is done is a no-op."""
    from api.services.client_import import run_stored_import

    job = run_stored_import(import_id=import_id)
    return {"import": import_id, "status": job.status, "counts": job.counts}

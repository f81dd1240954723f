"""The dispatch service the worker's task calls: one stream over the due messages, then the
runs it may have completed."""

from __future__ import annotations

import contextlib
import logging

from django.conf import settings
from django.db import DatabaseError

from api.providers.base import BaseProvider, get_provider

from .stream import DispatchReport, DispatchStream
from .sweep import finish_completed_runs

logger = logging.getLogger(__name__)


def dispatch_due_messages(
    *,
    time_budget: float | None = None,
    batch_size: int | None = None,
    provider: BaseProvider | None = None,
) -> DispatchReport:
    """Send due messages as a stream until none are due or the time budget is spent. Safe to
    run in many workers at once (claims skip each other's rows) and to run again."""
    stream = DispatchStream(
        provider or get_provider(),
        batch_size=batch_size or settings.DISPATCH_BATCH_SIZE,
        time_budget=settings.DISPATCH_TASK_SECONDS if time_budget is None else time_budget,
    )
    report = stream.run()
    if report.claimed and not report.more_due:
        # Only once the backlog is drained: the check reads the run's messages, and a task
        # that stopped on its time budget will be followed by another one anyway.
        with contextlib.suppress(DatabaseError):
            finish_completed_runs()
    if report.claimed:
        logger.info(
            "dispatch claimed=%s outcomes=%s more_due=%s",
            report.claimed,
            dict(report.outcomes),
            report.more_due,
        )
    return report

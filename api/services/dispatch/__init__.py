"""Dispatch: claim due messages in batches, check them at send time, send, record outcomes.

claims.py (claim_due_messages) -> outcomes.py (before_send, after_send, record_transitions)
-> loop.py (one batch: prepare_batch, complete_batch, deliver_batch) -> stream.py
(dispatch_due_messages: the worker's stream); sweep.py holds beat's housekeeping.
"""

from api.providers.base import OutgoingSms

from .claims import ClaimedMessage, _claim_sql, claim_due_messages, sending_run_ids
from .loop import (
    DispatchReport,
    PreparedBatch,
    complete_batch,
    deliver_batch,
    prepare_batch,
)
from .outcomes import Transition, after_send, before_send, record_transitions, retry_delay
from .stream import DispatchStream, dispatch_due_messages
from .sweep import (
    CANCELLED_RUN_REAP_WINDOW,
    MIN_WAKEUP_SECONDS,
    due_messages_exist,
    expire_ended_campaigns,
    finish_completed_runs,
    next_due_at,
    reap_expired_leases,
    wakeup_countdown,
)

__all__ = [
    "CANCELLED_RUN_REAP_WINDOW",
    "MIN_WAKEUP_SECONDS",
    "ClaimedMessage",
    "DispatchReport",
    "DispatchStream",
    "OutgoingSms",
    "PreparedBatch",
    "Transition",
    "_claim_sql",
    "after_send",
    "before_send",
    "claim_due_messages",
    "complete_batch",
    "deliver_batch",
    "dispatch_due_messages",
    "sending_run_ids",
    "due_messages_exist",
    "expire_ended_campaigns",
    "finish_completed_runs",
    "next_due_at",
    "wakeup_countdown",
    "prepare_batch",
    "reap_expired_leases",
    "record_transitions",
    "retry_delay",
]

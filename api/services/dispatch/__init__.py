"""Dispatch: claim due messages in batches, check them at send time, send, record outcomes.

claims.py (claim_due_messages) -> batch.py (prepare_batch: the send-time checks) -> stream.py
(DispatchStream: sends, collects the answers, renews leases) -> outcome_buffer.py and
outcomes.py (after_send, record_transitions: the writes); service.py (dispatch_due_messages)
is what the worker's task calls. sweep.py holds beat's housekeeping, wakeup.py the wake-up a
worker asks for when the next message falls due before the next sweep.
"""

from .claims import ClaimedMessage, claim_due_messages, sending_run_ids
from .outcomes import Transition, record_transitions
from .service import dispatch_due_messages
from .stream import DispatchReport
from .sweep import (
    CANCELLED_RUN_REAP_WINDOW,
    due_messages_exist,
    expire_ended_campaigns,
    finish_completed_runs,
    reap_expired_leases,
)
from .wakeup import MIN_WAKEUP_SECONDS, next_due_at, wakeups

__all__ = [
    "CANCELLED_RUN_REAP_WINDOW",
    "MIN_WAKEUP_SECONDS",
    "ClaimedMessage",
    "DispatchReport",
    "Transition",
    "claim_due_messages",
    "dispatch_due_messages",
    "due_messages_exist",
    "expire_ended_campaigns",
    "finish_completed_runs",
    "next_due_at",
    "reap_expired_leases",
    "record_transitions",
    "sending_run_ids",
    "wakeups",
]

"""The dispatch stream: claims feed a queue, up to the provider's concurrency in flight, each
outcome written within a moment of its arrival, leases renewed while the work goes on.

Why a stream and not batches: a batch's outcomes were written when its slowest request ended,
so a worker killed mid-batch left every message the gateway had already accepted to be sent
again. Here at most the requests in flight and one small group of unwritten results are open at
any instant: that is all a crash can re-send. Leases are short and renewed (a heartbeat), so a
dead worker's messages are back within a lease, and one slow request holds only its own slot.

The database may go away mid-stream (restart, failover, a killed backend). Outcomes the gateway
gave are facts: they stay here and are written once the database answers again (reconnecting
with backoff); claiming and lease renewals wait meanwhile. The claim token still guards every
write, so a worker that was presumed dead cannot overwrite what a newer owner did.

(Just past ~250 lines: the loop's state — queue, in flight, held, leases — is one object.)
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import UTC, datetime

from django.conf import settings
from django.utils import timezone

from api import metrics
from api.models import Campaign, CampaignRun, MessageStatus, RunStatus
from api.providers.base import BaseProvider, OutgoingSms, SendResult

from .batch import prepare_batch
from .claims import ClaimedMessage, claim_due_messages
from .leases import Leases, request_seconds
from .outage import DatabaseGuard
from .outcome_buffer import OutcomeBuffer
from .outcomes import Transition, after_send
from .sweep import reap_expired_leases

logger = logging.getLogger(__name__)

# How long a worker keeps trying to write outcomes to a database that does not answer before it
# gives up on them (they are then sent again after their lease): far beyond any restart.
OUTCOME_HOLD_SECONDS = 900.0
POLL_SECONDS = 0.005
# How often queued messages' runs are checked for a pause or cancel (one small query): what a
# dispatcher still sends after a pause is what it had handed to the provider plus this long.
RUN_CHECK_SECONDS = 0.5


@dataclass
class DispatchReport:
    claimed: int = 0
    outcomes: Counter = field(default_factory=Counter)  # written, by status
    more_due: bool = False


class DispatchStream:
    def __init__(self, provider: BaseProvider, *, batch_size: int, time_budget: float):
        self.provider = provider
        self.concurrency = max(1, provider.concurrency)
        # Handed to the provider at most: its `concurrency` requests on the wire plus as many
        # waiting beside them, so no sender idles between two of our polls. Only requests on
        # the wire can be sent twice after a crash; the others were never sent.
        self.max_submitted = 2 * self.concurrency
        self.batch_size = batch_size
        self.deadline = time.monotonic() + time_budget
        self.lease = settings.DISPATCH_LEASE_SECONDS
        self.heartbeat_every = self.lease / 3
        self.queue: deque[ClaimedMessage] = deque()  # claimed and checked, not yet submitted
        self.in_flight: dict[int, ClaimedMessage] = {}
        self.held: dict[int, ClaimedMessage] = {}  # claimed, until its outcome is written
        self.campaigns: dict[int, Campaign] = {}  # by run id
        # Filled by the provider's thread, drained here; deque appends/pops are thread-safe.
        self.results: deque[tuple[SendResult, float]] = deque()
        self.outcomes = OutcomeBuffer()
        self.report = DispatchReport()
        self.exhausted = False  # a claim found nothing due
        self.next_heartbeat = time.monotonic() + self.heartbeat_every
        self.next_run_check = time.monotonic() + RUN_CHECK_SECONDS
        self.db = DatabaseGuard()
        self.leases = Leases(self.lease, request_seconds())

    # -- the loop -------------------------------------------------------------------------
    def run(self) -> DispatchReport:
        self._database(self._reap)
        while True:
            now = time.monotonic()
            stopping = now >= self.deadline
            if stopping and not self.exhausted:
                self.report.more_due = True
            if not stopping and not self.exhausted and len(self.queue) < self.concurrency:
                self._database(self._claim)
            if stopping and self.queue:
                self._release_queue()
            self._submit()
            if not self.in_flight and not self.queue and (stopping or self.exhausted):
                break
            if not self.in_flight and self.db.down:  # nothing to collect; nothing sendable
                self.db.sleep_until_retry()
            self._collect(timeout=self._wait_seconds())
            self._flush_if_due()
            if time.monotonic() >= self.next_heartbeat:
                self._database(self._heartbeat)
            elif self.queue and time.monotonic() >= self.next_run_check:
                self._database(self._check_runs)
        self._drain_outcomes()
        self.outcomes.log_retries()
        return self.report

    def _wait_seconds(self) -> float:
        if not self.in_flight:
            return 0.0
        if self.outcomes:
            return self.outcomes.seconds_until_due()
        return min(self.outcomes.flush_seconds, max(0.0, self.next_heartbeat - time.monotonic()))

    # -- claiming and sending -------------------------------------------------------------
    def _claim(self) -> None:
        claimed_at = time.time()
        token, batch = claim_due_messages(limit=self.batch_size)
        self.leases.claimed(token, claimed_at)
        if not batch:
            self.exhausted = True
            return
        self.report.claimed += len(batch)
        metrics.record_claimed(len(batch))
        # If the checks fail (the database went away), the batch is simply forgotten: never
        # sent, so nothing to write; its lease brings it back.
        prepared = prepare_batch(token, batch)
        self.held.update((message.id, message) for message in batch)
        self.campaigns.update(prepared.campaigns)
        if logger.isEnabledFor(logging.DEBUG):
            for message in batch:
                logger.debug(
                    "message claimed attempt=%s", message.attempts, extra=self._ids(message)
                )
        self.outcomes.add(prepared.transitions)
        self.queue.extend(prepared.to_send)

    def _submit(self) -> None:
        room = self.max_submitted - len(self.in_flight)
        if room <= 0 or not self.queue:
            return
        if not self.leases.spare(self.queue[0]):
            self._database(self._heartbeat)  # renew first: a request must end within its lease
        now = timezone.now()
        outgoing, waiting = [], []
        while self.queue and len(outgoing) < room:
            message = self.queue.popleft()
            if not self.leases.spare(message):
                waiting.append(message)  # the database did not answer the renewal: hold it
                if len(waiting) >= room:
                    break
                continue
            campaign = self.campaigns[message.run_id]
            if now >= campaign.end_datetime:  # it waited in the queue past the end
                self.outcomes.add(
                    {
                        message.id: Transition(
                            MessageStatus.EXPIRED, error="campaign ended", refund_attempt=True
                        )
                    }
                )
                continue
            self.in_flight[message.id] = message
            not_after = min(campaign.end_datetime.timestamp(), self.leases.send_by(message))
            outgoing.append(
                OutgoingSms(message.id, message.phone, campaign.text_message, not_after)
            )
        self.queue.extendleft(reversed(waiting))
        if outgoing:
            self.provider.submit(outgoing, self._on_result)

    def _on_result(self, result: SendResult) -> None:  # any thread
        self.results.append((result, time.time()))

    def _collect(self, timeout: float) -> None:
        # Polled, not woken per result: a wake-up per message costs a thread switch each, and
        # the provider's senders refill their own slots meanwhile.
        if not self.results and timeout > 0:
            time.sleep(min(timeout, POLL_SECONDS))
        items = []
        with contextlib.suppress(IndexError):
            while True:
                items.append(self.results.popleft())
        decided = {}
        for result, arrived_at in items:
            arrived = datetime.fromtimestamp(arrived_at, UTC)
            message = self.in_flight.pop(result.message_id, None)
            if message is None:
                continue  # a provider answering twice for one message: the first answer counts
            transition = after_send(result, message, self.campaigns[message.run_id], arrived)
            if transition.sent_at:  # whole seconds: few groups per write
                transition.sent_at = transition.sent_at.replace(microsecond=0)
            decided[message.id] = transition
        self.outcomes.add(decided)

    def _release_queue(self) -> None:
        """The time budget is spent: what was claimed but not sent goes back as it was, due
        when it was due (not "now": that would put it behind every message due since)."""
        self.outcomes.add(
            {
                message.id: Transition(MessageStatus.PENDING, refund_attempt=True)
                for message in self.queue
            }
        )
        self.queue.clear()

    # -- writing outcomes -----------------------------------------------------------------
    def _flush_if_due(self) -> None:
        if self.outcomes.is_due():
            self._database(self._flush)

    def _flush(self) -> None:
        self.report.outcomes.update(self.outcomes.write(self.held, self._ids))

    def _drain_outcomes(self) -> None:
        """Write what is left, waiting out a database outage (up to OUTCOME_HOLD_SECONDS)."""
        give_up_at = time.monotonic() + OUTCOME_HOLD_SECONDS
        while self.outcomes and time.monotonic() < give_up_at:
            self.db.sleep_until_retry()
            self._database(self._flush)
        if self.outcomes:
            logger.error(
                "database unavailable for %ss: %s outcomes not written; they are sent again"
                " after their lease",
                int(OUTCOME_HOLD_SECONDS),
                len(self.outcomes),
            )

    # -- leases ---------------------------------------------------------------------------
    def _heartbeat(self) -> None:
        """Renew the leases of everything held; re-check queued messages (a pause, a cancel)."""
        self.next_heartbeat = time.monotonic() + self.heartbeat_every
        lost = self.leases.renew(self.held)
        if lost:
            # Taken over while this worker could not renew (cut off, stalled): not ours to send
            # or to record any more.
            logger.warning("lease lost on %s messages; left to their new owner", len(lost))
            self.queue = deque(message for message in self.queue if message.id not in lost)
            for message_id in lost:
                if message_id not in self.in_flight:
                    self.held.pop(message_id, None)
                    self.outcomes.decided.pop(message_id, None)
        if self.queue:
            self._recheck_queue()
        self._reap()
        self.outcomes.log_retries()

    def _check_runs(self) -> None:
        self.next_run_check = time.monotonic() + RUN_CHECK_SECONDS
        queued = {message.run_id for message in self.queue}
        if CampaignRun.objects.filter(pk__in=queued).exclude(status=RunStatus.RUNNING).exists():
            self._recheck_queue()  # paused or cancelled since it was claimed

    def _recheck_queue(self) -> None:
        by_token: dict[int, list[ClaimedMessage]] = {}
        for message in self.queue:
            by_token.setdefault(message.token, []).append(message)
        kept: set[int] = set()
        for token, messages in by_token.items():
            prepared = prepare_batch(token, messages)
            self.campaigns.update(prepared.campaigns)
            self.outcomes.add(prepared.transitions)
            kept.update(message.id for message in prepared.to_send)
        self.queue = deque(message for message in self.queue if message.id in kept)  # due order

    def _reap(self) -> None:
        # A dead worker's messages are handed back as soon as their lease runs out, not at
        # beat's next sweep (up to DISPATCH_INTERVAL_SECONDS later).
        reap_expired_leases()

    def _database(self, operation) -> None:
        self.db.run(operation, holding=self._holding)

    def _holding(self) -> str:
        return f"{len(self.outcomes)} outcomes, {len(self.in_flight)} in flight"

    # -- logs -----------------------------------------------------------------------------
    def _ids(self, message: ClaimedMessage) -> dict:
        campaign = self.campaigns.get(message.run_id)
        return {
            "message_id": message.id,
            "run_id": message.run_id,
            "campaign_id": campaign.id if campaign else None,
            "client_id": message.client_id,
        }

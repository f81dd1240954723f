"""Outcomes decided but not yet written: gathered for a moment, then written in a few statements.

Writing each outcome on arrival costs a statement per message; holding them until the stream
ends would leave every accepted message to be sent again after a crash. The buffer is written
once `DISPATCH_FLUSH_RESULTS` outcomes have gathered or the oldest has waited
`DISPATCH_FLUSH_SECONDS`; a write that fails keeps what it did not write, for the next try.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable

from django.conf import settings
from django.utils import timezone

from api import metrics
from api.models import MessageStatus
from api.phones import mask_phone

from .claims import ClaimedMessage
from .outcomes import Transition, record_transitions

logger = logging.getLogger(__name__)


class OutcomeBuffer:
    def __init__(self) -> None:
        self.flush_seconds = settings.DISPATCH_FLUSH_SECONDS
        self.flush_results = max(1, settings.DISPATCH_FLUSH_RESULTS)
        self.decided: dict[int, Transition] = {}  # by message id
        self.oldest_decided = 0.0  # monotonic
        self.retry_errors: Counter = Counter()  # logged in a summary, not one line each

    def __len__(self) -> int:
        return len(self.decided)

    def add(self, transitions: dict[int, Transition]) -> None:
        if transitions and not self.decided:
            self.oldest_decided = time.monotonic()
        self.decided.update(transitions)

    def seconds_until_due(self) -> float:
        return max(0.0, self.oldest_decided + self.flush_seconds - time.monotonic())

    def is_due(self) -> bool:
        if not self.decided:
            return False
        return len(self.decided) >= self.flush_results or (
            time.monotonic() - self.oldest_decided >= self.flush_seconds
        )

    def write(
        self, held: dict[int, ClaimedMessage], ids: Callable[[ClaimedMessage], dict]
    ) -> Counter:
        """Write every outcome held, one statement per claim token and kind of outcome, and
        forget their messages from `held`; returns the count written by status. If a write
        fails, the outcomes of the tokens not yet written stay here and the error propagates."""
        decided, self.decided = self.decided, {}
        by_token: dict[int, dict[int, Transition]] = {}
        for message_id, transition in decided.items():
            by_token.setdefault(held[message_id].token, {})[message_id] = transition
        written_tokens = []
        try:
            for token, transitions in by_token.items():
                record_transitions(token, transitions, timezone.now())
                written_tokens.append(token)
        except BaseException:
            for token, transitions in by_token.items():
                if token not in written_tokens:
                    self.decided.update(transitions)
            raise
        return self._account(decided, held, ids)

    def _account(
        self,
        decided: dict[int, Transition],
        held: dict[int, ClaimedMessage],
        ids: Callable[[ClaimedMessage], dict],
    ) -> Counter:
        """Logs and metrics for outcomes just written."""
        statuses: Counter = Counter()
        classes: Counter = Counter()
        debug = logger.isEnabledFor(logging.DEBUG)
        for message_id, transition in decided.items():
            message = held.pop(message_id)
            log_failure(message, transition, ids(message))
            statuses[str(transition.status)] += 1
            outcome = metrics.outcome_class(transition.status, transition.error)
            classes[outcome] += 1
            if outcome == "retry":
                self.retry_errors[transition.error] += 1
            if debug:
                logger.debug(
                    "message %s%s",
                    outcome,
                    f": {transition.error}" if transition.error else "",
                    extra=ids(message),
                )
        metrics.record_outcomes(classes)
        return statuses

    def log_retries(self) -> None:
        for error, count in self.retry_errors.items():
            logger.warning("will retry %s messages: %s", count, error)
        self.retry_errors.clear()


def log_failure(message: ClaimedMessage, transition: Transition, ids: dict) -> None:
    """One warning for a message that failed for good (ids, masked phone, the reason)."""
    if transition.status == MessageStatus.FAILED:
        logger.warning(
            "message failed message=%s run=%s client=%s phone=%s error=%s",
            message.id,
            message.run_id,
            message.client_id,
            mask_phone(message.phone),
            transition.error,
            extra={"client_id": message.client_id, **ids},
        )

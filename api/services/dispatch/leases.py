"""The leases a dispatcher holds: when each claim's lease runs out, renewing them, and which
messages it no longer owns.

A message is sent only while its lease has time to spare: a worker that was cut off from the
database (a partition, a stalled query) may find, when it comes back, that its lease ran out
and another worker took the message over. Sending it then would be a second SMS, so before a
request the lease is renewed if it is near its end, and a message whose row no longer carries
this worker's claim token is dropped, never sent, its outcome never written.
"""

from __future__ import annotations

import time
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from api.models import Message, MessageStatus

from .claims import ClaimedMessage


class Leases:
    def __init__(self, lease_seconds: float, request_seconds: float):
        self.lease_seconds = lease_seconds
        # A request may start only while at least this much of its lease is left: the longest a
        # request can take, capped at half a lease (renewals come every third of one).
        self.margin = min(lease_seconds / 2, request_seconds)
        self.until: dict[int, float] = {}  # claim token -> wall-clock end of its lease

    def claimed(self, token: int, at: float) -> None:
        self.until[token] = at + self.lease_seconds

    def spare(self, message: ClaimedMessage, now: float | None = None) -> bool:
        """Whether a request for this message may start now."""
        now = time.time() if now is None else now
        return self.until.get(message.token, 0.0) - self.margin > now

    def send_by(self, message: ClaimedMessage) -> float:
        """The last instant (wall clock) at which a request for this message may start."""
        return self.until.get(message.token, 0.0) - self.margin

    def renew(self, held: dict[int, ClaimedMessage]) -> set[int]:
        """Extend the leases of every held message; returns the ids this worker no longer
        owns (reaped and taken over while it could not renew)."""
        if not held:
            return set()
        started = time.time()
        tokens = {message.token for message in held.values()}
        until = timezone.now() + timedelta(seconds=self.lease_seconds)
        mine = Message.objects.filter(
            pk__any_of=list(held), status=MessageStatus.SENDING, claim_token__any_of=tokens
        )
        renewed = mine.update(lease_expires_at=until)
        for token in tokens:
            self.until[token] = started + self.lease_seconds
        if renewed == len(held):
            return set()
        owned = set(mine.values_list("id", flat=True))
        return {message_id for message_id in held if message_id not in owned}


def request_seconds() -> float:
    """How long one gateway request may take (connect + read timeouts)."""
    return settings.SMS_CONNECT_TIMEOUT + settings.SMS_READ_TIMEOUT

"""Test sends: a campaign's text sent at once to a few existing clients through the provider,
recorded as TestSend rows, apart from the runs, their messages and the stats."""

from __future__ import annotations

import logging

from django.db import transaction
from django.utils import timezone

from api.domain.clients import check_phone_list
from api.domain.errors import InvalidInput, NotFound
from api.models import Campaign, Client, TestSend
from api.phones import mask_phone, scrub_phones
from api.providers.base import Outcome, OutgoingSms, get_provider, send_and_wait

logger = logging.getLogger(__name__)

# A test send is a check by hand (the request waits for the gateway), not a way around the
# campaign's audience; the provider's rate limit applies as to any message.
MAX_TEST_PHONES = 10


def send_test(*, campaign_id: int, phone_numbers: list[str]) -> list[TestSend]:
    """Send the campaign's text now to the active clients with these numbers (1..10), one
    TestSend row each, its id the gateway's message id (below every run's ids). InvalidInput
    naming `phones` for a malformed list, numbers of no client or of opted-out clients (masked).
    Not idempotent: a repeat sends again."""
    phones = check_phone_list(phone_numbers, field="phones", limit=MAX_TEST_PHONES)
    campaign = Campaign.objects.filter(pk=campaign_id).first()
    if campaign is None:
        raise NotFound("Campaign not found.", field="campaign")
    clients = {c.phone_number: c for c in Client.objects.filter(phone_number__any_of=phones)}
    unknown = [phone for phone in phones if phone not in clients]
    if unknown:
        raise InvalidInput(
            "No client has these numbers: " + ", ".join(mask_phone(p) for p in unknown) + ".",
            field="phones",
        )
    opted_out = [phone for phone in phones if clients[phone].opted_out]
    if opted_out:  # an opt-out holds for test sends too: nothing goes to them
        raise InvalidInput(
            "These clients opted out: " + ", ".join(mask_phone(p) for p in opted_out) + ".",
            field="phones",
        )
    with transaction.atomic():
        sends = [
            TestSend.objects.create(
                campaign=campaign, client=clients[phone], text=campaign.text_message
            )
            for phone in phones
        ]
    # Outside any transaction: the gateway may take seconds; the rows already say who.
    outgoing = [OutgoingSms(send.id, send.client.phone_number, send.text) for send in sends]
    results = send_and_wait(get_provider(), outgoing)
    now = timezone.now()
    for send, result in zip(sends, results, strict=True):
        send.outcome = str(result.outcome)
        send.error = scrub_phones(result.error)[:2000]
        send.sent_at = now if result.outcome == Outcome.SENT else None
        send.save(update_fields=["outcome", "error", "sent_at"])
        logger.info(
            "test send campaign=%s test_send=%s client=%s phone=%s outcome=%s",
            campaign.id,
            send.id,
            send.client_id,
            mask_phone(send.client.phone_number),
            send.outcome,
            extra={"campaign_id": campaign.id, "message_id": send.id},
        )
    return sends

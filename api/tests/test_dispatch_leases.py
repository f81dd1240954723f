"""Fixes found by the chaos suite (api/tests/chaos/), each pinned by a fast test here: a lease
that ran out is renewed or given up before a request, never sent through; a provider re-checks
the campaign's end right before each request; the reaper keeps a message's due time."""

import time
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from api.models import CampaignRun, MessageStatus, RunStatus
from api.providers.base import Outcome, OutgoingSms
from api.services import dispatch
from api.services.dispatch.outcomes import after_send
from api.services.dispatch.stream import DispatchStream
from api.tests.test_dispatch import expire_leases, make_campaign


@pytest.mark.django_db
def test_a_reaped_message_stays_due_and_goes_out_first():
    _, run = make_campaign(clients=3)
    early = timezone.now() - timedelta(hours=1)
    first = run.messages.order_by("id").first()
    run.messages.filter(pk=first.pk).update(next_attempt_at=early)
    dispatch.claim_due_messages(limit=1)  # a worker takes the earliest and dies
    expire_leases(run)

    assert dispatch.reap_expired_leases() == 1

    first.refresh_from_db()
    lease = timedelta(seconds=settings.DISPATCH_LEASE_SECONDS)
    assert (first.status, first.next_attempt_at) == (MessageStatus.PENDING, early - lease)
    _, batch = dispatch.claim_due_messages(limit=1)
    assert [m.id for m in batch] == [first.id]  # ahead of the messages due since


@pytest.mark.django_db
def test_a_reaped_message_goes_ahead_of_messages_due_at_the_same_instant():
    _, run = make_campaign(clients=4)  # one zone: one planned instant for all
    _, dead = dispatch.claim_due_messages(limit=2)
    expire_leases(run)
    dispatch.reap_expired_leases()

    _, batch = dispatch.claim_due_messages(limit=2)

    assert {m.id for m in batch} == {m.id for m in dead}


@pytest.mark.django_db
def test_the_http_provider_sends_nothing_after_not_after(gateway, http_provider):
    past = time.time() - 0.01
    result = http_provider.send_messages([OutgoingSms(1, "79000000001", "hi", past)])[0]
    assert (result.outcome, result.attempted) == (Outcome.RETRY, False)
    assert gateway.state.requests == 0
    assert http_provider.send_messages([OutgoingSms(2, "79000000002", "hi", time.time() + 60)])
    assert gateway.state.requests == 1


@pytest.mark.django_db
def test_a_message_held_back_at_the_campaign_end_expires_without_a_request(gateway, http_provider):
    campaign, run = make_campaign(clients=1)
    token, batch = dispatch.claim_due_messages(limit=1)
    sms = OutgoingSms(batch[0].id, "79000000001", "hi", time.time() - 0.01)
    result = http_provider.send_messages([sms])[0]

    campaign.end_datetime = timezone.now()
    transition = after_send(result, batch[0], campaign, timezone.now())

    assert transition.status == MessageStatus.EXPIRED and transition.refund_attempt
    assert gateway.state.requests == 0


@pytest.mark.django_db
def test_a_stream_never_sends_a_message_taken_over_while_it_could_not_renew(gateway, http_provider):
    _, run = make_campaign(clients=4)
    stream = DispatchStream(http_provider, batch_size=10, time_budget=10)
    stream._claim()
    assert len(stream.queue) == 4
    # The worker stalls (cut off) past its lease; the reaper hands its messages back and
    # another worker takes two of them over.
    taken = [m.id for m in list(stream.queue)[:2]]
    expire_leases(run)
    dispatch.reap_expired_leases()
    run.messages.filter(pk__in=taken).update(status=MessageStatus.SENDING, claim_token=7)
    for token in stream.leases.until:
        stream.leases.until[token] = time.time() - 1  # its lease ran out meanwhile

    stream._submit()  # it comes back: renewing finds none of them its own any more

    assert gateway.state.requests == 0
    assert not stream.queue and not stream.held and not stream.in_flight
    assert sorted(run.messages.values_list("status", flat=True)) == [
        "pending",
        "pending",
        "sending",
        "sending",
    ]


@pytest.mark.django_db
def test_a_stream_renews_a_lease_near_its_end_before_sending(gateway, http_provider):
    _, run = make_campaign(clients=1)
    stream = DispatchStream(http_provider, batch_size=10, time_budget=10)
    stream._claim()
    (token,) = stream.leases.until
    stream.leases.until[token] = time.time() + 0.1  # too little left for a request

    stream._submit()

    message = run.messages.get()
    assert message.lease_expires_at > timezone.now() + timedelta(seconds=20)  # renewed
    assert stream.in_flight  # and then sent


@pytest.mark.django_db
def test_a_stream_drops_queued_messages_of_a_run_paused_since_the_claim(gateway, http_provider):
    _, run = make_campaign(clients=3)
    stream = DispatchStream(http_provider, batch_size=10, time_budget=10)
    stream._claim()
    CampaignRun.objects.filter(pk=run.pk).update(status=RunStatus.PAUSED)  # the pause request

    stream._check_runs()  # every RUN_CHECK_SECONDS, long before the next heartbeat
    stream._submit()
    stream._flush()

    assert not stream.queue and gateway.state.requests == 0
    assert sorted(run.messages.values_list("status", flat=True)) == ["paused"] * 3


@pytest.mark.django_db
def test_messages_released_at_the_end_of_a_time_budget_keep_their_due_time(gateway, http_provider):
    _, run = make_campaign(clients=3)
    early = timezone.now() - timedelta(minutes=5)
    run.messages.update(next_attempt_at=early)
    stream = DispatchStream(http_provider, batch_size=10, time_budget=10)
    stream._claim()

    stream._release_queue()  # the budget ran out before any was sent
    stream._flush()

    rows = set(run.messages.values_list("status", "next_attempt_at", "attempts"))
    assert rows == {(MessageStatus.PENDING, early, 0)}  # ahead of anything due since

"""Delivery through a real HTTP gateway: outcomes, retries, windows, end, leases, parallelism."""

import threading
from datetime import UTC, datetime, time, timedelta

import pytest
from django.db import connection
from django.utils import timezone

from api.models import Campaign, CampaignRun, CampaignStatus, MessageStatus, RunStatus
from api.providers.base import BaseProvider, OutgoingSms, send_and_wait
from api.services import dispatch
from api.services.dispatch.batch import prepare_batch
from api.services.dispatch.outcomes import after_send
from api.services.planning import plan_run
from api.tests.factories import CampaignFactory, ClientFactory


def start_and_plan(campaign: Campaign):
    # The run is opened directly (not through start_campaign) so that no Celery task plans
    # and sends it behind the test's back; the tests drive planning and dispatch themselves.
    run = CampaignRun.objects.create(campaign=campaign, number=1)
    Campaign.objects.filter(pk=campaign.pk).update(status=CampaignStatus.SCHEDULED)
    plan_run(run_id=run.id)
    run.refresh_from_db()
    return run


def make_campaign(clients=3, **fields):
    ClientFactory.create_batch(clients, tag="promo")
    campaign = CampaignFactory(tag="promo", text_message="Sale today", **fields)
    return campaign, start_and_plan(campaign)


def run_dispatch(provider, **kwargs):
    return dispatch.dispatch_due_messages(provider=provider, time_budget=10, **kwargs)


def deliver_batch(token, batch, provider):
    """Check, send and record one claimed batch (a stream's work, for a batch in hand)."""
    prepared = prepare_batch(token, batch)
    campaigns = prepared.campaigns
    outgoing = [
        OutgoingSms(m.id, m.phone, campaigns[m.run_id].text_message) for m in prepared.to_send
    ]
    results = send_and_wait(provider, outgoing)
    sent_at = timezone.now()
    transitions = prepared.transitions
    for message, result in zip(prepared.to_send, results, strict=True):
        transitions[message.id] = after_send(result, message, campaigns[message.run_id], sent_at)
    dispatch.record_transitions(token, transitions, timezone.now())


def expire_leases(run):
    """Time passes: the leases of every claimed message run out."""
    run.messages.filter(status=MessageStatus.SENDING).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )


def statuses(run):
    return sorted(run.messages.values_list("status", flat=True))


@pytest.mark.django_db
def test_whole_campaign_is_delivered_over_http_once_each(gateway, http_provider):
    campaign, run = make_campaign(clients=25)

    report = run_dispatch(http_provider, batch_size=10)

    assert report.claimed == 25
    deliveries = gateway.state.deliveries
    assert sorted(d.message_id for d in deliveries) == sorted(
        run.messages.values_list("id", flat=True)
    )
    assert {d.text for d in deliveries} == {"Sale today"}
    phones = set(run.messages.values_list("client__phone_number", flat=True))
    assert {str(d.phone) for d in deliveries} == phones
    assert gateway.state.duplicates == 0
    assert statuses(run) == ["sent"] * 25
    run.refresh_from_db()
    campaign.refresh_from_db()
    assert run.status == RunStatus.FINISHED
    assert campaign.status == CampaignStatus.FINISHED


@pytest.mark.django_db
def test_gateway_rejects_a_wrong_token_as_permanent_failure(gateway, http_provider, settings):
    gateway.state.config.token = "another-token"
    _, run = make_campaign(clients=2)

    run_dispatch(http_provider)

    assert statuses(run) == ["failed", "failed"]
    assert all("401" in e for e in run.messages.values_list("last_error", flat=True))
    assert gateway.state.deliveries == []


@pytest.mark.django_db
def test_transient_errors_are_retried_with_backoff_then_delivered(gateway, http_provider):
    _, run = make_campaign(clients=3)
    gateway.script(503, count=3)
    before = timezone.now()

    run_dispatch(http_provider)

    pending = list(run.messages.all())
    assert {m.status for m in pending} == {MessageStatus.PENDING}
    assert all(m.attempts == 1 for m in pending)
    assert all("503" in m.last_error for m in pending)
    # Backoff with jitter: at least half the base delay, at most the base delay.
    assert all(m.next_attempt_at >= before + timedelta(seconds=15) for m in pending)
    assert all(m.next_attempt_at <= timezone.now() + timedelta(seconds=30) for m in pending)
    assert gateway.state.deliveries == []

    # Not due yet: another pass sends nothing.
    assert run_dispatch(http_provider).claimed == 0
    run.messages.update(next_attempt_at=timezone.now())
    run_dispatch(http_provider)

    assert statuses(run) == ["sent"] * 3
    assert list(run.messages.values_list("attempts", flat=True)) == [2, 2, 2]
    assert len(gateway.state.deliveries) == 3


@pytest.mark.django_db
def test_timeouts_are_transient(gateway, http_provider, settings):
    gateway.state.config.latency_ms = 2500  # the provider's read timeout is 2 s here
    _, run = make_campaign(clients=2)

    run_dispatch(http_provider)

    assert statuses(run) == ["pending", "pending"]
    assert set(run.messages.values_list("last_error", flat=True)) == {"gateway timeout"}


@pytest.mark.django_db
def test_permanent_errors_fail_once_and_are_never_retried(gateway, http_provider):
    _, run = make_campaign(clients=2)
    gateway.script(400, count=2)

    run_dispatch(http_provider)
    run.messages.update(next_attempt_at=timezone.now())
    run_dispatch(http_provider)

    assert statuses(run) == ["failed", "failed"]
    assert gateway.state.requests == 2
    assert list(run.messages.values_list("attempts", flat=True)) == [1, 1]


@pytest.mark.django_db
def test_gives_up_after_max_attempts(gateway, http_provider, settings):
    settings.SMS_MAX_ATTEMPTS = 2
    _, run = make_campaign(clients=1)
    gateway.script(500, count=5)

    run_dispatch(http_provider)
    run.messages.update(next_attempt_at=timezone.now())
    run_dispatch(http_provider)

    message = run.messages.get()
    assert message.status == MessageStatus.FAILED
    assert message.attempts == 2
    assert "gave up after 2 attempts" in message.last_error


@pytest.mark.django_db
def test_429_retry_after_is_respected_and_holds_the_rest_of_the_batch(gateway, http_provider):
    _, run = make_campaign(clients=5)
    gateway.script(429, count=1, retry_after=120)
    http_provider.concurrency = 1  # one request at a time, so the 429 comes first
    before = timezone.now()

    run_dispatch(http_provider)

    messages = list(run.messages.all())
    assert {m.status for m in messages} == {MessageStatus.PENDING}
    assert all(m.next_attempt_at >= before + timedelta(seconds=119) for m in messages)
    # Only the throttled request reached the gateway; the others were held back unsent.
    assert gateway.state.requests == 1
    assert sorted(m.attempts for m in messages) == [0, 0, 0, 0, 1]


@pytest.mark.django_db
def test_retry_that_would_land_after_the_end_expires_instead(gateway, http_provider):
    now = timezone.now()
    _, run = make_campaign(clients=1, end_datetime=now + timedelta(seconds=5))
    gateway.script(503, count=1)

    run_dispatch(http_provider)

    message = run.messages.get()
    assert message.status == MessageStatus.EXPIRED
    assert "503" in message.last_error


@pytest.mark.django_db
def test_nothing_is_sent_after_the_end_even_with_a_backlog(gateway, http_provider):
    campaign, run = make_campaign(clients=4)
    # The workers were down until after the end: the whole run is an overdue backlog.
    Campaign.objects.filter(pk=campaign.pk).update(
        start_datetime=timezone.now() - timedelta(hours=2),
        end_datetime=timezone.now() - timedelta(seconds=1),
    )

    run_dispatch(http_provider)

    assert statuses(run) == ["expired"] * 4
    assert gateway.state.requests == 0
    run.refresh_from_db()
    assert run.status == RunStatus.FINISHED


@pytest.mark.django_db
def test_sweep_expires_unsent_messages_of_ended_campaigns(gateway, http_provider):
    campaign, run = make_campaign(clients=3)
    run.messages.update(next_attempt_at=timezone.now() + timedelta(hours=1))
    Campaign.objects.filter(pk=campaign.pk).update(end_datetime=timezone.now())

    dispatch.expire_ended_campaigns()

    assert statuses(run) == ["expired"] * 3
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.FINISHED


@pytest.mark.django_db
def test_backlog_outside_the_clients_window_is_replanned_not_sent(gateway, http_provider):
    now = timezone.now()
    local_now = now.astimezone(UTC)
    # A window that is closed right now in UTC: it opens in 3 hours, lasts one hour.
    opens = (local_now + timedelta(hours=3)).time().replace(second=0, microsecond=0)
    closes = (local_now + timedelta(hours=4)).time().replace(second=0, microsecond=0)
    campaign, run = make_campaign(clients=2, time_interval_start=opens, time_interval_end=closes)
    # A backlog: messages were due long ago (e.g. workers were down) but the window has closed.
    run.messages.update(next_attempt_at=now - timedelta(hours=1))

    run_dispatch(http_provider)

    assert gateway.state.requests == 0
    for message in run.messages.all():
        assert message.status == MessageStatus.PENDING
        assert message.attempts == 0
        assert message.next_attempt_at > now + timedelta(hours=2)
        assert message.next_attempt_at.astimezone(UTC).time() == opens


@pytest.mark.django_db
def test_paused_campaign_claimed_mid_flight_is_not_sent(gateway, http_provider):
    campaign, run = make_campaign(clients=2)
    token, batch = dispatch.claim_due_messages(limit=10)
    Campaign.objects.filter(pk=campaign.pk).update(status=CampaignStatus.PAUSED)
    type(run).objects.filter(pk=run.pk).update(status=RunStatus.PAUSED)

    deliver_batch(token, batch, http_provider)

    assert statuses(run) == ["paused", "paused"]
    assert gateway.state.requests == 0


@pytest.mark.django_db
def test_a_dead_workers_batch_is_sent_exactly_once_after_its_lease(gateway, http_provider):
    _, run = make_campaign(clients=6)
    # Worker A claims a batch and dies before sending it.
    token_a, batch_a = dispatch.claim_due_messages(limit=10)
    assert len(batch_a) == 6
    assert run_dispatch(http_provider).claimed == 0  # leased: nobody else takes it

    expire_leases(run)
    assert dispatch.reap_expired_leases() == 6
    run_dispatch(http_provider)

    assert statuses(run) == ["sent"] * 6
    assert sorted(gateway.delivered_ids) == sorted(m.id for m in batch_a)
    assert gateway.state.requests == 6

    # Worker A comes back from the dead and reports on its stale claim: nothing changes.
    failed = {m.id: dispatch.Transition(MessageStatus.FAILED, error="stale") for m in batch_a}
    assert dispatch.record_transitions(token_a, failed, timezone.now()) == 0
    assert statuses(run) == ["sent"] * 6


@pytest.mark.django_db
def test_a_resend_after_an_unknown_outcome_is_deduplicated_by_the_gateway(gateway, http_provider):
    _, run = make_campaign(clients=1)
    message = run.messages.get()
    # The gateway accepted the message but the worker died before recording it.
    token, batch = dispatch.claim_due_messages(limit=10)
    http_provider.send_messages(
        [OutgoingSms(message.id, message.client.phone_number, "Sale today")]
    )
    expire_leases(run)
    dispatch.reap_expired_leases()

    run_dispatch(http_provider)

    message.refresh_from_db()
    assert message.status == MessageStatus.SENT
    assert gateway.state.requests == 2
    assert gateway.delivered_ids == [message.id]
    assert gateway.state.duplicates == 1


@pytest.mark.django_db
def test_deleted_client_is_not_sent(gateway, http_provider):
    from api.services.clients import delete_client

    _, run = make_campaign(clients=2)
    victim = run.messages.first()
    token, batch = dispatch.claim_due_messages(limit=10)
    delete_client(client_id=victim.client_id)

    deliver_batch(token, batch, http_provider)

    victim.refresh_from_db()
    assert victim.status == MessageStatus.CANCELLED
    assert gateway.state.requests == 1


@pytest.mark.django_db
def test_a_provider_that_raises_loses_nothing(settings):
    class BrokenProvider(BaseProvider):
        def send_messages(self, messages):
            raise RuntimeError("boom")

    _, run = make_campaign(clients=2)

    dispatch.dispatch_due_messages(provider=BrokenProvider(), time_budget=5)

    assert statuses(run) == ["pending", "pending"]
    assert set(run.messages.values_list("last_error", flat=True)) == {
        "provider error: RuntimeError"
    }


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_parallel_dispatchers_never_send_the_same_message(gateway, http_provider):
    _, run = make_campaign(clients=400)
    barrier = threading.Barrier(3)
    reports = []

    def worker():
        try:
            barrier.wait()
            reports.append(run_dispatch(http_provider, batch_size=20))
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert sum(r.claimed for r in reports) == 400
    assert all(r.claimed > 0 for r in reports), [r.claimed for r in reports]
    assert gateway.state.requests == 400
    assert gateway.state.duplicates == 0
    assert len(set(gateway.delivered_ids)) == 400
    assert statuses(run) == ["sent"] * 400


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_claims_skip_rows_locked_by_another_worker():
    make_campaign(clients=10)
    from django.db import connections

    # Another connection holds a claim transaction open on the first 5 due rows.
    other = connections.create_connection("default")
    with other.cursor() as cursor:
        cursor.execute("BEGIN")
        cursor.execute(
            "SELECT id FROM api_message WHERE status = 'pending'"
            " ORDER BY next_attempt_at, id LIMIT 5 FOR UPDATE"
        )
        locked = {row[0] for row in cursor.fetchall()}
        _, batch = dispatch.claim_due_messages(limit=10)
        cursor.execute("ROLLBACK")
    other.close()

    assert len(batch) == 5
    assert not locked & {m.id for m in batch}


def test_window_start_in_the_past_of_a_dst_day_is_handled():
    from api.services.send_window import next_send_time

    moment = next_send_time(
        not_before=datetime(2026, 3, 8, 5, 0, tzinfo=UTC),
        end=datetime(2026, 4, 1, tzinfo=UTC),
        window_start=time(2, 30),
        window_end=time(4, 0),
        timezone_name="America/New_York",
    )
    assert moment == datetime(2026, 3, 8, 7, 0, tzinfo=UTC)


@pytest.mark.django_db
def test_gateway_outage_becomes_retries_without_crashing(gateway, http_provider):
    _, run = make_campaign(clients=3)
    gateway.stop()  # the gateway is down: connections are refused

    report = run_dispatch(http_provider)

    assert report.outcomes == {"pending": 3}
    errors = set(run.messages.values_list("last_error", flat=True))
    assert errors == {"gateway unreachable: ConnectionRefusedError"}


@pytest.mark.django_db
def test_a_dead_workers_batch_in_a_run_cancelled_meanwhile_is_cancelled_not_sent(
    gateway, http_provider, api
):
    campaign, run = make_campaign(clients=3)
    dispatch.claim_due_messages(limit=10)  # the worker dies holding the batch
    assert api.post(f"/api/campaigns/{campaign.pk}/cancel/").status_code == 200

    expire_leases(run)
    assert dispatch.reap_expired_leases() == 3
    run_dispatch(http_provider)

    assert statuses(run) == ["cancelled"] * 3
    assert set(run.messages.values_list("last_error", flat=True)) == {
        "run cancelled (worker lost mid-send)"
    }
    assert gateway.state.requests == 0


@pytest.mark.django_db
def test_a_dead_workers_batch_in_a_paused_run_waits_for_the_resume(gateway, http_provider, api):
    campaign, run = make_campaign(clients=2)
    dispatch.claim_due_messages(limit=10)
    assert api.post(f"/api/campaigns/{campaign.pk}/pause/").status_code == 200

    expire_leases(run)
    dispatch.reap_expired_leases()
    run_dispatch(http_provider)
    assert gateway.state.requests == 0  # a paused run's messages are not claimed

    assert api.post(f"/api/campaigns/{campaign.pk}/resume/").status_code == 200
    run_dispatch(http_provider)

    assert statuses(run) == ["sent", "sent"]
    assert gateway.state.requests == 2

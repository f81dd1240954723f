"""Soak under faults: parallel dispatchers, a flaky throttling gateway, dead workers' leases.

The small size runs in `make test`; the large one is `slow` (`make test-slow`).
"""

import random
import threading
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from api.models import CampaignRun, CampaignStatus, MessageStatus
from api.services import dispatch
from api.services.planning import plan_run
from api.tests.factories import CampaignFactory, ClientFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize(
    "clients", [pytest.param(300, id="small"), pytest.param(5000, marks=pytest.mark.slow)]
)
def test_every_message_is_delivered_once_through_faults(clients, gateway, http_provider, settings):
    settings.SMS_RETRY_BASE_SECONDS = 0.05
    settings.SMS_RETRY_MAX_SECONDS = 0.5
    settings.SMS_MAX_ATTEMPTS = 50
    gateway.state.config.error_rate = 0.15  # 503
    gateway.state.config.throttle_rate = 0.05  # 429
    gateway.state.config.retry_after = 0.2
    ClientFactory.create_batch(clients, tag="soak")
    campaign = CampaignFactory(tag="soak", status=CampaignStatus.SCHEDULED)
    run = CampaignRun.objects.create(campaign=campaign, number=1)
    plan_run(run_id=run.id)
    stop = threading.Event()
    errors = []

    def dispatcher(seed):
        chaos = random.Random(seed)
        try:
            while not stop.is_set():
                if chaos.random() < 0.1:
                    # A worker dies holding a claim; its lease is cut short to keep the test fast.
                    _, batch = dispatch.claim_due_messages(limit=chaos.randint(1, 20))
                    ids = [m.id for m in batch]
                    run.messages.filter(pk__in=ids).update(lease_expires_at=timezone.now())
                else:
                    dispatch.dispatch_due_messages(
                        provider=http_provider, time_budget=1, batch_size=chaos.randint(5, 100)
                    )
                time.sleep(0.01)
        except Exception as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)
        finally:
            connection.close()

    def sweeper():
        try:
            while not stop.is_set():
                dispatch.reap_expired_leases()
                time.sleep(0.2)
        finally:
            connection.close()

    threads = [threading.Thread(target=dispatcher, args=(seed,)) for seed in range(3)]
    threads.append(threading.Thread(target=sweeper))
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + (60 if clients < 1000 else 600)
    while time.monotonic() < deadline:
        if not run.messages.exclude(status=MessageStatus.SENT).exists():
            break
        time.sleep(0.2)
    stop.set()
    for thread in threads:
        thread.join(30)

    assert not errors, errors
    statuses = set(run.messages.values_list("status", flat=True))
    assert statuses == {MessageStatus.SENT}, run.messages.exclude(status="sent").count()
    # No message the gateway accepted was ever sent to it again (nothing here hangs up after
    # accepting, so a repeat could only be the service sending twice).
    assert gateway.state.duplicates == 0
    assert set(gateway.delivered_ids) == set(run.messages.values_list("id", flat=True))
    assert max(run.messages.values_list("sent_at", flat=True)) < campaign.end_datetime
    assert gateway.state.requests > clients  # faults really happened and were retried
    run.refresh_from_db()
    assert timezone.now() - run.created_at < timedelta(minutes=15)

"""A real dispatcher process killed with SIGKILL mid-batch: every message still goes out once."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import connection
from django.utils import timezone

from api.models import CampaignRun, CampaignStatus, MessageStatus
from api.services import dispatch
from api.services.planning import plan_run
from api.tests.factories import CampaignFactory, ClientFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
ROOT = Path(__file__).resolve().parents[2]

DISPATCHER = """
import django
django.setup()
from api.services.dispatch import dispatch_due_messages
dispatch_due_messages(time_budget=60, batch_size=20)
"""


def start_dispatcher(gateway_url: str) -> subprocess.Popen:
    db = connection.settings_dict
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "Work.settings",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "SMS_GATEWAY_URL": gateway_url,
        "SMS_GATEWAY_TOKEN": "test-token",
        "SMS_CONCURRENCY": "5",
    }
    return subprocess.Popen(  # noqa: S603 - our own interpreter and code
        [sys.executable, "-c", DISPATCHER], cwd=ROOT, env=env
    )


def test_messages_of_a_killed_worker_are_delivered_exactly_once(gateway, http_provider):
    ClientFactory.create_batch(60, tag="crash")
    campaign = CampaignFactory(tag="crash", status=CampaignStatus.SCHEDULED)
    run = CampaignRun.objects.create(campaign=campaign, number=1)
    plan_run(run_id=run.id)
    gateway.state.config.latency_ms = 300  # slow enough to be caught mid-batch

    worker = start_dispatcher(gateway.url)
    deadline = time.monotonic() + 20
    while gateway.state.requests < 10 and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait(10)

    stranded = run.messages.filter(status=MessageStatus.SENDING)
    assert stranded.exists(), "the worker should have died holding a claimed batch"
    delivered_before = set(gateway.delivered_ids)
    assert delivered_before  # some messages reached the gateway before the kill

    # Its lease runs out; beat's sweep hands the batch back and another worker sends it.
    stranded.update(lease_expires_at=timezone.now())
    gateway.state.config.latency_ms = 0
    dispatch.reap_expired_leases()
    dispatch.dispatch_due_messages(provider=http_provider, time_budget=20)

    assert set(run.messages.values_list("status", flat=True)) == {MessageStatus.SENT}
    delivered = gateway.delivered_ids
    assert len(delivered) == 60
    assert len(set(delivered)) == 60  # the gateway delivered each message once
    assert set(run.messages.values_list("id", flat=True)) == set(delivered)

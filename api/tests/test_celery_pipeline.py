"""The whole pipeline on real parts: API -> Redis broker -> Celery worker -> Postgres -> HTTP."""

import threading
import time
from contextlib import contextmanager
from datetime import timedelta

import pytest
from celery.contrib.testing.worker import start_worker
from celery.signals import task_postrun
from django.utils import timezone
from kombu import pools as kombu_pools

from api.models import Campaign, CampaignStatus, Message, MessageStatus
from api.tests.conftest import TEST_REDIS_URL
from api.tests.factories import ClientFactory
from Work.celery import app as celery_app

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True)]


def reset_broker_connections():
    """Drop pooled broker connections so the next publish uses the broker now configured."""
    if celery_app._pool is not None:
        celery_app._pool.force_close_all()
        celery_app._pool = None
    celery_app.amqp._producer_pool = None
    kombu_pools.reset()


@contextmanager
def redis_broker_conf(settings):
    """The Celery app on the test Redis, not eager; afterwards its settings follow Django's
    again. (Writing the old values back would pin them: `task_always_eager=False` written into
    the app's own changes outlived the test, and a later eager test's tasks went to a broker.)"""
    settings.CELERY_TASK_ALWAYS_EAGER = False
    keys = ("broker_url", "task_always_eager", "broker_transport_options")
    before = {key: celery_app.conf.changes[key] for key in keys if key in celery_app.conf.changes}
    celery_app.conf.update(
        broker_url=TEST_REDIS_URL, task_always_eager=False, broker_transport_options={}
    )
    reset_broker_connections()
    with celery_app.connection_for_write() as conn:
        conn.default_channel.client.flushdb()
    try:
        yield celery_app
    finally:
        for key in keys:
            celery_app.conf.changes.pop(key, None)
        celery_app.conf.update(before)
        reset_broker_connections()


@pytest.fixture
def celery_worker(settings):
    """A real Celery worker (threads) consuming from Redis, in this process."""
    with (
        redis_broker_conf(settings),
        start_worker(
            celery_app, pool="threads", concurrency=2, perform_ping_check=False, loglevel="WARNING"
        ) as worker,
    ):
        yield worker


def wait_for(predicate, seconds=30.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def run_on_worker(task_name: str, seconds: float = 30.0):
    """Send a task to the worker and return its result, seen through task_postrun (the tasks
    keep no results; the worker's threads run in this process)."""
    done, results = threading.Event(), []

    def finished(sender=None, retval=None, **_):
        if sender is not None and sender.name == task_name:
            results.append(retval)
            done.set()

    task_postrun.connect(finished, weak=False)
    try:
        celery_app.send_task(task_name)
        assert done.wait(seconds), f"{task_name} did not run on the worker"
    finally:
        task_postrun.disconnect(finished)
    return results[0]


def test_a_campaign_created_over_the_api_is_delivered_by_a_real_worker(
    api, gateway, http_provider, celery_worker
):
    ClientFactory.create_batch(30, tag="pipeline")
    ClientFactory.create_batch(5, tag="other")

    response = api.post(
        "/api/campaigns/",
        {
            "text_message": "Real pipeline",
            "tag": "pipeline",
            "start_datetime": (timezone.now() - timedelta(minutes=1)).isoformat(),
            "end_datetime": (timezone.now() + timedelta(hours=1)).isoformat(),
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    campaign_id = response.json()["id"]

    assert wait_for(lambda: len(gateway.state.deliveries) == 30), gateway.state.requests
    assert wait_for(lambda: Campaign.objects.get(pk=campaign_id).status == CampaignStatus.FINISHED)
    messages = Message.objects.filter(run__campaign_id=campaign_id)
    assert set(messages.values_list("status", flat=True)) == {MessageStatus.SENT}
    assert sorted(gateway.delivered_ids) == sorted(messages.values_list("id", flat=True))
    assert gateway.state.duplicates == 0
    stats = api.get(f"/api/campaigns/{campaign_id}/stats/").json()
    assert (stats["total_messages"], stats["sent_messages"]) == (30, 30)


def test_sweep_task_on_the_worker_plans_a_campaign_whose_start_arrives(
    api, gateway, http_provider, celery_worker
):
    ClientFactory.create_batch(3, tag="later")
    response = api.post(
        "/api/campaigns/",
        {
            "text_message": "Starts later",
            "tag": "later",
            "start_datetime": (timezone.now() + timedelta(days=1)).isoformat(),
            "end_datetime": (timezone.now() + timedelta(days=2)).isoformat(),
        },
        format="json",
    )
    campaign_id = response.json()["id"]
    # The worker has had its chance to act: a sweep it ran after the create planned nothing.
    summary = run_on_worker("api.tasks.sweep")
    assert summary["planning"] == 0, summary
    assert Campaign.objects.get(pk=campaign_id).status == CampaignStatus.SCHEDULED
    assert not Message.objects.filter(run__campaign_id=campaign_id).exists()
    assert gateway.state.requests == 0

    # The start arrives; beat's next sweep plans the run and wakes a dispatcher.
    Campaign.objects.filter(pk=campaign_id).update(
        start_datetime=timezone.now() - timedelta(seconds=1)
    )
    celery_app.send_task("api.tasks.sweep")

    assert wait_for(lambda: len(gateway.state.deliveries) == 3)
    assert wait_for(lambda: Campaign.objects.get(pk=campaign_id).status == CampaignStatus.FINISHED)


def test_a_retry_goes_out_when_due_without_waiting_for_the_next_sweep(
    api, gateway, http_provider, celery_worker, settings
):
    # No beat runs here: only the dispatcher's own wake-up can send the retries.
    settings.SMS_RETRY_BASE_SECONDS = 1
    settings.DISPATCH_INTERVAL_SECONDS = 600
    gateway.script(503, count=3)
    ClientFactory.create_batch(3, tag="retry")

    response = api.post(
        "/api/campaigns/",
        {
            "text_message": "Second time lucky",
            "tag": "retry",
            "start_datetime": (timezone.now() - timedelta(minutes=1)).isoformat(),
            "end_datetime": (timezone.now() + timedelta(hours=1)).isoformat(),
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    campaign_id = response.json()["id"]

    assert wait_for(lambda: len(gateway.state.deliveries) == 3, seconds=15), gateway.state.requests
    messages = Message.objects.filter(run__campaign_id=campaign_id)
    assert sorted(messages.values_list("attempts", flat=True)) == [2, 2, 2]
    assert gateway.state.duplicates == 0

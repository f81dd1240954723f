"""The dispatch stream under real faults: worker processes killed with SIGKILL, a gateway that
fails and stalls, the database connection cut mid-dispatch.

What is counted is what a user would see: messages the gateway had already accepted and then
received again (`gateway.state.duplicates`, a double SMS at a gateway that does not deduplicate),
how long a dead worker's messages wait, and every message's final status.
"""

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connection
from django.db.models import Count
from django.utils import timezone

from api.models import CampaignRun, CampaignStatus, Message, MessageStatus
from api.services import dispatch
from api.services.planning import plan_run
from api.tests.conftest import TEST_REDIS_URL, redis_url_if_reachable
from api.tests.factories import CampaignFactory, ClientFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
ROOT = Path(__file__).resolve().parents[2]
CONCURRENCY = 10
FLUSH_RESULTS = 10

# A worker: dispatch, and again when something falls due (a retry, a lease running out),
# until nothing is pending or leased any more.
DISPATCHER = """
import time
import django
django.setup()
from django.db import OperationalError, connection
from api.services.dispatch import dispatch_due_messages, next_due_at
while True:
    dispatch_due_messages(time_budget=120)
    try:
        if next_due_at() is None:
            break
    except OperationalError:  # the connection was cut after the stream's last write
        connection.close()
    time.sleep(0.05)
"""


def worker_env(gateway_url: str, **extra) -> dict:
    db = connection.settings_dict
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "Work.settings",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "SMS_GATEWAY_URL": gateway_url,
        "SMS_GATEWAY_TOKEN": "test-token",
        "SMS_CONCURRENCY": str(CONCURRENCY),
        "DISPATCH_FLUSH_RESULTS": str(FLUSH_RESULTS),
        "SMS_RETRY_BASE_SECONDS": "0.05",
        "SMS_RETRY_MAX_SECONDS": "0.2",
        "SMS_MAX_ATTEMPTS": "100",
        "LOG_LEVEL": "WARNING",
        **extra,
    }


def start_dispatcher(gateway_url: str, **extra) -> subprocess.Popen:
    return subprocess.Popen(  # noqa: S603 - our own interpreter and code
        [sys.executable, "-c", DISPATCHER], cwd=ROOT, env=worker_env(gateway_url, **extra)
    )


def planned_run(clients: int, tag: str) -> CampaignRun:
    ClientFactory.create_batch(clients, tag=tag)
    campaign = CampaignFactory(tag=tag, status=CampaignStatus.SCHEDULED)
    run = CampaignRun.objects.create(campaign=campaign, number=1)
    plan_run(run_id=run.id)
    return run


def wait_for(predicate, seconds: float, step: float = 0.02) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return False


def finish_in_this_process(run, http_provider, settings):
    """What another worker does later: the dead leases run out, the rest is sent."""
    settings.SMS_RETRY_BASE_SECONDS = 0.05
    settings.SMS_RETRY_MAX_SECONDS = 0.2
    settings.SMS_MAX_ATTEMPTS = 100
    deadline = time.monotonic() + 60
    while run.messages.exclude(status=MessageStatus.SENT).exists():
        assert time.monotonic() < deadline, list(
            run.messages.values("status").annotate(count=Count("id"))
        )
        run.messages.filter(status=MessageStatus.SENDING).update(
            lease_expires_at=timezone.now() - timedelta(seconds=1)
        )
        dispatch.reap_expired_leases()
        Message.objects.filter(status=MessageStatus.PENDING).update(next_attempt_at=timezone.now())
        dispatch.dispatch_due_messages(provider=http_provider, time_budget=10)


def assert_each_delivered_once(run, gateway):
    assert set(run.messages.values_list("status", flat=True)) == {MessageStatus.SENT}
    assert sorted(gateway.state.accepted_ids) == sorted(run.messages.values_list("id", flat=True))


def test_a_crash_resends_at_most_what_was_in_flight(gateway, http_provider, settings):
    """Three workers SIGKILLed in turn mid-stream, through a gateway failing 45 % of the time:
    each kill can re-send only its requests on the wire and one unwritten group of results
    (the batch design re-sent every accepted message of the batch being sent)."""
    run = planned_run(600, "crash")
    gateway.state.config.latency_ms = 30
    gateway.state.config.error_rate = 0.45

    for kill in range(3):
        accepted_before = len(gateway.state.accepted_ids)
        worker = start_dispatcher(gateway.url)
        target = accepted_before + 60
        assert wait_for(lambda target=target: len(gateway.state.accepted_ids) >= target, 30)
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
        assert run.messages.filter(status=MessageStatus.SENDING).exists(), kill

    gateway.state.config.error_rate = 0
    finish_in_this_process(run, http_provider, settings)

    assert_each_delivered_once(run, gateway)
    bound = 3 * (CONCURRENCY + FLUSH_RESULTS)
    print(f"re-sent after 3 kills: {gateway.state.duplicates} accepted ids (bound {bound})")
    assert gateway.state.duplicates <= bound, gateway.state.duplicates


def test_one_slow_request_holds_up_no_other_outcome(gateway, http_provider, settings):
    run = planned_run(80, "slow")
    slow_id = run.messages.order_by("id").values_list("id", flat=True)[3]
    # The slow request outlasts the wait below by a wide margin: on a loaded box the child's
    # start-up alone took more than 4 s, so a tight pair (8 s slow, 4 s wait) failed there.
    gateway.state.config.slow_ids = {slow_id: 20}
    gateway.state.config.latency_ms = 5
    worker = start_dispatcher(gateway.url, SMS_READ_TIMEOUT="30")
    try:
        # Every other message is recorded sent while the slow one is still on the wire.
        others = run.messages.exclude(pk=slow_id)
        assert wait_for(lambda: not others.exclude(status=MessageStatus.SENT).exists(), 12)
        assert run.messages.get(pk=slow_id).status == MessageStatus.SENDING
    finally:
        worker.send_signal(signal.SIGKILL)  # dies with only the slow request open
        worker.wait(10)

    gateway.state.config.slow_ids = {}
    finish_in_this_process(run, http_provider, settings)

    assert_each_delivered_once(run, gateway)
    requests = {}
    for _, message_id, _ in gateway.state.request_log:
        requests[message_id] = requests.get(message_id, 0) + 1
    assert {n for i, n in requests.items() if i != slow_id} == {1}  # nothing else re-sent


def test_a_database_outage_mid_dispatch_resends_nothing(gateway, http_provider, settings):
    """The worker's database connections are killed over and over for two seconds while
    requests are on the wire: the gateway's answers are kept and written when it is back."""
    run = planned_run(400, "outage")
    gateway.state.config.latency_ms = 20
    worker = start_dispatcher(gateway.url, PGAPPNAME="tds-outage-test")
    try:
        assert wait_for(lambda: len(gateway.state.accepted_ids) >= 50, 30)
        killed = 0
        outage_ends = time.monotonic() + 2
        with connection.cursor() as cursor:
            while time.monotonic() < outage_ends:
                cursor.execute(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                    " WHERE application_name = 'tds-outage-test'"
                )
                killed += cursor.fetchone()[0]
                time.sleep(0.02)
        assert killed >= 2  # the outage hit the worker more than once
        assert worker.wait(60) == 0  # it did not die; it finished its work
    finally:
        if worker.poll() is None:
            worker.kill()

    finish_in_this_process(run, http_provider, settings)

    assert_each_delivered_once(run, gateway)
    assert gateway.state.duplicates == 0


# --- a real Celery worker: the pool process running the dispatch is killed ---------------------
@pytest.fixture
def redis_broker(settings):
    from api.tests.test_celery_pipeline import redis_broker_conf

    if not redis_url_if_reachable():
        pytest.skip(f"needs Redis at {TEST_REDIS_URL}")
    with redis_broker_conf(settings) as celery_app:
        yield celery_app


def pool_children(pid: int) -> list[int]:
    children = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(child) for child in children.read_text().split()] if children.exists() else []


@pytest.mark.redis
def test_a_killed_pool_process_is_recovered_within_a_minute(gateway, redis_broker, http_provider):
    """A real Celery worker (prefork, default lease); both pool processes SIGKILLed while the
    dispatch runs; no beat. The requeued task and the lease wake-up bring every message out."""
    run = planned_run(200, "pool")
    gateway.state.config.latency_ms = 100
    worker = subprocess.Popen(  # noqa: S603 - our own interpreter and code
        [sys.executable, "-m", "celery", "-A", "Work", "worker", "-P", "prefork", "-c", "2"]
        + ["--loglevel", "WARNING", "--without-gossip", "--without-mingle"],
        cwd=ROOT,
        env=worker_env(gateway.url, CELERY_BROKER_URL=TEST_REDIS_URL, SMS_CONCURRENCY="5"),
    )
    try:
        assert wait_for(lambda: len(pool_children(worker.pid)) == 2, 30)
        redis_broker.send_task("api.tasks.dispatch")
        assert wait_for(lambda: len(gateway.state.accepted_ids) >= 40, 30)
        killed = pool_children(worker.pid)
        for child in killed:
            os.kill(child, signal.SIGKILL)
        killed_at = time.time()
        # Both are gone (reaped by the master): nothing they held can change any more.
        assert wait_for(lambda: not any(Path(f"/proc/{c}").exists() for c in killed), 10)
        stranded = set(
            run.messages.filter(status=MessageStatus.SENDING).values_list("id", flat=True)
        )
        assert stranded  # the kill left claimed messages behind

        assert wait_for(
            lambda: not run.messages.exclude(status=MessageStatus.SENT).exists(), 75, step=0.5
        ), dict(run.messages.values_list("id", "status"))
    finally:
        worker.terminate()
        try:
            worker.wait(20)
        except subprocess.TimeoutExpired:
            worker.kill()

    last_request = {message_id: at for at, message_id, _ in gateway.state.request_log}
    recovery = max(last_request[i] for i in stranded) - killed_at
    print(f"{len(stranded)} stranded, all sent {recovery:.1f} s after the kill")
    assert recovery <= 60, recovery
    assert_each_delivered_once(run, gateway)
    assert gateway.state.duplicates <= 5 + FLUSH_RESULTS

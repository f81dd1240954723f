"""The dispatcher asks to be woken when the next message falls due before the next sweep."""

from datetime import timedelta

import pytest
from django.utils import timezone

from api import tasks
from api.models import Message
from api.services import dispatch
from api.tests.factories import CampaignRunFactory, ClientFactory, MessageFactory


@pytest.fixture
def scheduled(settings, monkeypatch):
    """Countdowns passed to dispatch_messages.apply_async, as if a broker were there."""
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.DISPATCH_INTERVAL_SECONDS = 60
    monkeypatch.setattr(dispatch.wakeups, "wake_at", None)  # a fresh worker process
    countdowns: list[float] = []
    monkeypatch.setattr(
        tasks.dispatch_messages,
        "apply_async",
        lambda countdown=None, **kwargs: countdowns.append(countdown),
    )
    return countdowns


def pending_due_in(seconds: float, **run) -> Message:
    at = timezone.now() + timedelta(seconds=seconds)
    return MessageFactory(
        run=CampaignRunFactory(**run),
        planned_send_at=at,
        next_attempt_at=at,
        client=ClientFactory(),
    )


@pytest.mark.django_db
def test_a_message_due_before_the_next_sweep_gets_a_wake_up_at_its_time(scheduled):
    pending_due_in(5)

    delay = tasks.wake_dispatcher_when_due()

    assert scheduled == [delay]
    assert 4 < delay <= 5


@pytest.mark.django_db
def test_one_wake_up_per_process_is_enough(scheduled):
    pending_due_in(5)
    pending_due_in(8)

    tasks.wake_dispatcher_when_due()
    tasks.wake_dispatcher_when_due()

    assert len(scheduled) == 1


@pytest.mark.django_db
def test_an_earlier_message_gets_its_own_earlier_wake_up(scheduled):
    pending_due_in(20)
    tasks.wake_dispatcher_when_due()
    pending_due_in(3)

    tasks.wake_dispatcher_when_due()

    assert len(scheduled) == 2 and scheduled[1] < scheduled[0]


@pytest.mark.django_db
@pytest.mark.parametrize("seconds", [120, None])
def test_nothing_to_wake_for_before_the_sweep(scheduled, seconds):
    if seconds is not None:
        pending_due_in(seconds)  # the sweep in at most 60 s will see it

    assert tasks.wake_dispatcher_when_due() is None
    assert scheduled == []


@pytest.mark.django_db
def test_a_paused_runs_messages_wake_nobody(scheduled):
    pending_due_in(5, status="paused")

    assert tasks.wake_dispatcher_when_due() is None


@pytest.mark.django_db
def test_something_due_now_is_rechecked_after_a_second_not_in_a_busy_loop(scheduled):
    pending_due_in(-5)

    assert tasks.wake_dispatcher_when_due() == dispatch.MIN_WAKEUP_SECONDS

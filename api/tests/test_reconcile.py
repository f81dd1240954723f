"""Messages follow their run's status in chunks, outside the operator's request."""

import pytest

from api.models import CampaignRun, MessageStatus, RunStatus
from api.services.reconcile import reconcile_run_messages
from api.tests.factories import CampaignRunFactory, ClientFactory, MessageFactory


@pytest.fixture
def run_with_messages():
    run = CampaignRunFactory()
    clients = ClientFactory.create_batch(25)
    for number, client in enumerate(clients):
        status = MessageStatus.SENT if number % 5 == 0 else MessageStatus.PENDING
        MessageFactory(run=run, client=client, status=status)
    return run


def counts(run):
    return {s: run.messages.filter(status=s).count() for s in ("pending", "paused", "sent")}


@pytest.mark.django_db
def test_pause_resume_and_cancel_move_only_unsent_messages_in_chunks(run_with_messages):
    run = run_with_messages
    CampaignRun.objects.filter(pk=run.pk).update(status=RunStatus.PAUSED)
    assert reconcile_run_messages(run_id=run.id, chunk_size=4) == 20
    assert counts(run) == {"pending": 0, "paused": 20, "sent": 5}
    assert reconcile_run_messages(run_id=run.id, chunk_size=4) == 0  # a repeat moves nothing

    CampaignRun.objects.filter(pk=run.pk).update(status=RunStatus.RUNNING)
    assert reconcile_run_messages(run_id=run.id, chunk_size=7) == 20
    assert counts(run) == {"pending": 20, "paused": 0, "sent": 5}

    CampaignRun.objects.filter(pk=run.pk).update(status=RunStatus.CANCELLED)
    assert reconcile_run_messages(run_id=run.id, chunk_size=3) == 20
    assert run.messages.filter(status=MessageStatus.CANCELLED).count() == 20
    assert run.messages.filter(status=MessageStatus.SENT).count() == 5


@pytest.mark.django_db
def test_a_finished_run_is_left_alone(run_with_messages):
    CampaignRun.objects.filter(pk=run_with_messages.pk).update(status=RunStatus.FINISHED)
    assert reconcile_run_messages(run_id=run_with_messages.id) == 0

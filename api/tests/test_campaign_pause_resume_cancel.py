"""Pause, resume and cancel: unsent messages held, released or cancelled; bad moves are 409."""

from datetime import timedelta

import pytest
from django.utils import timezone

from api import tasks
from api.models import Campaign, CampaignRun, CampaignStatus, Message
from api.providers import locmem
from api.tests.campaign_helpers import stats
from api.tests.factories import CampaignFactory, ClientFactory

pytest_plugins = ["api.tests.campaign_fixtures"]


def test_pause_holds_pending_messages_and_resume_sends_them(
    api, waiting_campaign, fast_forward, django_capture_on_commit_callbacks
):
    campaign_id, clients = waiting_campaign

    with django_capture_on_commit_callbacks(execute=True):  # the worker applies the pause
        paused = api.post(f"/api/campaigns/{campaign_id}/pause/")

    assert paused.status_code == 200, paused.content
    assert paused.json()["status"] == "paused"
    assert paused.json()["id"] == campaign_id
    listed = api.get("/api/messages/", {"campaign": campaign_id, "status": "paused"}).json()
    assert len(listed["results"]) == 3
    fast_forward()
    assert locmem.outbox == []
    held = stats(api, campaign_id)
    assert (held["status"], held["pending_messages"], held["by_status"]["paused"]) == (
        "paused",
        3,
        3,
    )

    with django_capture_on_commit_callbacks(execute=True):
        resumed = api.post(f"/api/campaigns/{campaign_id}/resume")

    assert resumed.status_code == 200, resumed.content
    assert resumed.json()["status"] == "running"
    assert sorted(sms.phone for sms in locmem.outbox) == sorted(c.phone_number for c in clients)
    done = stats(api, campaign_id)
    assert (done["sent_messages"], done["pending_messages"], done["status"]) == (
        3,
        0,
        "finished",
    )


def test_cancel_cancels_unsent_messages_and_nothing_is_sent(api, waiting_campaign, fast_forward):
    campaign_id, _ = waiting_campaign

    response = api.post(f"/api/campaigns/{campaign_id}/cancel/")

    assert response.status_code == 200, response.content
    assert response.json()["status"] == "cancelled"
    assert Campaign.objects.get(pk=campaign_id).status == CampaignStatus.CANCELLED
    fast_forward()
    assert locmem.outbox == []
    result = stats(api, campaign_id)
    assert (result["cancelled_messages"], result["pending_messages"], result["status"]) == (
        3,
        0,
        "cancelled",
    )


def test_cancel_a_paused_campaign_cancels_its_paused_messages(
    api, waiting_campaign, django_capture_on_commit_callbacks
):
    campaign_id, _ = waiting_campaign
    with django_capture_on_commit_callbacks(execute=True):
        api.post(f"/api/campaigns/{campaign_id}/pause/")
    assert stats(api, campaign_id)["by_status"]["paused"] == 3

    with django_capture_on_commit_callbacks(execute=True):  # the worker applies the cancel
        response = api.post(f"/api/campaigns/{campaign_id}/cancel/")

    assert response.status_code == 200
    assert stats(api, campaign_id)["cancelled_messages"] == 3


def test_a_pause_is_honoured_before_the_worker_moves_the_messages(api, waiting_campaign):
    campaign_id, _ = waiting_campaign
    api.post(f"/api/campaigns/{campaign_id}/pause/")  # the reconcile task has not run yet
    Message.objects.filter(run__campaign_id=campaign_id).update(next_attempt_at=timezone.now())

    from api.services.dispatch import dispatch_due_messages

    dispatch_due_messages(time_budget=5)

    assert locmem.outbox == []  # a paused run's messages are not even claimed
    assert stats(api, campaign_id)["by_status"]["pending"] == 3
    tasks.sweep()  # sees a paused run with pending messages and has them reconciled
    assert stats(api, campaign_id)["by_status"]["paused"] == 3
    assert locmem.outbox == []


def test_pause_and_resume_a_campaign_that_waits_for_its_start(api, fast_forward):
    ClientFactory(tag="vip")
    campaign = CampaignFactory(
        tag="vip",
        start_datetime=timezone.now() + timedelta(hours=2),
        end_datetime=timezone.now() + timedelta(days=1),
    )
    api.post(f"/api/campaigns/{campaign.pk}/start/")

    paused = api.post(f"/api/campaigns/{campaign.pk}/pause/")
    fast_forward()
    assert locmem.outbox == []
    resumed = api.post(f"/api/campaigns/{campaign.pk}/resume/")
    fast_forward()

    assert paused.status_code == 200 and paused.json()["status"] == "paused"
    assert resumed.status_code == 200 and resumed.json()["status"] == "scheduled"
    assert len(locmem.outbox) == 1


def test_cancel_a_draft_is_allowed(api):
    campaign = CampaignFactory()

    response = api.post(f"/api/campaigns/{campaign.pk}/cancel/")

    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"


@pytest.mark.parametrize(
    ("status", "action"),
    [
        (CampaignStatus.DRAFT, "pause"),
        (CampaignStatus.DRAFT, "resume"),
        (CampaignStatus.SCHEDULED, "resume"),
        (CampaignStatus.RUNNING, "resume"),
        (CampaignStatus.PAUSED, "pause"),
        (CampaignStatus.FINISHED, "pause"),
        (CampaignStatus.FINISHED, "resume"),
        (CampaignStatus.FINISHED, "cancel"),
        (CampaignStatus.CANCELLED, "pause"),
        (CampaignStatus.CANCELLED, "resume"),
        (CampaignStatus.CANCELLED, "cancel"),
        (CampaignStatus.RUNNING, "start"),
        (CampaignStatus.PAUSED, "start"),
        (CampaignStatus.FINISHED, "start"),
        (CampaignStatus.CANCELLED, "start"),
    ],
)
def test_disallowed_transition_is_409_and_changes_nothing(api, status, action):
    ClientFactory(tag="vip")
    campaign = CampaignFactory(status=status)

    response = api.post(f"/api/campaigns/{campaign.pk}/{action}/")

    assert response.status_code == 409, response.content
    assert "status" in response.json()
    campaign.refresh_from_db()
    assert campaign.status == status
    assert not CampaignRun.objects.exists()


def test_cancel_twice_is_409(api, waiting_campaign):
    campaign_id, _ = waiting_campaign
    assert api.post(f"/api/campaigns/{campaign_id}/cancel/").status_code == 200

    response = api.post(f"/api/campaigns/{campaign_id}/cancel/")

    assert response.status_code == 409


def test_resume_a_paused_campaign_that_has_ended_is_400(api):
    campaign = CampaignFactory(
        status=CampaignStatus.PAUSED,
        start_datetime=timezone.now() - timedelta(days=2),
        end_datetime=timezone.now() - timedelta(days=1),
    )

    response = api.post(f"/api/campaigns/{campaign.pk}/resume/")

    assert response.status_code == 400
    assert "end_datetime" in response.json()
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.PAUSED

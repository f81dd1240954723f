"""Starting a campaign over HTTP: a new run, a future start, force_resend, refusals."""

from datetime import timedelta

import pytest
from django.utils import timezone

from api.models import CampaignRun, Message, MessageStatus, RunStatus
from api.providers import locmem
from api.tests.campaign_helpers import stats
from api.tests.factories import CampaignFactory, ClientFactory

pytest_plugins = ["api.tests.campaign_fixtures"]


@pytest.mark.parametrize("suffix", ["start/", "start"])
def test_start_draft_is_202_with_the_run_id(api, django_capture_on_commit_callbacks, suffix):
    ClientFactory.create_batch(2, tag="vip")
    campaign = CampaignFactory(tag="vip")

    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(f"/api/campaigns/{campaign.pk}/{suffix}")

    assert response.status_code == 202, response.content
    body = response.json()
    run = CampaignRun.objects.get(campaign=campaign)
    assert body == {
        "campaign_id": campaign.pk,
        "run_id": run.pk,
        "run_number": 1,
        "status": "scheduled",
        "force_resend": False,
        "only": None,
    }
    assert stats(api, campaign.pk)["sent_messages"] == 2


def test_start_of_a_future_campaign_waits_for_its_start(api, fast_forward):
    ClientFactory.create_batch(2, tag="vip")
    campaign = CampaignFactory(
        tag="vip",
        start_datetime=timezone.now() + timedelta(hours=2),
        end_datetime=timezone.now() + timedelta(days=1),
    )

    response = api.post(f"/api/campaigns/{campaign.pk}/start/", format="json")

    assert response.status_code == 202
    assert stats(api, campaign.pk)["total_messages"] == 0
    assert stats(api, campaign.pk)["status"] == "scheduled"
    fast_forward()
    assert stats(api, campaign.pk)["sent_messages"] == 2
    assert stats(api, campaign.pk)["status"] == "finished"


def test_start_twice_without_force_is_409(api, django_capture_on_commit_callbacks):
    ClientFactory(tag="vip")
    campaign = CampaignFactory(tag="vip")
    with django_capture_on_commit_callbacks(execute=True):
        assert api.post(f"/api/campaigns/{campaign.pk}/start/").status_code == 202

    response = api.post(f"/api/campaigns/{campaign.pk}/start/")
    explicit_false = api.post(f"/api/campaigns/{campaign.pk}/start/?force_resend=false")

    assert response.status_code == 409
    assert "status" in response.json()
    assert explicit_false.status_code == 409
    assert CampaignRun.objects.filter(campaign=campaign).count() == 1
    assert len(locmem.outbox) == 1


@pytest.mark.parametrize(
    ("path", "data"),
    [
        ("start/", {"force_resend": True}),
        ("start/?force_resend=true", None),
        ("start?force_resend=1", None),
    ],
)
def test_force_resend_opens_a_new_run_and_no_client_gets_both(
    api, waiting_campaign, fast_forward, django_capture_on_commit_callbacks, path, data
):
    campaign_id, clients = waiting_campaign
    first_run = CampaignRun.objects.get(campaign_id=campaign_id)

    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(f"/api/campaigns/{campaign_id}/{path}", data, format="json")

    assert response.status_code == 202, response.content
    body = response.json()
    assert body["run_id"] != first_run.pk
    assert body["run_number"] == 2
    assert body["force_resend"] is True
    first_run.refresh_from_db()
    assert first_run.status == RunStatus.CANCELLED
    assert set(first_run.messages.values_list("status", flat=True)) == {MessageStatus.CANCELLED}

    fast_forward()

    assert sorted(sms.phone for sms in locmem.outbox) == sorted(c.phone_number for c in clients)
    sent = Message.objects.filter(status=MessageStatus.SENT)
    assert set(sent.values_list("run_id", flat=True)) == {body["run_id"]}
    assert sent.count() == len(clients)
    result = stats(api, campaign_id)
    assert (result["sent_messages"], result["cancelled_messages"]) == (3, 3)
    assert result["latest_run"]["id"] == body["run_id"]


def test_force_resend_after_everything_was_sent_sends_again(
    api, create_started, django_capture_on_commit_callbacks
):
    ClientFactory.create_batch(2, tag="vip")
    campaign_id = create_started()
    assert stats(api, campaign_id)["status"] == "finished"

    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(
            f"/api/campaigns/{campaign_id}/start/", {"force_resend": True}, format="json"
        )

    assert response.status_code == 202
    assert stats(api, campaign_id)["sent_messages"] == 4
    assert len(locmem.outbox) == 4


@pytest.mark.parametrize(
    ("path", "data"),
    [("start/", {"force_resend": "maybe"}), ("start/?force_resend=maybe", None)],
)
def test_start_with_an_invalid_force_resend_is_400_naming_it(api, path, data):
    ClientFactory(tag="vip")
    campaign = CampaignFactory(tag="vip")

    response = api.post(f"/api/campaigns/{campaign.pk}/{path}", data, format="json")

    assert response.status_code == 400
    assert "force_resend" in response.json()
    assert not CampaignRun.objects.exists()


def test_start_with_malformed_json_is_400_json_and_creates_no_run(api):
    ClientFactory(tag="vip")
    campaign = CampaignFactory(tag="vip")

    response = api.post(
        f"/api/campaigns/{campaign.pk}/start/",
        data='{"force_resend": tru',
        content_type="application/json",
    )

    assert response.status_code == 400
    assert response.json()["detail"]
    assert not CampaignRun.objects.exists()


@pytest.mark.parametrize("force", [False, True])
def test_start_of_an_ended_campaign_is_400(api, force):
    ClientFactory(tag="vip")
    campaign = CampaignFactory(
        tag="vip",
        start_datetime=timezone.now() - timedelta(days=2),
        end_datetime=timezone.now() - timedelta(days=1),
    )

    response = api.post(
        f"/api/campaigns/{campaign.pk}/start/", {"force_resend": force}, format="json"
    )

    assert response.status_code == 400
    assert "end_datetime" in response.json()
    assert not CampaignRun.objects.exists()


@pytest.mark.parametrize("body", ["[null, null]", "-12", '"yes"'])
def test_start_with_a_body_that_is_not_an_object_is_a_400(api, body):
    campaign = CampaignFactory(tag="vip")

    response = api.generic(
        "POST", f"/api/campaigns/{campaign.pk}/start/", body, content_type="application/json"
    )

    assert response.status_code == 400
    assert campaign.runs.count() == 0

"""Resend to failed: POST /api/campaigns/<id>/start/ with {"only": "failed"}."""

import pytest

from api.models import CampaignRun, CampaignStatus, Message, MessageStatus, RunStatus
from api.providers import locmem
from api.services.opt_out import set_opted_out
from api.tests.factories import (
    CampaignFactory,
    CampaignRunFactory,
    ClientFactory,
    MessageFactory,
)


def ended_run(statuses: dict[str, str]):
    """A finished campaign whose one run ended with a message per phone in these statuses."""
    campaign = CampaignFactory(tag="vip", status=CampaignStatus.FINISHED)
    run = CampaignRunFactory(campaign=campaign, number=1, status=RunStatus.FINISHED)
    for phone, status in statuses.items():
        MessageFactory(run=run, client=ClientFactory(tag="vip", phone_number=phone), status=status)
    return campaign, run


def start(api, campaign_id, body, capture):
    with capture(execute=True):
        return api.post(f"/api/campaigns/{campaign_id}/start/", body, format="json")


def test_only_failed_opens_a_run_for_the_failed_and_expired_clients(
    api, django_capture_on_commit_callbacks
):
    campaign, first = ended_run(
        {
            "79000000001": MessageStatus.SENT,
            "79000000002": MessageStatus.FAILED,
            "79000000003": MessageStatus.EXPIRED,
            "79000000004": MessageStatus.CANCELLED,
        }
    )
    ClientFactory(tag="vip", phone_number="79000000005")  # joined after the run: not re-sent

    response = start(api, campaign.pk, {"only": "failed"}, django_capture_on_commit_callbacks)

    assert response.status_code == 202, response.content
    body = response.json()
    assert (body["run_number"], body["only"], body["force_resend"]) == (2, "failed", False)
    run = CampaignRun.objects.get(pk=body["run_id"])
    assert run.resend_of_id == first.pk
    assert sorted(sms.phone for sms in locmem.outbox) == ["79000000002", "79000000003"]
    assert Message.objects.filter(run=run, status=MessageStatus.SENT).count() == 2
    first_statuses = set(Message.objects.filter(run=first).values_list("status", flat=True))
    assert MessageStatus.FAILED in first_statuses  # the earlier run's record stays as it was


def test_only_failed_leaves_out_clients_who_opted_out_since(
    api, django_capture_on_commit_callbacks
):
    campaign, _ = ended_run(
        {"79000000002": MessageStatus.FAILED, "79000000003": MessageStatus.FAILED}
    )
    set_opted_out(phone_numbers=["79000000003"])

    response = start(api, campaign.pk, {"only": "failed"}, django_capture_on_commit_callbacks)

    assert response.status_code == 202
    assert [sms.phone for sms in locmem.outbox] == ["79000000002"]
    assert CampaignRun.objects.get(pk=response.json()["run_id"]).opted_out_clients == 1


def test_only_failed_without_any_failure_is_400_naming_only(api):
    campaign, _ = ended_run({"79000000001": MessageStatus.SENT})

    response = api.post(f"/api/campaigns/{campaign.pk}/start/", {"only": "failed"}, format="json")

    assert response.status_code == 400
    assert "ended failed or expired" in response.json()["only"][0]
    assert CampaignRun.objects.filter(campaign=campaign).count() == 1


def test_only_failed_before_any_run_is_409_naming_only(api):
    ClientFactory(tag="vip")
    campaign = CampaignFactory(tag="vip")

    response = api.post(f"/api/campaigns/{campaign.pk}/start/", {"only": "failed"}, format="json")

    assert response.status_code == 409
    assert "no run yet" in response.json()["only"][0]


def test_only_failed_while_the_latest_run_is_still_running_is_409(api):
    run = CampaignRunFactory(campaign=CampaignFactory(tag="vip", status="running"))
    MessageFactory(run=run, client=ClientFactory(tag="vip"), status=MessageStatus.FAILED)

    response = api.post(
        f"/api/campaigns/{run.campaign_id}/start/", {"only": "failed"}, format="json"
    )

    assert response.status_code == 409
    assert "running" in response.json()["only"][0]
    assert CampaignRun.objects.filter(campaign=run.campaign).count() == 1


@pytest.mark.parametrize("only", ["all", "FAILED", "", 1, ["failed"]])
def test_an_unknown_only_value_is_400_naming_only(api, only):
    campaign, _ = ended_run({"79000000002": MessageStatus.FAILED})

    response = api.post(f"/api/campaigns/{campaign.pk}/start/", {"only": only}, format="json")

    assert response.status_code == 400
    assert list(response.json()) == ["only"]


def test_only_failed_with_force_resend_is_400(api):
    campaign, _ = ended_run({"79000000002": MessageStatus.FAILED})

    response = api.post(
        f"/api/campaigns/{campaign.pk}/start/",
        {"only": "failed", "force_resend": True},
        format="json",
    )

    assert response.status_code == 400
    assert list(response.json()) == ["only"]


def test_only_failed_of_an_unknown_campaign_is_404(api):
    response = api.post("/api/campaigns/999999/start/", {"only": "failed"}, format="json")

    assert response.status_code == 404


def test_a_bad_only_is_400_also_with_force_resend_in_the_query(api):
    campaign, _ = ended_run({"79000000002": MessageStatus.FAILED})

    response = api.post(
        f"/api/campaigns/{campaign.pk}/start/?force_resend=true", {"only": -1}, format="json"
    )

    assert response.status_code == 400
    assert list(response.json()) == ["only"]
    assert CampaignRun.objects.filter(campaign=campaign).count() == 1


def test_only_failed_in_the_body_with_force_resend_in_the_query_is_400(api):
    campaign, _ = ended_run({"79000000002": MessageStatus.FAILED})

    response = api.post(
        f"/api/campaigns/{campaign.pk}/start/?force_resend=true", {"only": "failed"}, format="json"
    )

    assert response.status_code == 400
    assert list(response.json()) == ["only"]

"""Listing, reading, editing and deleting campaigns; unknown paths and ids are JSON 404s."""

import pytest

from api.models import Campaign, CampaignRun, CampaignStatus, Message
from api.tests.campaign_helpers import campaign_body
from api.tests.factories import CampaignFactory, ClientFactory

pytest_plugins = ["api.tests.campaign_fixtures"]


def test_list_and_retrieve_campaigns_on_both_paths(api):
    first, second = CampaignFactory(tag="vip"), CampaignFactory(tag="gold")

    for base in ("/api/campaigns", "/api/newsletters"):
        listing = api.get(f"{base}/").json()
        assert [c["id"] for c in listing["results"]] == [second.pk, first.pk]
        assert "count" not in listing
        detail = api.get(f"{base}/{first.pk}")
        assert detail.status_code == 200
        assert detail.json()["tag"] == "vip"


def test_list_campaigns_filters_by_status_and_tag(api):
    draft = CampaignFactory(tag="vip")
    cancelled = CampaignFactory(tag="vip", status=CampaignStatus.CANCELLED)
    CampaignFactory(tag="gold", status=CampaignStatus.CANCELLED)

    by_status = api.get("/api/campaigns/", {"status": "draft"}).json()["results"]
    by_both = api.get("/api/campaigns/", {"status": "cancelled", "tag": "vip"}).json()["results"]

    assert [c["id"] for c in by_status] == [draft.pk]
    assert [c["id"] for c in by_both] == [cancelled.pk]


@pytest.mark.parametrize(
    "path", ["/api/campaigns/abc/", "/api/campaigns/1/nope/", "/api/nothing", "/api/campaign"]
)
def test_unknown_api_path_is_404_json(api, path):
    response = api.get(path)

    assert response.status_code == 404
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["detail"]


def test_unknown_api_path_is_401_without_a_token(anon):
    assert anon.get("/api/nothing/").status_code == 401


@pytest.mark.parametrize(
    ("method", "suffix"),
    [
        ("get", ""),
        ("put", ""),
        ("patch", ""),
        ("delete", ""),
        ("post", "start/"),
        ("post", "pause/"),
        ("post", "resume/"),
        ("post", "cancel/"),
        ("get", "stats/"),
    ],
)
def test_unknown_campaign_is_404_json(api, method, suffix):
    response = getattr(api, method)(f"/api/campaigns/987654/{suffix}", {}, format="json")

    assert response.status_code == 404
    assert response.json()["detail"]


def test_patch_draft_campaign_updates_it(api):
    campaign = CampaignFactory(text_message="Old")

    response = api.patch(
        f"/api/campaigns/{campaign.pk}/",
        {"text_message": "New", "status": "finished"},
        format="json",
    )

    assert response.status_code == 200, response.content
    campaign.refresh_from_db()
    assert campaign.text_message == "New"
    assert campaign.status == CampaignStatus.DRAFT


def test_put_campaign_replaces_its_fields(api):
    campaign = CampaignFactory(tag="vip")

    response = api.put(
        f"/api/campaigns/{campaign.pk}/",
        campaign_body(
            text_message="Replaced", tag="gold", client_filter={"operator_codes": ["901"]}
        ),
        format="json",
    )

    assert response.status_code == 200, response.content
    campaign.refresh_from_db()
    assert (campaign.text_message, campaign.tag) == ("Replaced", "gold")
    assert campaign.client_filter["operator_codes"] == ["901"]
    assert not CampaignRun.objects.exists()


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"end_datetime": "2001-01-01T00:00:00Z"}, "end_datetime"),
        ({"time_interval_start": "10:00"}, "time_interval_end"),
        ({"tag": ""}, "tag"),
        ({"text_message": ""}, "text_message"),
        ({"client_filter": {"nope": []}}, "client_filter"),
    ],
)
def test_patch_campaign_with_an_invalid_value_is_400_and_changes_nothing(api, patch, field):
    campaign = CampaignFactory(text_message="Keep", tag="vip")

    response = api.patch(f"/api/campaigns/{campaign.pk}/", patch, format="json")

    assert response.status_code == 400
    assert field in response.json()
    campaign.refresh_from_db()
    assert (campaign.text_message, campaign.tag, campaign.time_interval_start) == (
        "Keep",
        "vip",
        None,
    )


@pytest.mark.parametrize("status", [CampaignStatus.FINISHED, CampaignStatus.CANCELLED])
def test_patch_closed_campaign_is_409(api, status):
    campaign = CampaignFactory(status=status, text_message="Keep")

    response = api.patch(f"/api/campaigns/{campaign.pk}/", {"text_message": "x"}, format="json")

    assert response.status_code == 409
    assert "status" in response.json()
    campaign.refresh_from_db()
    assert campaign.text_message == "Keep"


def test_delete_draft_campaign_is_204(api):
    campaign = CampaignFactory()

    response = api.delete(f"/api/campaigns/{campaign.pk}")

    assert response.status_code == 204
    assert not Campaign.objects.filter(pk=campaign.pk).exists()
    assert api.get(f"/api/campaigns/{campaign.pk}/").status_code == 404


def test_delete_campaign_with_runs_is_409_and_keeps_it(api, create_started):
    ClientFactory(tag="vip")
    campaign_id = create_started()

    response = api.delete(f"/api/campaigns/{campaign_id}/")

    assert response.status_code == 409
    assert response.json()
    assert Campaign.objects.filter(pk=campaign_id).exists()
    assert Message.objects.filter(run__campaign_id=campaign_id).count() == 1


def test_editing_a_cancelled_campaign_is_409_and_changes_nothing(api):
    campaign = CampaignFactory(status=CampaignStatus.CANCELLED, text_message="Old")
    response = api.patch(f"/api/campaigns/{campaign.id}/", {"text_message": "New"}, format="json")
    assert response.status_code == 409
    campaign.refresh_from_db()
    assert campaign.text_message == "Old"

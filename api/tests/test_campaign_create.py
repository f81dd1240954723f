"""Creating campaigns over HTTP: auto-start or draft, body validation, client_filter forms."""

from datetime import timedelta

import pytest
from django.utils import timezone

from api.models import Campaign, CampaignRun, CampaignStatus, Message
from api.providers import locmem
from api.tests.campaign_helpers import campaign_body, iso, stats
from api.tests.factories import ClientFactory


def test_create_campaign_schedules_it_at_once_by_default(api, django_capture_on_commit_callbacks):
    ClientFactory.create_batch(2, tag="vip")

    with django_capture_on_commit_callbacks(execute=True):
        response = api.post("/api/campaigns/", campaign_body(), format="json")

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] in ("scheduled", "running")
    assert "auto_start" not in body
    assert CampaignRun.objects.filter(campaign_id=body["id"]).count() == 1
    assert stats(api, body["id"])["sent_messages"] == 2
    assert len(locmem.outbox) == 2


def test_create_campaign_with_auto_start_false_is_a_draft_without_runs(api):
    ClientFactory(tag="vip")

    response = api.post("/api/campaigns/", campaign_body(auto_start=False), format="json")

    assert response.status_code == 201, response.content
    assert response.json()["status"] == "draft"
    assert Campaign.objects.get().status == CampaignStatus.DRAFT
    assert not CampaignRun.objects.exists()
    assert not Message.objects.exists()


def test_seed_newsletter_example_without_trailing_slash(api, django_capture_on_commit_callbacks):
    ClientFactory(phone_number="79000000001", tag="vip")
    ClientFactory(phone_number="79000000002", tag="other")
    start = (timezone.now() - timedelta(days=1)).strftime("%Y-%m-%dT10:00:00Z")
    end = (timezone.now() + timedelta(days=365)).strftime("%Y-%m-%dT12:00:00Z")

    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(
            "/api/newsletters",
            {"text_message": "Hello", "tag": "vip", "start_datetime": start, "end_datetime": end},
            format="json",
        )

    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["text_message"], body["tag"], body["start_datetime"]) == ("Hello", "vip", start)
    newsletter_stats = api.get(f"/api/newsletters/{body['id']}/stats").json()
    assert newsletter_stats["total_messages"] == 1
    assert newsletter_stats["sent_messages"] == 1
    assert [sms.phone for sms in locmem.outbox] == ["79000000001"]
    assert api.get(f"/api/campaigns/{body['id']}/").json()["id"] == body["id"]


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"text_message": ""}, "text_message"),
        ({"text_message": "x" * 1601}, "text_message"),
        ({"text_message": None}, "text_message"),
        ({"start_datetime": "not a date"}, "start_datetime"),
        ({"start_datetime": None}, "start_datetime"),
        ({"end_datetime": None}, "end_datetime"),
        ("start_equals_end", "end_datetime"),
        ("start_after_end", "end_datetime"),
        ("end_in_the_past", "end_datetime"),
        ({"time_interval_start": "10:00"}, "time_interval_end"),
        ({"time_interval_end": "19:00"}, "time_interval_start"),
        ({"time_interval_start": "10:00", "time_interval_end": "10:00"}, "time_interval_end"),
        ({"time_interval_start": "25:00", "time_interval_end": "10:00"}, "time_interval_start"),
        ({"tag": ""}, "tag"),
        ({"tag": "", "client_filter": {"tags": [], "operator_codes": ["900"]}}, "tag"),
        ({"tag": "", "client_filter": ["900"]}, "tag"),
        ({"tag": "x" * 65}, "tag"),
        ({"client_filter": {"regions": ["msk"]}}, "client_filter"),
        ({"client_filter": {"phone_numbers": ["123"]}}, "client_filter"),
        ({"client_filter": {"phone_numbers": ["89000000001"]}}, "client_filter"),
        ({"client_filter": {"phone_numbers": "79000000001"}}, "client_filter"),
        ({"client_filter": {"operator_codes": ["9000"]}}, "client_filter"),
        ({"client_filter": {"operator_codes": ["9a0"]}}, "client_filter"),
        ({"client_filter": {"tags": "vip"}}, "client_filter"),
        ({"client_filter": {"tags": ["y" * 65]}}, "client_filter"),
        ({"client_filter": {"tags": [{"name": "vip"}]}, "auto_start": False}, "client_filter"),
        ({"client_filter": {"tags": [None]}, "auto_start": False}, "client_filter"),
        ({"client_filter": {"tags": [True]}, "auto_start": False}, "client_filter"),
        ({"client_filter": {"operator_codes": [900.0]}, "auto_start": False}, "client_filter"),
        ({"client_filter": {"phone_numbers": [["79000000001"]]}}, "client_filter"),
        ({"tag": "", "client_filter": [{"tag": "vip"}], "auto_start": False}, "client_filter"),
        ({"client_filter": "vip"}, "client_filter"),
        ({"client_filter": 42}, "client_filter"),
        ({"client_filter": True}, "client_filter"),
        ({"auto_start": "maybe"}, "auto_start"),
    ],
)
def test_create_invalid_campaign_is_400_naming_the_field_and_writes_nothing(api, overrides, field):
    ClientFactory(tag="vip")
    now = timezone.now()
    if overrides == "start_equals_end":
        overrides = {"start_datetime": iso(now + timedelta(days=1))}
        overrides["end_datetime"] = overrides["start_datetime"]
    elif overrides == "start_after_end":
        overrides = {
            "start_datetime": iso(now + timedelta(days=2)),
            "end_datetime": iso(now + timedelta(days=1)),
        }
    elif overrides == "end_in_the_past":
        overrides = {
            "start_datetime": iso(now - timedelta(days=2)),
            "end_datetime": iso(now - timedelta(days=1)),
        }

    response = api.post("/api/campaigns/", campaign_body(**overrides), format="json")

    assert response.status_code == 400, response.content
    assert field in response.json(), response.json()
    assert Campaign.objects.count() == 0
    assert CampaignRun.objects.count() == 0


def test_create_campaign_whose_audience_is_empty_is_400_and_writes_nothing(api):
    ClientFactory(tag="vip")

    response = api.post("/api/campaigns/", campaign_body(tag="nobody"), format="json")

    assert response.status_code == 400
    assert "client_filter" in response.json()
    assert Campaign.objects.count() == 0
    assert CampaignRun.objects.count() == 0


def test_create_campaign_with_malformed_json_is_400_json_and_writes_nothing(api):
    response = api.post(
        "/api/campaigns/", data='{"text_message": "Hi",', content_type="application/json"
    )

    assert response.status_code == 400
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["detail"]
    assert Campaign.objects.count() == 0


def test_create_campaign_accepts_the_seed_list_form_of_client_filter_and_normalizes_it(api):
    response = api.post(
        "/api/campaigns/",
        campaign_body(
            tag="",
            client_filter=["79000000001", "900", "gold", "79000000001", " "],
            auto_start=False,
        ),
        format="json",
    )

    assert response.status_code == 201, response.content
    expected = {"phone_numbers": ["79000000001"], "tags": ["gold"], "operator_codes": ["900"]}
    assert response.json()["client_filter"] == expected
    assert Campaign.objects.get().client_filter == expected


def test_create_campaign_normalizes_the_dict_form_of_client_filter(api):
    response = api.post(
        "/api/campaigns/",
        campaign_body(
            client_filter={"tags": ["gold", "gold"], "operator_codes": None}, auto_start=False
        ),
        format="json",
    )

    assert response.status_code == 201, response.content
    assert response.json()["client_filter"] == {
        "phone_numbers": [],
        "tags": ["gold"],
        "operator_codes": [],
    }


def test_create_campaign_ignores_read_only_fields(api):
    response = api.post(
        "/api/campaigns/",
        campaign_body(
            auto_start=False, status="finished", id=999999, created_at="2000-01-01T00:00:00Z"
        ),
        format="json",
    )

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "draft"
    assert body["id"] != 999999
    assert not Campaign.objects.filter(pk=999999).exists()
    stored = Campaign.objects.get(pk=body["id"])
    assert stored.status == CampaignStatus.DRAFT
    assert stored.created_at > timezone.now() - timedelta(minutes=5)


def test_create_campaign_with_the_longest_text_is_accepted(api):
    response = api.post(
        "/api/campaigns/", campaign_body(text_message="x" * 1600, auto_start=False), format="json"
    )

    assert response.status_code == 201, response.content
    assert len(Campaign.objects.get().text_message) == 1600


def test_create_campaign_with_a_midnight_wrapping_window_is_accepted(api):
    response = api.post(
        "/api/campaigns/",
        campaign_body(time_interval_start="22:00", time_interval_end="06:00", auto_start=False),
        format="json",
    )

    assert response.status_code == 201, response.content
    assert response.json()["time_interval_start"] == "22:00:00"
    assert response.json()["time_interval_end"] == "06:00:00"


def test_client_filter_null_or_missing_reads_back_as_the_same_empty_filter(api):
    empty = {"phone_numbers": [], "tags": [], "operator_codes": []}
    ClientFactory(tag="vip")
    missing = api.post("/api/campaigns/", campaign_body(auto_start=False), format="json")
    null = api.post(
        "/api/campaigns/", campaign_body(auto_start=False, client_filter=None), format="json"
    )
    assert (missing.status_code, null.status_code) == (201, 201), null.content
    assert missing.json()["client_filter"] == empty
    assert null.json()["client_filter"] == empty


@pytest.mark.parametrize("value", ["10:00+03:00", "10:00Z", "10:00:00-0500", "10:00 +03"])
@pytest.mark.parametrize("field", ["time_interval_start", "time_interval_end"])
def test_a_window_time_with_a_utc_offset_is_refused(api, field, value):
    body = {
        "text_message": "hi",
        "start_datetime": (timezone.now() + timedelta(hours=1)).isoformat(),
        "end_datetime": (timezone.now() + timedelta(days=1)).isoformat(),
        "time_interval_start": "09:00",
        "time_interval_end": "18:00",
        "tag": "vip",
        "auto_start": False,
    }
    body[field] = value

    response = api.post("/api/campaigns/", body, format="json")

    assert response.status_code == 400
    assert "UTC offset" in response.json()[field][0]
    assert not Campaign.objects.exists()


@pytest.mark.parametrize("value", ["1000", "10", "9:00", "24:00", "10:60", "10:00:00:00"])
def test_a_window_time_must_be_hh_mm(api, value):
    body = {
        "text_message": "hi",
        "start_datetime": (timezone.now() + timedelta(hours=1)).isoformat(),
        "end_datetime": (timezone.now() + timedelta(days=1)).isoformat(),
        "time_interval_start": value,
        "time_interval_end": "18:00",
        "tag": "vip",
        "auto_start": False,
    }

    response = api.post("/api/campaigns/", body, format="json")

    assert response.status_code == 400
    assert "time_interval_start" in response.json()

"""Campaigns over HTTP: create/validate, audience rules, start/force, lifecycle, stats."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework import serializers

from api import tasks
from api.models import (
    Campaign,
    CampaignRun,
    CampaignStatus,
    Message,
    MessageStatus,
    RunStatus,
)
from api.providers import locmem
from api.tests.factories import (
    CampaignFactory,
    CampaignRunFactory,
    ClientFactory,
    MessageFactory,
)

STATS_KEYS = {
    "campaign_id",
    "status",
    "total_messages",
    "sent_messages",
    "pending_messages",
    "failed_messages",
    "expired_messages",
    "cancelled_messages",
    "by_status",
    "latest_run",
}


def iso(moment):
    return moment.isoformat().replace("+00:00", "Z")


def campaign_body(**overrides):
    now = timezone.now()
    body = {
        "text_message": "Hello",
        "start_datetime": iso(now - timedelta(minutes=5)),
        "end_datetime": iso(now + timedelta(days=1)),
        "tag": "vip",
    }
    body.update(overrides)
    return body


def soon():
    """A start inside the planning lead: the run is planned at once, its messages wait."""
    return iso(timezone.now() + timedelta(seconds=60))


def targeted(api, campaign_id):
    """Client ids the campaign has messages for (what /api/messages shows)."""
    rows = api.get("/api/messages/", {"campaign": campaign_id, "page_size": 1000}).json()
    return sorted(m["client"] for m in rows["results"])


def stats(api, campaign_id):
    response = api.get(f"/api/campaigns/{campaign_id}/stats/")
    assert response.status_code == 200, response.content
    return response.json()


@pytest.fixture
def create_started(api, django_capture_on_commit_callbacks):
    """POST a campaign (auto-started) and let the eager worker plan and send what is due."""

    def create(**overrides):
        with django_capture_on_commit_callbacks(execute=True):
            response = api.post("/api/campaigns/", campaign_body(**overrides), format="json")
        assert response.status_code == 201, response.content
        return response.json()["id"]

    return create


@pytest.fixture
def waiting_campaign(create_started, settings):
    """Three vip clients and a running campaign whose planned messages are not due yet."""
    settings.DISPATCH_INTERVAL_SECONDS = 60  # planning lead 120 s: soon() is planned at once
    clients = ClientFactory.create_batch(3, tag="vip")
    campaign_id = create_started(start_datetime=soon())
    assert Message.objects.filter(status=MessageStatus.PENDING).count() == 3
    return campaign_id, clients


# --- create ------------------------------------------------------------------------------
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


# --- read / update / delete --------------------------------------------------------------
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


# --- audience ----------------------------------------------------------------------------
def test_phone_numbers_target_only_those_clients(api, create_started):
    a = ClientFactory(phone_number="79000000001", tag="vip")
    b = ClientFactory(phone_number="79000000002", tag="gold")
    ClientFactory(phone_number="79000000003", tag="vip")

    campaign_id = create_started(
        tag="", client_filter={"phone_numbers": ["79000000001", "79000000002"]}
    )

    assert targeted(api, campaign_id) == [a.pk, b.pk]
    assert sorted(sms.phone for sms in locmem.outbox) == ["79000000001", "79000000002"]


def test_tag_narrows_the_phone_list_and_never_widens_it(api, create_started):
    a = ClientFactory(phone_number="79000000001", tag="vip")
    ClientFactory(phone_number="79000000002", tag="gold")  # listed, wrong tag
    ClientFactory(phone_number="79000000003", tag="vip")  # right tag, not listed

    campaign_id = create_started(
        tag="vip", client_filter={"phone_numbers": ["79000000001", "79000000002"]}
    )

    assert targeted(api, campaign_id) == [a.pk]


def test_operator_codes_narrow_the_tag_audience(api, create_started):
    a = ClientFactory(tag="vip", mobile_operator_code="900")
    ClientFactory(tag="vip", mobile_operator_code="901")
    ClientFactory(tag="gold", mobile_operator_code="900")

    campaign_id = create_started(tag="vip", client_filter={"operator_codes": ["900"]})

    assert targeted(api, campaign_id) == [a.pk]


def test_operator_codes_narrow_the_phone_list(api, create_started):
    a = ClientFactory(phone_number="79000000001", mobile_operator_code="900")
    ClientFactory(phone_number="79000000002", mobile_operator_code="901")

    campaign_id = create_started(
        tag="",
        client_filter={"phone_numbers": ["79000000001", "79000000002"], "operator_codes": ["900"]},
    )

    assert targeted(api, campaign_id) == [a.pk]


def test_tag_and_client_filter_tags_are_a_union(api, create_started):
    a = ClientFactory(tag="vip")
    b = ClientFactory(tag="gold")
    ClientFactory(tag="other")

    campaign_id = create_started(tag="vip", client_filter={"tags": ["gold"]})

    assert targeted(api, campaign_id) == [a.pk, b.pk]


def test_seed_list_form_targets_like_the_dict_form(api, create_started):
    a = ClientFactory(phone_number="79000000001", tag="gold", mobile_operator_code="900")
    ClientFactory(phone_number="79000000002", tag="gold", mobile_operator_code="901")
    ClientFactory(phone_number="79000000003", tag="vip", mobile_operator_code="900")

    campaign_id = create_started(tag="", client_filter=["gold", "900"])

    assert targeted(api, campaign_id) == [a.pk]


def test_deleted_clients_are_never_targeted(api, create_started):
    kept = ClientFactory(tag="vip", phone_number="79000000001")
    gone = ClientFactory(tag="vip", phone_number="79000000002")
    assert api.delete(f"/api/clients/{gone.pk}/").status_code == 204

    by_tag = create_started(tag="vip")
    by_phone = api.post(
        "/api/campaigns/",
        campaign_body(tag="", client_filter={"phone_numbers": ["79000000002"]}),
        format="json",
    )

    assert targeted(api, by_tag) == [kept.pk]
    assert by_phone.status_code == 400
    assert "client_filter" in by_phone.json()
    assert [sms.phone for sms in locmem.outbox] == ["79000000001"]


def test_start_with_an_empty_audience_is_400_and_creates_no_run(api):
    ClientFactory(tag="vip")
    campaign = CampaignFactory(tag="nobody")

    response = api.post(f"/api/campaigns/{campaign.pk}/start/")

    assert response.status_code == 400
    assert "client_filter" in response.json()
    assert not CampaignRun.objects.exists()
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.DRAFT


def test_start_when_every_audience_client_was_deleted_is_400(api):
    client = ClientFactory(tag="vip")
    campaign = CampaignFactory(tag="vip")
    api.delete(f"/api/clients/{client.pk}/")

    response = api.post(f"/api/campaigns/{campaign.pk}/start/")

    assert response.status_code == 400
    assert not CampaignRun.objects.exists()


# --- start -------------------------------------------------------------------------------
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


# --- pause / resume / cancel -------------------------------------------------------------
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


# --- stats -------------------------------------------------------------------------------
def test_campaign_stats_count_messages_by_status(api):
    run = CampaignRunFactory()
    counts = {
        MessageStatus.SENT: 2,
        MessageStatus.PENDING: 1,
        MessageStatus.SENDING: 1,
        MessageStatus.PAUSED: 1,
        MessageStatus.FAILED: 1,
        MessageStatus.EXPIRED: 1,
        MessageStatus.CANCELLED: 1,
    }
    for status, n in counts.items():
        MessageFactory.create_batch(n, run=run, status=status)
    MessageFactory(status=MessageStatus.SENT)  # another campaign's

    response = api.get(f"/api/campaigns/{run.campaign_id}/stats")

    assert response.status_code == 200
    body = response.json()
    assert set(body) == STATS_KEYS
    assert body["campaign_id"] == run.campaign_id
    assert body["status"] == "running"
    assert body["total_messages"] == 8
    assert body["sent_messages"] == 2
    assert body["pending_messages"] == 3
    assert body["failed_messages"] == 1
    assert body["expired_messages"] == 1
    assert body["cancelled_messages"] == 1
    assert body["by_status"] == {str(k): v for k, v in counts.items()}
    assert body["latest_run"]["id"] == run.pk
    numbers = [v for k, v in body.items() if k.endswith("_messages")]
    numbers += list(body["by_status"].values())
    assert all(type(n) is int for n in numbers), body  # 8, not 8.0 (a SUM is numeric in SQL)


def test_campaign_stats_sum_every_run_and_show_the_latest(api):
    campaign = CampaignFactory(status=CampaignStatus.RUNNING)
    first = CampaignRunFactory(campaign=campaign, number=1, status=RunStatus.CANCELLED)
    latest = CampaignRunFactory(campaign=campaign, number=2)
    MessageFactory(run=first, status=MessageStatus.CANCELLED)
    MessageFactory(run=latest, status=MessageStatus.SENT)

    body = stats(api, campaign.pk)

    assert (body["total_messages"], body["sent_messages"], body["cancelled_messages"]) == (2, 1, 1)
    assert body["latest_run"]["number"] == 2
    assert body["latest_run"]["id"] == latest.pk


@pytest.mark.parametrize("microsecond", [0, 5, 678901])
def test_stats_latest_run_times_are_written_as_drf_writes_them(api, microsecond):
    # The stats read times as text straight from the database (no datetime parsing on the
    # way): the text must be what DRF's DateTimeField gives for the same moment.
    run = CampaignRunFactory()
    created = datetime(2030, 1, 2, 3, 4, 5, microsecond, tzinfo=UTC)
    finished = created + timedelta(hours=25, seconds=1)
    CampaignRun.objects.filter(pk=run.pk).update(created_at=created, finished_at=finished)

    latest = stats(api, run.campaign_id)["latest_run"]

    field = serializers.DateTimeField()
    assert latest["created_at"] == field.to_representation(created)
    assert latest["finished_at"] == field.to_representation(finished)
    assert latest == {
        "id": run.pk,
        "number": run.number,
        "status": run.status,
        "planned_messages": run.planned_messages,
        "skipped_clients": run.skipped_clients,
        "created_at": field.to_representation(created),
        "finished_at": field.to_representation(finished),
    }
    assert api.get("/api/campaigns/stats/").json()[0]["latest_run"] == latest


def test_stats_of_a_missing_campaign_is_a_json_404(api):
    response = api.get("/api/campaigns/999999/stats/")

    assert response.status_code == 404
    assert response.json()["detail"]


def test_stats_of_a_draft_are_zero_without_a_run(api):
    campaign = CampaignFactory()

    body = api.get(f"/api/newsletters/{campaign.pk}/stats").json()

    assert body["status"] == "draft"
    assert body["total_messages"] == 0
    assert set(body["by_status"].values()) == {0}
    assert set(body["by_status"]) == set(MessageStatus.values)
    assert body["latest_run"] is None


@pytest.mark.parametrize("path", ["/api/campaigns/stats/", "/api/campaigns/stats"])
def test_all_campaign_stats_list_every_campaign_including_ones_without_messages(api, path):
    busy = MessageFactory(status=MessageStatus.SENT).run.campaign
    MessageFactory(run=busy.runs.get(), status=MessageStatus.FAILED)
    idle = CampaignFactory()

    response = api.get(path)

    assert response.status_code == 200
    rows = {row["campaign_id"]: row for row in response.json()}
    assert set(rows) == {busy.pk, idle.pk}
    for campaign_id, row in rows.items():
        assert set(row) == STATS_KEYS
        assert row == stats(api, campaign_id)
    assert (rows[busy.pk]["sent_messages"], rows[busy.pk]["failed_messages"]) == (1, 1)
    assert rows[idle.pk]["total_messages"] == 0


def _all_stats_queries(api):
    with CaptureQueriesContext(connection) as queries:
        response = api.get("/api/campaigns/stats/")
    assert response.status_code == 200
    return len(queries), len(response.json())


def _campaigns_with_messages(n):
    for _ in range(n):
        run = CampaignRunFactory()
        MessageFactory(run=run, status=MessageStatus.SENT)
        MessageFactory(run=run, status=MessageStatus.PENDING)


def test_all_campaign_stats_cost_does_not_grow_with_the_number_of_campaigns(
    api, django_assert_max_num_queries
):
    _campaigns_with_messages(2)
    with_two, listed = _all_stats_queries(api)
    assert listed == 2

    _campaigns_with_messages(8)
    with_ten, listed = _all_stats_queries(api)
    assert listed == 10

    assert with_ten == with_two
    with django_assert_max_num_queries(4):
        api.get("/api/campaigns/stats/")


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


def test_editing_a_cancelled_campaign_is_409_and_changes_nothing(api):
    campaign = CampaignFactory(status=CampaignStatus.CANCELLED, text_message="Old")
    response = api.patch(f"/api/campaigns/{campaign.id}/", {"text_message": "New"}, format="json")
    assert response.status_code == 409
    campaign.refresh_from_db()
    assert campaign.text_message == "Old"


def test_all_stats_reads_only_each_campaigns_latest_run(api):
    campaign = CampaignFactory()
    for number in (1, 2, 3):
        CampaignRunFactory(campaign=campaign, number=number)
    body = api.get("/api/campaigns/stats/").json()
    assert body[0]["latest_run"]["number"] == 3


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


def test_stats_of_an_id_beyond_bigint_is_a_404(api):
    response = api.get("/api/campaigns/2230800774269921090881156138/stats/")

    assert response.status_code == 404


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


@pytest.mark.parametrize("body", ["[null, null]", "-12", '"yes"'])
def test_start_with_a_body_that_is_not_an_object_is_a_400(api, body):
    campaign = CampaignFactory(tag="vip")

    response = api.generic(
        "POST", f"/api/campaigns/{campaign.pk}/start/", body, content_type="application/json"
    )

    assert response.status_code == 400
    assert campaign.runs.count() == 0

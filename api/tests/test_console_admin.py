"""The admin as the operators' console: buttons through the API's services and 409 rules,
live numbers from the counters, the form through the services, and the message history."""

from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.messages import get_messages
from django.db import connection
from django.test.utils import CaptureQueriesContext

from api.models import Campaign, CampaignRun, CampaignStatus, MessageStatus, RunStatus
from api.tests.factories import CampaignFactory, CampaignRunFactory, ClientFactory, MessageFactory
from api.tests.test_domain_admin import campaign_form

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)


@pytest.fixture
def running():
    run = CampaignRunFactory()
    MessageFactory.create_batch(3, run=run, status=MessageStatus.SENT, planned_send_at=T0)
    MessageFactory(
        run=run, status=MessageStatus.FAILED, last_error="HTTP 400: bad number", attempts=1
    )
    MessageFactory.create_batch(2, run=run)
    return run


def said(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def press(admin_client, campaign_id, action):
    return admin_client.post(f"/admin/api/campaign/{campaign_id}/console/{action}/", follow=True)


def test_pause_from_the_console_pauses_the_campaign_and_its_run(admin_client, running):
    response = press(admin_client, running.campaign_id, "pause")

    assert said(response) == ["Paused."]
    assert Campaign.objects.get(pk=running.campaign_id).status == CampaignStatus.PAUSED
    assert CampaignRun.objects.get(pk=running.pk).status == RunStatus.PAUSED


def test_a_refused_action_shows_the_apis_409_message_and_changes_nothing(
    admin_client, api, running
):
    press(admin_client, running.campaign_id, "pause")

    response = press(admin_client, running.campaign_id, "pause")
    from_api = api.post(f"/api/campaigns/{running.campaign_id}/pause/")

    assert from_api.status_code == 409
    assert said(response) == [f"Refused (409): {from_api.json()['status'][0]}"]
    assert Campaign.objects.get(pk=running.campaign_id).status == CampaignStatus.PAUSED


def test_start_and_force_resend_open_runs_as_the_api_does(admin_client):
    ClientFactory(tag="vip")
    campaign = CampaignFactory(start_datetime=datetime.now(UTC) + timedelta(days=1))

    assert said(press(admin_client, campaign.pk, "start")) == ["Started run 1."]
    refused = said(press(admin_client, campaign.pk, "start"))
    assert refused == [
        "Refused (409): Campaign is scheduled; pass force_resend=true to send it again."
    ]
    assert said(press(admin_client, campaign.pk, "force_resend")) == ["Started run 2."]
    statuses = list(campaign.runs.order_by("number").values_list("status", flat=True))
    assert statuses == [RunStatus.CANCELLED, RunStatus.SCHEDULED]


def test_a_start_without_an_audience_is_refused_naming_the_field(admin_client):
    campaign = CampaignFactory(tag="nobody-has-this-tag")

    refused = said(press(admin_client, campaign.pk, "start"))

    assert refused and refused[0].startswith("Refused (400, client_filter):")
    assert not campaign.runs.exists()


def test_cancel_then_resume_is_refused(admin_client, running):
    assert said(press(admin_client, running.campaign_id, "cancel")) == ["Cancelled."]
    assert said(press(admin_client, running.campaign_id, "resume")) == [
        "Refused (409): Only a paused campaign can be resumed, not cancelled."
    ]


def test_the_buttons_need_a_post_and_a_known_action(admin_client, running):
    base = f"/admin/api/campaign/{running.campaign_id}/console"
    assert admin_client.get(f"{base}/pause/").status_code == 405
    assert admin_client.post(f"{base}/explode/").status_code == 404
    resend = admin_client.post(f"{base}/resend_failed/")  # refused: the run is still active
    assert resend.status_code == 302
    assert said(resend)[0].startswith("Refused (409)")


def test_the_campaign_page_shows_breakdown_chart_failures_and_runs(admin_client, running):
    page = admin_client.get(f"/admin/api/campaign/{running.campaign_id}/change/")

    html = page.content.decode()
    assert page.status_code == 200
    assert 'data-total="6" data-sent="3"' in html  # the progress bar
    assert '<svg class="console-chart"' in html and 'data-total="3"' in html  # 3 sent at T0
    assert "HTTP 400: bad number" in html  # failures by reason
    assert f'data-run="{running.pk}"' in html
    for action in ("start", "pause", "resume", "cancel", "force_resend"):
        assert f'id="console-{action}"' in html


def test_the_activity_endpoint_gives_the_counters_numbers(admin_client, running):
    body = admin_client.get(f"/admin/api/campaign/{running.campaign_id}/activity/").json()

    assert body["status"] == CampaignStatus.RUNNING
    assert body["progress"] == {
        "total": 6,
        "sent": 3,
        "pending": 2,
        "failed": 1,
        "expired": 0,
        "cancelled": 0,
    }
    assert body["sent_series"]["points"] == [[T0.isoformat(), 3]]
    assert body["runs"][0]["id"] == running.pk and body["is_live"] is True
    assert body["next_planned_send"] is not None
    assert "console-chart" in body["html"]


def test_the_activity_endpoint_is_for_staff_only(client, django_user_model, running):
    url = f"/admin/api/campaign/{running.campaign_id}/activity/"
    assert client.get(url).status_code == 302  # to the sign-in page
    django_user_model.objects.create_user("nobody", password="not-staff-1")
    client.login(username="nobody", password="not-staff-1")
    assert "/admin/login/" in client.get(url)["Location"]


def test_a_campaign_added_in_the_admin_is_a_draft_made_by_the_service(admin_client):
    response = admin_client.post("/admin/api/campaign/add/", campaign_form())

    assert response.status_code == 302
    campaign = Campaign.objects.get()
    assert campaign.status == CampaignStatus.DRAFT and not campaign.runs.exists()


def test_a_closed_campaigns_fields_are_read_only(admin_client):
    campaign = CampaignFactory(status=CampaignStatus.FINISHED)

    html = admin_client.get(f"/admin/api/campaign/{campaign.pk}/change/").content.decode()

    assert 'name="text_message"' not in html


def test_the_campaign_list_shows_each_progress_bar_and_next_send(admin_client, running):
    html = admin_client.get("/admin/api/campaign/").content.decode()

    assert 'data-total="6" data-sent="3"' in html
    assert "3 sent, 1 not sent of 6 · 66 % done" in html


# --- message history --------------------------------------------------------------------
@pytest.fixture
def history():
    alice = ClientFactory(phone_number="79161234567")
    bob = ClientFactory(phone_number="79167654321")
    first, second = CampaignRunFactory(), CampaignRunFactory()
    for run in (first, second):
        MessageFactory(run=run, client=alice, status=MessageStatus.SENT)
        MessageFactory(run=run, client=bob, status=MessageStatus.FAILED)
    return alice, bob, first, second


def listed(admin_client, query: str) -> set[int]:
    response = admin_client.get(f"/admin/api/message/?{query}")
    assert response.status_code == 200
    return {message.pk for message in response.context["cl"].result_list}


def test_message_history_masks_phones(admin_client, history):
    html = admin_client.get("/admin/api/message/").content.decode()

    assert "7916***4567" in html and "79161234567" not in html


def test_message_history_search_by_phone_client_and_status(admin_client, history):
    alice, bob, first, second = history
    alice_ids = {first.pk * 2**32 + alice.pk, second.pk * 2**32 + alice.pk}

    assert listed(admin_client, "q=79161234567") == alice_ids
    assert listed(admin_client, f"q=client:{alice.pk}") == alice_ids
    assert listed(admin_client, f"q={bob.pk}+failed") == {
        first.pk * 2**32 + bob.pk,
        second.pk * 2**32 + bob.pk,
    }
    assert listed(admin_client, f"q={alice.pk}+failed") == set()
    assert listed(admin_client, "q=79990000000") == set()
    assert listed(admin_client, "q=drop+table") == set()


def test_message_history_filters_by_campaign_and_run(admin_client, history):
    alice, bob, first, second = history

    assert listed(admin_client, f"run={first.pk}") == {
        first.pk * 2**32 + alice.pk,
        first.pk * 2**32 + bob.pk,
    }
    assert listed(admin_client, f"campaign={second.campaign_id}&q=79161234567") == {
        second.pk * 2**32 + alice.pk
    }
    assert listed(admin_client, "run=abc") == set()


def test_message_history_never_counts_the_whole_table(admin_client, history):
    with CaptureQueriesContext(connection) as queries:
        admin_client.get("/admin/api/message/?status__exact=sent")

    counts = [q["sql"] for q in queries.captured_queries if "COUNT(" in q["sql"].upper()]
    assert counts, "the capped count is one query"
    assert all("LIMIT" in sql.upper() for sql in counts), counts


def test_next_planned_send_is_the_start_or_the_earliest_pending_message():
    from api.campaign_activity import next_planned_sends

    running = CampaignRunFactory()
    MessageFactory(run=running, planned_send_at=T0 + timedelta(hours=2))
    MessageFactory(run=running, planned_send_at=T0 + timedelta(hours=1))
    MessageFactory(run=running, planned_send_at=T0, status=MessageStatus.SENT)
    waiting = CampaignRunFactory(status=RunStatus.SCHEDULED, campaign__status="scheduled")
    closed = CampaignFactory(status=CampaignStatus.FINISHED)
    campaigns = [running.campaign, waiting.campaign, closed]

    assert next_planned_sends(campaigns) == {
        running.campaign_id: T0 + timedelta(hours=1),
        waiting.campaign_id: waiting.campaign.start_datetime,
    }


def test_a_draft_shows_the_audience_preview_and_a_started_campaign_does_not(admin_client):
    ClientFactory.create_batch(3, tag="preview", timezone="Asia/Tokyo", mobile_operator_code="901")
    ClientFactory(tag="preview", timezone="UTC", mobile_operator_code="902")
    ClientFactory(tag="preview", timezone="UTC", opted_out=True)
    draft = CampaignFactory(tag="preview")
    started = CampaignFactory(tag="preview", status=CampaignStatus.RUNNING)

    html = admin_client.get(f"/admin/api/campaign/{draft.pk}/change/").content.decode()

    assert 'id="console-audience-preview"' in html
    assert '<strong data-total="4">4</strong> clients' in html and "1 opted out" in html
    assert "<td>Asia/Tokyo</td><td>3</td>" in html and "<td>902</td><td>1</td>" in html
    assert 'class="console-chart"' in html and 'data-total="4"' in html  # 4 planned sends
    started_page = admin_client.get(f"/admin/api/campaign/{started.pk}/change/")
    assert "console-audience-preview" not in started_page.content.decode()


def test_a_campaign_is_deleted_through_the_service_and_one_with_runs_is_kept(admin_client):
    draft, started = CampaignFactory(), CampaignRunFactory().campaign

    admin_client.post(f"/admin/api/campaign/{draft.pk}/delete/", {"post": "yes"})
    admin_client.post(f"/admin/api/campaign/{started.pk}/delete/", {"post": "yes"})

    assert list(Campaign.objects.values_list("pk", flat=True)) == [started.pk]

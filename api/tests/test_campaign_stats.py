"""Campaign stats: counts by status over every run, the latest run, the list of all and its cost."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework import serializers

from api.models import CampaignRun, CampaignStatus, MessageStatus, RunStatus
from api.tests.campaign_helpers import stats
from api.tests.factories import CampaignFactory, CampaignRunFactory, MessageFactory

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
        "opted_out_clients": run.opted_out_clients,
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


def test_all_stats_reads_only_each_campaigns_latest_run(api):
    campaign = CampaignFactory()
    for number in (1, 2, 3):
        CampaignRunFactory(campaign=campaign, number=number)
    body = api.get("/api/campaigns/stats/").json()
    assert body[0]["latest_run"]["number"] == 3


def test_stats_of_an_id_beyond_bigint_is_a_404(api):
    response = api.get("/api/campaigns/2230800774269921090881156138/stats/")

    assert response.status_code == 404

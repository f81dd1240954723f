"""GET /api/campaigns/<id>/preview/: who a start would reach, and when; nothing written."""

from datetime import UTC, datetime, time, timedelta

import pytest
from django.utils import timezone

from api.models import CampaignRun, Message
from api.preview import audience_preview
from api.services.opt_out import set_opted_out
from api.services.planning import plan_run
from api.tests.factories import CampaignFactory, ClientFactory


def tomorrow_at(hour: int) -> datetime:
    day = (timezone.now() + timedelta(days=1)).date()
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


@pytest.fixture
def campaign(db):
    """Clients in three zones; a window 10:00-12:00 local, for 10 hours from 06:00 UTC
    tomorrow: Moscow (+3) opens at 07:00 UTC, London (+0 in winter, +1 in summer) at
    09:00-10:00 UTC, Los Angeles (-8/-7) only after the end: skipped."""
    for phone, zone, code in [
        ("79000000001", "Europe/Moscow", "900"),
        ("79000000002", "Europe/Moscow", "901"),
        ("79000000003", "Europe/London", "900"),
        ("79000000004", "America/Los_Angeles", "900"),
        ("79000000005", "Europe/Moscow", "900"),
    ]:
        ClientFactory(phone_number=phone, timezone=zone, mobile_operator_code=code, tag="vip")
    ClientFactory(phone_number="79000000006", tag="other")
    set_opted_out(phone_numbers=["79000000005"])
    start = tomorrow_at(6)
    return CampaignFactory(
        tag="vip",
        start_datetime=start,
        end_datetime=start + timedelta(hours=10),
        time_interval_start=time(10),
        time_interval_end=time(12),
    )


def test_preview_counts_zones_operators_skipped_and_opted_out(api, campaign):
    response = api.get(f"/api/campaigns/{campaign.pk}/preview/", {"tz": "Europe/Moscow"})

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["total"], body["planned"], body["skipped_no_window"], body["opted_out"]) == (
        4,
        3,
        1,
        1,
    )
    zones = {z["timezone"]: z for z in body["by_timezone"]}
    assert {name: z["clients"] for name, z in zones.items()} == {
        "America/Los_Angeles": 1,
        "Europe/London": 1,
        "Europe/Moscow": 2,
    }
    assert zones["America/Los_Angeles"]["planned_send_at"] is None
    assert zones["Europe/Moscow"]["planned_send_at"] == tomorrow_at(7).isoformat().replace(
        "+00:00", "Z"
    )
    assert body["by_operator_code"] == [
        {"operator_code": "900", "clients": 3},
        {"operator_code": "901", "clients": 1},
    ]
    assert body["timezone"] == "Europe/Moscow"


def test_preview_histograms_count_planned_sends_per_hour_utc_and_local(api, campaign):
    body = api.get(f"/api/campaigns/{campaign.pk}/preview/?tz=Europe/Moscow").json()

    moscow_utc = tomorrow_at(7)
    utc = {h["hour"]: h["messages"] for h in body["histogram_utc"]}
    local = {h["hour"]: h["messages"] for h in body["histogram_local"]}
    assert sum(utc.values()) == sum(local.values()) == 3
    assert utc[moscow_utc.isoformat().replace("+00:00", "Z")] == 2
    assert local[moscow_utc.astimezone(timezone.get_fixed_timezone(180)).isoformat()] == 2
    assert all(hour.endswith("+03:00") for hour in local)


def test_preview_agrees_with_what_planning_then_writes(api, campaign):
    body = api.get(f"/api/campaigns/{campaign.pk}/preview/").json()
    run = CampaignRun.objects.create(campaign=campaign, number=1)

    result = plan_run(run_id=run.pk)

    assert (result.planned, result.skipped) == (body["planned"], body["skipped_no_window"])
    run.refresh_from_db()
    assert run.opted_out_clients == body["opted_out"]
    planned = {}
    for moment in Message.objects.filter(run=run).values_list("planned_send_at", flat=True):
        hour = moment.replace(minute=0, second=0, microsecond=0).isoformat()
        planned[hour.replace("+00:00", "Z")] = planned.get(hour.replace("+00:00", "Z"), 0) + 1
    assert planned == {h["hour"]: h["messages"] for h in body["histogram_utc"]}


def test_preview_writes_nothing(api, campaign, django_assert_max_num_queries):
    with django_assert_max_num_queries(10) as captured:
        assert api.get(f"/api/campaigns/{campaign.pk}/preview/").status_code == 200

    writes = [
        q["sql"]
        for q in captured.captured_queries
        if q["sql"].lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE"))
    ]
    assert writes == []
    assert not CampaignRun.objects.exists() and not Message.objects.exists()


def test_preview_default_zone_is_the_service_time_zone(api, campaign, settings):
    body = api.get(f"/api/campaigns/{campaign.pk}/preview/").json()

    assert body["timezone"] == settings.TIME_ZONE


@pytest.mark.parametrize("tz", ["Mars/Olympus", "", "posixrules", "europe/moscow"])
def test_preview_with_an_unknown_zone_is_400_naming_tz(api, campaign, tz):
    response = api.get(f"/api/campaigns/{campaign.pk}/preview/", {"tz": tz})

    assert response.status_code == 400
    assert list(response.json()) == ["tz"]


def test_preview_of_an_unknown_campaign_is_404(api):
    assert api.get("/api/campaigns/999999/preview/").status_code == 404


def test_preview_of_a_campaign_without_audience_is_all_zeros(api):
    campaign = CampaignFactory(tag="nobody")

    body = audience_preview(campaign, "UTC")

    assert (body["total"], body["opted_out"], body["histogram_utc"]) == (0, 0, [])

"""Shared by the campaign API tests: request bodies, times, stats reads."""

from datetime import timedelta

from django.utils import timezone


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


def stats(api, campaign_id):
    response = api.get(f"/api/campaigns/{campaign_id}/stats/")
    assert response.status_code == 200, response.content
    return response.json()

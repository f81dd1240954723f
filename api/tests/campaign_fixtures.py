"""Campaign API fixtures, loaded with pytest_plugins: a started campaign, a waiting one."""

import pytest

from api.models import Message, MessageStatus
from api.tests.campaign_helpers import campaign_body, soon
from api.tests.factories import ClientFactory


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

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone
from rest_framework.test import APIClient

from api import tasks
from api.models import Campaign, Message
from api.providers import locmem
from api.providers.base import reset_providers


@pytest.fixture(autouse=True)
def _test_settings(settings):
    settings.SMS_PROVIDER = "api.providers.locmem.LocmemProvider"
    settings.CELERY_TASK_ALWAYS_EAGER = True
    settings.SMS_RATE_LIMIT = 0
    locmem.outbox.clear()
    reset_providers()
    yield
    reset_providers()


@pytest.fixture
def user(db):
    return get_user_model().objects.create_user(username="operator", password="s3cret-pass")


@pytest.fixture
def api(user):
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def anon():
    return APIClient()


@pytest.fixture
def fast_forward(db):
    """Let time reach every campaign start and every planned message, then run beat's sweep
    (the eager worker plans due runs and sends due messages), as a deployment would later."""

    def run():
        past = timezone.now() - timedelta(seconds=1)
        Campaign.objects.filter(start_datetime__gt=past).update(start_datetime=past)
        Message.objects.filter(next_attempt_at__gt=past).update(
            planned_send_at=past, next_attempt_at=past
        )
        tasks.sweep()

    return run

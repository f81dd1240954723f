import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

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

import os
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.utils import timezone
from rest_framework.test import APIClient

from api import tasks
from api.authentication import JWTAuthentication
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
    JWTAuthentication.forget_users()  # ids repeat between tests
    # Throttle counters in a cache of this test's own (test_throttle.py uses the real ones).
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    cache.clear()
    yield
    reset_providers()


@pytest.fixture(autouse=True)
def _fast_password_hasher(settings):
    # The default PBKDF2 costs ~0.3 s per hash; the tests check auth, not hashing strength.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


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


# --- services: Postgres / Redis markers and a real HTTP gateway ----------------------------
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def redis_url_if_reachable() -> str | None:
    import redis

    try:
        redis.Redis.from_url(TEST_REDIS_URL, socket_connect_timeout=1).ping()
    except redis.RedisError:
        return None
    return TEST_REDIS_URL


@pytest.fixture(autouse=True)
def _skip_without_services(request):
    """`postgres` / `redis` markers: skip with the reason when the service is not there."""
    if request.node.get_closest_marker("postgres"):
        from api.services.sql import backend

        if backend().name != "postgresql":
            pytest.skip("needs PostgreSQL: set DATABASE_URL=postgres://... (make test does)")
    if request.node.get_closest_marker("redis") and not redis_url_if_reachable():
        pytest.skip(f"needs Redis at {TEST_REDIS_URL} (set TEST_REDIS_URL)")


@pytest.fixture
def gateway():
    """A real HTTP SMS gateway (the fake one) listening on 127.0.0.1 in this process."""
    from devtools.fake_gateway import FakeGateway, GatewayConfig

    server = FakeGateway(GatewayConfig(token="test-token"))
    server.start_in_thread()
    yield server
    server.stop()


@pytest.fixture
def http_provider(gateway, settings):
    """Send through the real HTTP provider to `gateway`."""
    from api.providers.base import get_provider

    settings.SMS_GATEWAY_URL = gateway.url
    settings.SMS_GATEWAY_TOKEN = "test-token"
    settings.SMS_PROVIDER = "api.providers.http.HttpProvider"
    settings.SMS_READ_TIMEOUT = 2
    reset_providers()
    provider = get_provider()
    yield provider
    reset_providers()


# --- the stats counters never drift --------------------------------------------------------
@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    """After every test that touched the database (before its rollback or flush): each run's
    counters equal a recount of its messages, on SQLite and on Postgres."""
    outcome = yield
    uses_db = {"db", "transactional_db", "django_db_setup"} & set(item.fixturenames)
    if outcome.excinfo is not None or not (uses_db or item.get_closest_marker("django_db")):
        return
    from api.services.counters import recount_runs

    differences = recount_runs()
    assert not differences, f"stats counters drifted from the messages: {differences}"
    from api.services.sent_minutes import recount_sent_minutes

    drift = recount_sent_minutes()
    assert not drift, f"sent-per-minute rows drifted from the messages: {drift}"

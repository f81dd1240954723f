"""SMS_RATE_LIMIT: messages per second, per process or shared by every worker through Redis."""

import asyncio
import threading
import time

import pytest

from api.providers.ratelimit import RedisWindowRateLimiter, WindowRateLimiter, build_rate_limiter
from api.tests.conftest import TEST_REDIS_URL


def permits_per_window(limiters, seconds):
    """Run every limiter in its own thread/loop for `seconds`; count grants per 1 s window."""
    grants: list[float] = []
    lock = threading.Lock()

    def pump(limiter):
        async def loop():
            deadline = time.time() + seconds
            while time.time() < deadline:
                await limiter.acquire()
                with lock:
                    grants.append(time.time())

        asyncio.run(loop())

    threads = [threading.Thread(target=pump, args=(limiter,)) for limiter in limiters]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    windows: dict[int, int] = {}
    for at in grants:
        windows[int(at)] = windows.get(int(at), 0) + 1
    return windows


def test_local_limiter_caps_each_window():
    windows = permits_per_window([WindowRateLimiter(20)], seconds=2.5)
    assert max(windows.values()) <= 20
    assert sum(windows.values()) >= 40  # and it does let traffic through


@pytest.mark.redis
def test_shared_limiter_caps_all_workers_together():
    import redis

    redis.Redis.from_url(TEST_REDIS_URL).flushdb()
    limiters = [RedisWindowRateLimiter(30, TEST_REDIS_URL, key="test-rate") for _ in range(3)]

    windows = permits_per_window(limiters, seconds=2.5)

    # Three "workers" together never pass 30 in one second; alone each would do 30.
    assert max(windows.values()) <= 30
    assert sum(windows.values()) >= 50


@pytest.mark.redis
def test_limiter_is_shared_when_the_broker_is_redis(settings):
    settings.SMS_RATE_LIMIT_REDIS_URL = TEST_REDIS_URL
    assert isinstance(build_rate_limiter(10), RedisWindowRateLimiter)
    settings.SMS_RATE_LIMIT_REDIS_URL = ""
    assert type(build_rate_limiter(10)) is WindowRateLimiter


def test_shared_limiter_falls_back_to_local_when_redis_is_down():
    limiter = RedisWindowRateLimiter(10, "redis://127.0.0.1:1/0", key="nowhere")
    windows = permits_per_window([limiter], seconds=1.5)
    assert 1 <= max(windows.values()) <= 10


@pytest.mark.django_db
def test_http_provider_sends_no_faster_than_the_limit(gateway, http_provider):
    from api.providers.base import OutgoingSms
    from api.providers.http import HttpProvider

    provider = HttpProvider(rate_limit=10)
    messages = [OutgoingSms(i, "79990000001", "hi") for i in range(1, 26)]
    provider.send_messages(messages)
    provider.close()

    log = sorted(at for at, _, _ in gateway.state.request_log)
    assert len(log) == 25
    per_second: dict[int, int] = {}
    for at in log:
        per_second[int(at)] = per_second.get(int(at), 0) + 1
    # Counted by the gateway's clock, one message granted at a window's end may land in the
    # next second: at most one over the limit.
    assert max(per_second.values()) <= 11
    assert log[-1] - log[0] >= 2.0  # 25 messages at 10/s take at least 2 s


@pytest.mark.parametrize("rate", [0.5, 3, 15, 250])
def test_window_permits_average_to_the_exact_rate(rate):
    limiter = WindowRateLimiter(rate)
    windows = round(100 / limiter.window_seconds)  # 100 seconds' worth
    granted = sum(limiter.permits_in(window) for window in range(1_000_000, 1_000_000 + windows))
    assert abs(granted - rate * 100) <= 1

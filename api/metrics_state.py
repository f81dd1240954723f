"""The API's /metrics: state gauges read from the database, the broker and the cache at scrape
time (StateCollector), then the API processes' own figures (api/metrics.py)."""

from __future__ import annotations

import logging
import time

from django.conf import settings
from django.core.cache import cache
from django.db import DatabaseError
from django.http import HttpResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily

from api.metrics import CONTENT_TYPE, SWEEP_CACHE_KEY, help_text, process_registry, token_allowed

logger = logging.getLogger(__name__)


def _gauge(name: str, labels: list[str] | None = None) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, help_text(name), labels=labels)


# --- state, read at scrape time ------------------------------------------------------------
class StateCollector:
    """Gauges computed from the database and the broker when /metrics is scraped: a handful of
    cheap statements whatever the number of messages."""

    def collect(self):
        started = time.perf_counter()
        probes = (
            self._messages,
            self._due,
            self._runs,
            self._broker_queue,
            self._last_sweep,
        )
        for probe in probes:
            try:
                yield from probe()
            except Exception as exc:  # noqa: BLE001 - one probe failing leaves the others
                logger.warning("metrics probe %s failed: %s", probe.__name__, type(exc).__name__)
                if isinstance(exc, DatabaseError):
                    from django.db import connection

                    connection.close_if_unusable_or_obsolete()
        duration = _gauge("tds_state_scrape_duration_seconds")
        duration.add_metric([], time.perf_counter() - started)
        yield duration

    def describe(self):
        return []  # collected on demand only (no probe at registration)

    def _messages(self):
        from api.selectors import message_status_totals

        family = _gauge("tds_messages", ["status"])
        for status, count in message_status_totals().items():
            family.add_metric([status], count)
        yield family

    def _due(self):
        from api.selectors import due_backlog

        count, oldest = due_backlog(now=timezone.now(), limit=settings.METRICS_DUE_LIMIT)
        due = _gauge("tds_messages_due")
        due.add_metric([], count)
        age = _gauge("tds_oldest_due_message_age_seconds")
        age.add_metric([], oldest)
        yield due
        yield age

    def _runs(self):
        from api.selectors import run_status_totals

        family = _gauge("tds_campaign_runs", ["status"])
        for status, count in run_status_totals().items():
            family.add_metric([status], count)
        yield family

    def _broker_queue(self):
        length = broker_queue_length()
        if length is None:
            return
        family = _gauge("tds_broker_queue_length", ["queue"])
        family.add_metric([settings.CELERY_TASK_DEFAULT_QUEUE], length)
        yield family

    def _last_sweep(self):
        family = _gauge("tds_last_sweep_timestamp_seconds")
        family.add_metric([], float(cache.get(SWEEP_CACHE_KEY) or 0))
        yield family


_redis = None


def broker_queue_length() -> int | None:
    """LLEN of the default queue when the broker is Redis (None otherwise)."""
    global _redis
    url = settings.CELERY_BROKER_URL
    if not url.startswith(("redis://", "rediss://", "unix://")):
        return None
    if _redis is None:
        import redis

        _redis = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
    return int(_redis.llen(settings.CELERY_TASK_DEFAULT_QUEUE))


class _Combined:
    def __init__(self, *registries):
        self.registries = registries

    def collect(self):
        for registry in self.registries:
            yield from registry.collect()


_state = CollectorRegistry(auto_describe=False)
_state.register(StateCollector())


_state = CollectorRegistry(auto_describe=False)
_state.register(StateCollector())


def unauthorized() -> HttpResponse:
    response = HttpResponse("metrics token required\n", status=401, content_type="text/plain")
    response["WWW-Authenticate"] = 'Bearer realm="metrics"'
    return response


@never_cache
@require_GET
def metrics_view(request):
    """The API's /metrics: state gauges (once per scrape) and the API processes' figures."""
    if not token_allowed(request.headers.get("Authorization")):
        return unauthorized()
    body = generate_latest(_Combined(_state, process_registry()))
    return HttpResponse(body, content_type=CONTENT_TYPE)

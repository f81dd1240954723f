"""Prometheus metrics: what each process kind exports, and the scrape-time state probes.

Two kinds of figures:

- **Process metrics** (counters and histograms), kept by the process that does the work and
  summed over its forked children through prometheus-client's multiprocess mode: the API's
  request latency (gunicorn workers; scraped at the web port, `/metrics`), and sends, gateway
  answers, send latency and planning (Celery worker processes; scraped at the worker's
  `WORKER_METRICS_PORT`, `/metrics`). Each launcher gives its process tree a fresh directory
  (api.metrics_setup), so two services on one host never mix their files.
- **State** read when the API's `/metrics` is scraped (StateCollector): messages by status from
  the live per-run counters, the due backlog and the age of the oldest due message (index
  probes over the running runs' partitions, the count capped at METRICS_DUE_LIMIT), runs by
  status, the broker's queue length, the time of beat's last sweep. Never a count over the
  message table: a scrape stays a few milliseconds at 10M messages (bench/bench_metrics.py).

Every metric's name is listed in METRICS (the dashboard and alert rules are checked against it).
"""

from __future__ import annotations

import hmac
import logging
import os
import time

from django.conf import settings
from django.core.cache import cache
from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
)

# name -> (type, help). The single list of what we export; tests check the scrape against it.
METRICS: dict[str, tuple[str, str]] = {
    # state, exported once by the API's /metrics
    "tds_messages": ("gauge", "Messages by status (the live per-run counters), all runs."),
    "tds_messages_due": (
        "gauge",
        "Pending messages of running runs due now (exact up to METRICS_DUE_LIMIT).",
    ),
    "tds_oldest_due_message_age_seconds": (
        "gauge",
        "Seconds the oldest due message of a running run has been waiting (0: none due).",
    ),
    "tds_campaign_runs": ("gauge", "Campaign runs by status."),
    "tds_broker_queue_length": ("gauge", "Tasks waiting in the Celery broker queue (Redis)."),
    "tds_last_sweep_timestamp_seconds": (
        "gauge",
        "Unix time of beat's last dispatch sweep (0: none seen).",
    ),
    "tds_state_scrape_duration_seconds": ("gauge", "Seconds the state probes of this scrape took."),
    # API processes
    "tds_http_request_duration_seconds": (
        "histogram",
        "API request latency by method, route pattern and status code.",
    ),
    # worker processes
    "tds_sends_total": (
        "counter",
        "Send outcomes written, by class: sent, retry, failed, expired, cancelled, paused,"
        " deferred.",
    ),
    "tds_gateway_responses_total": (
        "counter",
        "Gateway answers by HTTP status code, or timeout / connection_error / broken_reply.",
    ),
    "tds_send_duration_seconds": ("histogram", "Gateway request latency (one attempt)."),
    "tds_messages_claimed_total": ("counter", "Messages claimed for sending."),
    "tds_planning_duration_seconds": ("histogram", "Seconds planning one campaign run took."),
    "tds_planned_messages_total": ("counter", "Messages planned (rows written by planning)."),
}

logger = logging.getLogger(__name__)

# The text format generate_latest writes (understood by every Prometheus version).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# The same series whether or not a process tree shares a multiprocess directory (which has no
# `_created` samples).
disable_created_metrics()

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
PLANNING_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)


def help_text(name: str) -> str:
    """The HELP line of a metric, from METRICS."""
    return METRICS[name][1]


def _name(name: str) -> str:
    return name.removesuffix("_total")  # prometheus-client appends it to counters itself


HTTP_REQUEST_DURATION = Histogram(
    "tds_http_request_duration_seconds",
    help_text("tds_http_request_duration_seconds"),
    ["method", "route", "status"],
    buckets=LATENCY_BUCKETS,
)
SENDS = Counter(_name("tds_sends_total"), help_text("tds_sends_total"), ["outcome"])
GATEWAY_RESPONSES = Counter(
    _name("tds_gateway_responses_total"), help_text("tds_gateway_responses_total"), ["code"]
)
SEND_DURATION = Histogram(
    "tds_send_duration_seconds", help_text("tds_send_duration_seconds"), buckets=LATENCY_BUCKETS
)
CLAIMED = Counter(_name("tds_messages_claimed_total"), help_text("tds_messages_claimed_total"))
PLANNING_DURATION = Histogram(
    "tds_planning_duration_seconds",
    help_text("tds_planning_duration_seconds"),
    buckets=PLANNING_BUCKETS,
)
PLANNED = Counter(_name("tds_planned_messages_total"), help_text("tds_planned_messages_total"))

# --- recording (called by the services; each is a few microseconds) -----------------------
SEND_OUTCOMES = ("sent", "retry", "failed", "expired", "cancelled", "paused", "deferred")


def outcome_class(status: str, error: str) -> str:
    """The tds_sends_total class of a written outcome: a pending message with an error is a
    retry; without one it was put back unsent (time budget spent, outside its window)."""
    if status == "pending":
        return "retry" if error else "deferred"
    return status


def record_outcomes(counts: dict[str, int]) -> None:
    for outcome, count in counts.items():
        SENDS.labels(outcome).inc(count)


def record_claimed(count: int) -> None:
    CLAIMED.inc(count)


def record_gateway_response(code: int | str, seconds: float | None) -> None:
    GATEWAY_RESPONSES.labels(str(code)).inc()
    if seconds is not None:
        SEND_DURATION.observe(seconds)


def record_planning(seconds: float, planned: int) -> None:
    PLANNING_DURATION.observe(seconds)
    PLANNED.inc(planned)


SWEEP_CACHE_KEY = "tds:last-sweep"


def record_sweep() -> None:
    """Beat's sweep ran (read back by tds_last_sweep_timestamp_seconds). Never fails a sweep."""
    try:
        cache.set(SWEEP_CACHE_KEY, time.time(), timeout=None)
    except Exception:  # noqa: BLE001 - a cache outage must not stop the sweep
        logger.warning("could not record the sweep time in the cache", exc_info=True)


# --- exposition ------------------------------------------------------------------------------
def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR")


def process_registry() -> CollectorRegistry:
    """This process tree's counters and histograms: summed over the multiprocess directory
    when there is one (gunicorn workers, Celery's prefork children), else this process's own."""
    if multiprocess_dir():
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return registry
    return REGISTRY


def token_allowed(header: str | None) -> bool:
    """METRICS_TOKEN set: the scrape must send `Authorization: Bearer <it>`."""
    token = settings.METRICS_TOKEN
    if not token:
        return True
    scheme, _, given = (header or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip(), token)

"""/metrics: state read from the counters and index probes, the processes' counters, the token,
request ids; and prometheus-client's multiprocess mode through a real gunicorn."""

import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from api import metrics, metrics_server, tasks
from api.metrics import METRICS
from api.models import MessageStatus
from api.tests.servers import ROOT, free_port, gunicorn, scratch_env
from api.tests.test_dispatch import make_campaign, run_dispatch


def fetch(url: str, **headers) -> str:
    request = urllib.request.Request(url, headers=headers)  # noqa: S310 - local
    return urllib.request.urlopen(request, timeout=30).read().decode()  # noqa: S310 - local


def samples(text: str) -> dict[tuple[str, tuple], float]:
    """{(sample name, sorted labels): value} of a Prometheus text exposition."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def scrape(client, **headers) -> dict:
    response = client.get("/metrics", **headers)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    return samples(response.content.decode())


def value(found: dict, name: str, **labels) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.mark.django_db
def test_a_delivery_shows_in_state_and_send_metrics(client, gateway, http_provider):
    before = scrape(client)
    campaign, run = make_campaign(clients=6)
    gateway.script(503, count=1)

    run_dispatch(http_provider)
    after = scrape(client)

    def grew(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert value(after, "tds_messages", status="sent") == 5
    assert value(after, "tds_messages", status="pending") == 1  # the 503, retried later
    assert value(after, "tds_messages_due") == 0  # its retry is not due yet
    assert value(after, "tds_campaign_runs", status="running") == 1
    assert grew("tds_sends_total", outcome="sent") == 5
    assert grew("tds_sends_total", outcome="retry") == 1
    assert grew("tds_messages_claimed_total") == 6
    assert grew("tds_gateway_responses_total", code="200") == 5
    assert grew("tds_gateway_responses_total", code="503") == 1
    assert grew("tds_send_duration_seconds_count") == 6
    assert grew("tds_planned_messages_total") == 6
    assert grew("tds_planning_duration_seconds_count") == 1


@pytest.mark.django_db
def test_due_backlog_and_its_oldest_message(client, settings):
    campaign, run = make_campaign(clients=5)
    now = timezone.now()
    run.messages.update(next_attempt_at=now - timedelta(seconds=300))
    run.messages.filter(pk=run.messages.order_by("pk").first().pk).update(
        next_attempt_at=now + timedelta(hours=1)
    )

    found = scrape(client)
    assert value(found, "tds_messages_due") == 4
    assert 300 <= value(found, "tds_oldest_due_message_age_seconds") < 330

    settings.METRICS_DUE_LIMIT = 3  # the count is an index walk, capped
    assert value(scrape(client), "tds_messages_due") == 3

    run.messages.update(status=MessageStatus.SENT)
    found = scrape(client)
    assert value(found, "tds_messages_due") == 0
    assert value(found, "tds_oldest_due_message_age_seconds") == 0


@pytest.mark.django_db
def test_a_scrape_never_counts_the_message_table(client):
    make_campaign(clients=3)
    with CaptureQueriesContext(connection) as queries:
        scrape(client)
    touching = [q["sql"] for q in queries if "api_message" in q["sql"]]
    assert touching, "the due probes read the message table"
    for sql in touching:
        assert "LIMIT" in sql.upper(), sql  # probes and a capped count, never a full count
        assert "api_message" not in sql.split("WHERE")[1] or "next_attempt_at" in sql, sql


@pytest.mark.django_db
def test_the_sweep_leaves_its_time(client):
    tasks.sweep()
    assert abs(value(scrape(client), "tds_last_sweep_timestamp_seconds") - time.time()) < 30


@pytest.mark.django_db
def test_every_exported_tds_metric_is_documented_and_vice_versa(client, gateway, http_provider):
    make_campaign(clients=1)
    run_dispatch(http_provider)
    client.get("/healthz")
    names = set()
    for family in text_string_to_metric_families(client.get("/metrics").content.decode()):
        if family.name.startswith("tds_"):
            kind = METRICS.get(family.name) or METRICS.get(family.name + "_total")
            assert kind, f"{family.name} is not in api.metrics.METRICS"
            assert family.type == kind[0], family.name
            names.add(family.name + ("_total" if family.type == "counter" else ""))
    # The broker gauge needs a Redis broker; everything else is exported here.
    assert set(METRICS) - names <= {"tds_broker_queue_length"}


@pytest.mark.django_db
def test_the_token_guards_metrics(client, settings):
    settings.METRICS_TOKEN = "s3cret-metrics"
    refused = client.get("/metrics")
    assert refused.status_code == 401
    assert refused["WWW-Authenticate"].startswith("Bearer")
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Basic s3cret-metrics").status_code == 401
    scrape(client, HTTP_AUTHORIZATION="Bearer s3cret-metrics")


@pytest.mark.django_db
def test_the_worker_metrics_server(settings):
    settings.METRICS_TOKEN = "worker-token"
    port = free_port()
    server = metrics_server.start(port, host="127.0.0.1")
    try:
        url = f"http://127.0.0.1:{port}"
        with pytest.raises(urllib.error.HTTPError) as refused:
            fetch(f"{url}/metrics")
        assert refused.value.code == 401
        with pytest.raises(urllib.error.HTTPError) as missing:
            fetch(f"{url}/other")
        assert missing.value.code == 404
        metrics.record_claimed(1)
        body = fetch(f"{url}/metrics", Authorization="Bearer worker-token")
        assert value(samples(body), "tds_messages_claimed_total") >= 1
        assert "tds_messages_due" not in body  # state is the API's, exported once
        # A port already taken: the worker logs it and goes on sending.
        assert metrics_server.start(port, host="127.0.0.1") is None
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.django_db
def test_request_latency_by_route_and_request_ids(client):
    before = scrape(client)
    response = client.get("/healthz")
    assert len(response["X-Request-ID"]) == 32
    assert client.get("/healthz", HTTP_X_REQUEST_ID="edge-42.a")["X-Request-ID"] == "edge-42.a"
    forged = client.get("/healthz", HTTP_X_REQUEST_ID="bad id\nInjected: 1")["X-Request-ID"]
    assert forged != "bad id\nInjected: 1" and len(forged) == 32
    client.get("/no/such/page")
    client.generic("BREW", "/healthz")
    after = scrape(client)

    def grew(**labels):
        name = "tds_http_request_duration_seconds_count"
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew(method="GET", route="healthz", status="200") == 3
    assert grew(method="GET", route="unmatched", status="404") == 1
    assert grew(method="other", route="healthz", status="405") == 1


def test_gunicorn_workers_are_summed_in_one_scrape(tmp_path):
    env = scratch_env(tmp_path, METRICS_DIR=str(tmp_path / "metrics"))
    with gunicorn(env, "--workers", "3") as port:
        url = f"http://127.0.0.1:{port}"
        for _ in range(30):  # one connection each: spread over the workers
            fetch(f"{url}/healthz")
        fetch(f"{url}/healthz")
        dirs = list((tmp_path / "metrics").iterdir())
        assert len(dirs) == 1 and dirs[0].name.startswith("tds-metrics-web-")
        files = list(dirs[0].iterdir())
        body = fetch(f"{url}/metrics")
        found = samples(body)
        assert "python_gc_objects_collected_total" not in body  # the multiprocess registry
        name = "tds_http_request_duration_seconds_count"
        # Whichever worker answered the scrape, it summed every worker's files: 31 requests
        # and the one that told servers.gunicorn the server was ready.
        assert value(found, name, method="GET", route="healthz", status="200") == 32
        assert any(f.name.startswith("histogram_") for f in files)  # a file per worker process
    assert not (tmp_path / "metrics" / dirs[0].name).exists()  # removed with the server


def test_the_multiprocess_directory_is_set_once_per_launcher(tmp_path):
    """Before prometheus_client is imported; again in the same process (gunicorn re-reads its
    config on SIGHUP) the same folder; removed when the launcher exits."""
    script = (
        "import os, prometheus_client.values as v\n"
        "assert v.ValueClass.__name__ != 'MutexValue', 'multiprocess mode is on'\n"
        "print(os.environ['PROMETHEUS_MULTIPROC_DIR'])\n"
    )
    code = (
        "import os, subprocess, sys\n"
        "from api import metrics_setup as m\n"
        "first = m.prepare('test')\n"
        "import prometheus_client\n"
        "assert m.prepare('test') == first\n"
        f"out = subprocess.run([sys.executable, '-c', {script!r}], capture_output=True,"
        " text=True, check=True).stdout.strip()\n"
        "assert out == first, (out, first)\n"
        "print(first)\n"
    )
    env = scratch_env(tmp_path, METRICS_DIR=str(tmp_path / "m"))
    result = subprocess.run(  # noqa: S603 - our own interpreter and code
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    folder = Path(result.stdout.strip())
    assert folder.parent == tmp_path / "m" and not folder.exists()

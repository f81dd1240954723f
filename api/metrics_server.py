"""The Celery worker's /metrics: a small HTTP server in a thread of the worker's main process,
summing its prefork children's counters (prometheus-client multiprocess mode). The same
bearer token as the API's (METRICS_TOKEN); binds BIND_ADDRESS (default 127.0.0.1)."""

from __future__ import annotations

import logging
import os
import threading
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import generate_latest

from api import metrics

logger = logging.getLogger(__name__)


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - scrapes every 15 s are not news
        pass


def app(environ, start_response):
    if environ.get("PATH_INFO", "/") not in ("/metrics", "/metrics/"):
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found: try /metrics\n"]
    if not metrics.token_allowed(environ.get("HTTP_AUTHORIZATION")):
        start_response(
            "401 Unauthorized",
            [("Content-Type", "text/plain"), ("WWW-Authenticate", 'Bearer realm="metrics"')],
        )
        return [b"metrics token required\n"]
    body = generate_latest(metrics.process_registry())
    start_response("200 OK", [("Content-Type", metrics.CONTENT_TYPE)])
    return [body]


def start(port: int, host: str | None = None) -> _Server | None:
    host = host or os.environ.get("BIND_ADDRESS") or "127.0.0.1"
    try:
        server = make_server(host, port, app, server_class=_Server, handler_class=_QuietHandler)
    except OSError as exc:
        # Metrics are not worth refusing to send messages for; say so loudly.
        logger.error("worker metrics not served on %s:%s: %s", host, port, exc)
        return None
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    logger.info("worker metrics on http://%s:%s/metrics", host, port)
    return server

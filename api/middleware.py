"""Every API request gets a request id (X-Request-ID, echoed; a well-formed one from the caller
or a proxy is kept), its latency in tds_http_request_duration_seconds by route, and, with
LOG_FORMAT=json, one access line with the request's fields (gunicorn's text access log is off
then: api/logs.py, gunicorn.conf.py)."""

from __future__ import annotations

import logging
import re
import time
import uuid

from django.conf import settings

from api import logs, metrics
from api.phones import scrub_phones

access_logger = logging.getLogger("api.access")
REQUEST_ID_RE = re.compile(r"[A-Za-z0-9._-]{1,64}\Z")
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def route_of(request) -> str:
    """A bounded label: the URL pattern's name (not the path, which holds ids)."""
    match = getattr(request, "resolver_match", None)
    if match is None:
        return "unmatched"
    return match.view_name or match.route or "unnamed"


class RequestObservabilityMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response
        self.access_log = settings.LOG_FORMAT == "json"

    def __call__(self, request):
        given = request.headers.get("X-Request-ID", "")
        request_id = given if REQUEST_ID_RE.match(given) else uuid.uuid4().hex
        token = logs.request_id.set(request_id)
        started = time.perf_counter()
        try:
            response = self.get_response(request)
        finally:
            logs.request_id.reset(token)
        elapsed = time.perf_counter() - started
        response["X-Request-ID"] = request_id
        route = route_of(request)
        method = request.method if request.method in METHODS else "other"
        metrics.HTTP_REQUEST_DURATION.labels(method, route, str(response.status_code)).observe(
            elapsed
        )
        if self.access_log:
            user = getattr(request, "user", None)
            access_logger.info(
                "%s %s %s",
                request.method,
                scrub_phones(request.get_full_path(), min_digits=7),
                response.status_code,
                extra={
                    "request_id": request_id,
                    "method": request.method,
                    "route": route,
                    "status": response.status_code,
                    "duration_ms": round(elapsed * 1000, 3),
                    "user_id": getattr(user, "pk", None) if user is not None else None,
                    "remote_addr": request.META.get("REMOTE_ADDR", ""),
                },
            )
        return response

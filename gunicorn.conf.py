"""gunicorn settings read from the project directory (gunicorn loads ./gunicorn.conf.py by
itself); the command line still sets bind, workers and threads."""

import gc


def post_worker_init(worker):
    """Move everything the worker has loaded (Django, DRF, the URLconf and every view) into
    Python's permanent GC generation. Without it each full collection walks ~100,000 long-lived
    objects, and requests that make short-lived cycles (every Django request does) trigger one
    every few dozen requests: a 30-70 ms stall that was most of the stats endpoints' p99
    (bench/bench_stats.py)."""
    from django.urls import get_resolver

    get_resolver().url_patterns  # noqa: B018 - imports every view, serializer and filter
    gc.collect()
    gc.freeze()


# --- access log: full phone numbers never reach it -------------------------------------------
import os  # noqa: E402
import sys  # noqa: E402

from gunicorn.glogging import Logger  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from api.phones import scrub_phones  # noqa: E402 - Django-free


class MaskingLogger(Logger):
    """The access log with every run of 7+ digits in the request line, query string, referrer,
    user agent and request headers masked (`GET /api/clients/?phone_number=79161234567` is a
    common call)."""

    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        for key, value in atoms.items():
            # The request line, path, query, referrer, user agent and request headers; not the
            # sizes and durations, which may be long numbers too.
            if isinstance(value, str) and (key in ("r", "U", "q", "f", "a") or key.endswith("}i")):
                atoms[key] = scrub_phones(value, min_digits=7)
        return atoms


logger_class = MaskingLogger

# --- metrics: the workers' counters summed by /metrics (api/metrics_setup.py) ----------------
from api import metrics_setup  # noqa: E402 - Django-free

metrics_setup.prepare("web")


def child_exit(server, worker):
    metrics_setup.child_exited(worker.pid)


# --- logs: LOG_FORMAT=json makes gunicorn's own lines JSON too; the access lines then come
# from the API (api/middleware.py, with the request id and route), not gunicorn's text format.
from api.logs import logging_config  # noqa: E402 - Django-free

_log_format = (os.environ.get("LOG_FORMAT") or "plain").strip().lower()
if _log_format == "json":
    _config = logging_config("json", (os.environ.get("LOG_LEVEL") or "INFO").upper())
    _config["loggers"].update(
        {
            "gunicorn.error": {"handlers": ["console"], "level": "INFO", "propagate": False},
            # With a logging config gunicorn logs access lines whatever `accesslog` says: the
            # API's own access line (request id, route) replaces them.
            "gunicorn.access": {"handlers": [], "level": "CRITICAL", "propagate": False},
        }
    )
    logconfig_dict = _config
    accesslog = None
else:
    # GUNICORN_ACCESS_LOG: "-" (stdout, the default), a file path, or off (benchmarks).
    _access = os.environ.get("GUNICORN_ACCESS_LOG", "-")
    accesslog = None if _access.strip().lower() in ("", "off", "false", "none") else _access

# The longest request line gunicorn takes (its maximum); a longer one is a 414 (documented in
# the schema). Long audience filters belong in a POST body, not in a query string.
limit_request_line = 8190

# gunicorn 27's control socket (a Unix socket in $HOME/.gunicorn) is unused here; in the image
# the home folder is read-only, and servers on one host would share the one default path.
control_socket_disable = True

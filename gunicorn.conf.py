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
from api.masking import scrub_phones  # noqa: E402 - Django-free


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

# The longest request line gunicorn takes (its maximum); a longer one is a 414 (documented in
# the schema). Long audience filters belong in a POST body, not in a query string.
limit_request_line = 8190

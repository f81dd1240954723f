"""Log configuration for every process (Django, gunicorn, Celery): LOG_FORMAT=plain|json.

json: one JSON object per line (python-json-logger) with `time`, `level`, `logger`, `message`,
and, wherever they apply, `campaign_id`, `run_id`, `message_id`, `client_id` (passed as
`extra=`) and the API's `request_id`. Phone numbers are masked where they are logged, and in
tracebacks whatever raised; tokens are never logged. Django-free: gunicorn's
config imports it before Django is set up.
"""

from __future__ import annotations

import contextvars
import logging

from pythonjsonlogger.json import JsonFormatter as _JsonFormatter

from api.phones import scrub_phones

FORMATS = ("plain", "json")

# The API request being served by this thread (set by api.middleware); "" outside requests.
request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")

# Ids a log call may pass as `extra=` (JSON keys; the plain format has them in its text).
CONTEXT_FIELDS = ("request_id", "campaign_id", "run_id", "message_id", "client_id")


class ContextFilter(logging.Filter):
    """Adds the current request id to records logged while an API request is served."""

    def filter(self, record: logging.LogRecord) -> bool:
        current = request_id.get()
        if current and not getattr(record, "request_id", None):
            record.request_id = current
        return True


class JsonFormatter(_JsonFormatter):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault(
            "rename_fields", {"levelname": "level", "asctime": "time", "name": "logger"}
        )
        kwargs.setdefault("timestamp", False)
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s", *args, **kwargs)

    def process_log_record(self, log_data):
        # Tracebacks may quote input (a phone in an error message); our own messages mask
        # phones where they log them, and scrubbing every long number there would also mask
        # message ids, task ids and durations (the ids a reader follows).
        for key in ("exc_info", "stack_info"):
            value = log_data.get(key)
            if isinstance(value, str):
                log_data[key] = scrub_phones(value, min_digits=7)
        return super().process_log_record(log_data)


class PlainFormatter(logging.Formatter):
    """`time level logger message`, plus the request id on API lines (the ids are in the
    message text already)."""

    def __init__(self):
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        current = getattr(record, "request_id", "")
        return f"{text} request_id={current}" if current else text


def logging_config(log_format: str, level: str) -> dict:
    """The dictConfig for Django's LOGGING (also applied to Celery's processes in json mode
    and mirrored by gunicorn's own loggers)."""
    if log_format not in FORMATS:
        raise ValueError(f"LOG_FORMAT must be one of {', '.join(FORMATS)}, not {log_format!r}")
    console = {
        "class": "logging.StreamHandler",
        "formatter": log_format,
        "filters": ["context"],
    }
    ours = {"handlers": ["console"], "level": level, "propagate": False}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"context": {"()": "api.logs.ContextFilter"}},
        "formatters": {
            "plain": {"()": "api.logs.PlainFormatter"},
            "json": {"()": "api.logs.JsonFormatter"},
        },
        "handlers": {"console": console},
        "root": {"handlers": ["console"], "level": "WARNING"},
        "loggers": {
            "api": ours,
            # Celery's own lines (task received/succeeded, worker ready) when it logs through
            # this configuration (json mode); in plain mode Celery configures itself.
            "celery": {**ours, "level": "INFO" if level == "DEBUG" else level},
        },
    }

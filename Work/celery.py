"""Celery application: the worker runs api.tasks, beat runs the dispatch sweep."""

import os
import sys

from celery import Celery
from celery.signals import (
    celeryd_init,
    setup_logging,
    worker_init,
    worker_process_shutdown,
    worker_ready,
)

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "Work.settings")

app = Celery("Work")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.on_after_finalize.connect
def schedule_sweep(sender, **kwargs):
    from django.conf import settings

    from Work.schedules import (
        daily_at,
        every,
    )  # a last run "in the future" (clock went back) is due

    sender.add_periodic_task(
        every(settings.DISPATCH_INTERVAL_SECONDS),
        sender.signature("api.tasks.sweep"),
        name="dispatch sweep",
    )
    sender.add_periodic_task(
        every(settings.MESSAGE_COMPACTION_INTERVAL_SECONDS),
        sender.signature("api.tasks.compact_messages"),
        name="message partition compaction",
    )
    sender.add_periodic_task(
        every(24 * 3600),
        sender.signature("api.tasks.flush_expired_tokens"),
        name="expired refresh tokens",
    )
    report_hour, report_minute = settings.STATS_EMAIL_TIME.split(":")
    sender.add_periodic_task(
        daily_at(int(report_hour), int(report_minute)),  # in CELERY_TIMEZONE
        sender.signature("api.tasks.send_daily_report"),
        name="daily report",
    )
    sender.add_periodic_task(
        every(settings.STATS_EMAIL_CATCH_UP_SECONDS),  # a day missed (beat down), a failed send
        sender.signature("api.tasks.send_daily_report"),
        name="daily report catch-up",
    )


@worker_init.connect
def refuse_a_bad_gateway_configuration(**kwargs):
    """A worker with an unusable SMS_GATEWAY_URL/_TOKEN stops at start-up, saying why."""
    from api.checks import gateway_settings_error

    error = gateway_settings_error()
    if error:
        raise SystemExit(f"Refusing to start the worker: {error}")


# --- metrics: WORKER_METRICS_PORT serves /metrics, summed over the worker's prefork children --
def _worker_command() -> bool:
    return "worker" in sys.argv[1:]


# Here, at import, because the multiprocess directory must be set before anything imports
# prometheus_client (Celery's Django fixup runs the system checks, which load the URLconf and
# the metrics, before its first worker signal), and before the pool forks.
if os.environ.get("WORKER_METRICS_PORT") and _worker_command():
    from api import metrics_setup

    metrics_setup.prepare("worker")


@worker_ready.connect
def serve_metrics(**kwargs):
    port = os.environ.get("WORKER_METRICS_PORT")
    if port:
        from api.metrics_server import start

        start(int(port))


@worker_process_shutdown.connect
def forget_child_metrics(pid=None, **kwargs):
    from api import metrics_setup

    metrics_setup.child_exited(pid or os.getpid())


# --- logs: with LOG_FORMAT=json Celery logs through the project's configuration (api/logs.py) -
if (os.environ.get("LOG_FORMAT") or "").strip().lower() == "json":
    import logging
    import logging.config

    from api.logs import logging_config

    # From the start: warnings printed before Celery sets up its logging become JSON lines too.
    logging.captureWarnings(True)
    logging.config.dictConfig(
        logging_config("json", (os.environ.get("LOG_LEVEL") or "INFO").upper())
    )

    @celeryd_init.connect
    def no_banner(instance=None, **kwargs):
        """The start-up banner is printed, not logged: it would break one-JSON-per-line."""
        if instance is not None:
            instance.quiet = True

    @setup_logging.connect
    def json_logging(**kwargs):
        from django.conf import settings

        logging.config.dictConfig(settings.LOGGING)

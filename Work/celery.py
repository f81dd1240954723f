"""Celery application: the worker runs api.tasks, beat runs the dispatch sweep."""

import os

from celery import Celery
from celery.signals import worker_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "Work.settings")

app = Celery("Work")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.on_after_finalize.connect
def schedule_sweep(sender, **kwargs):
    from django.conf import settings

    sender.add_periodic_task(
        settings.DISPATCH_INTERVAL_SECONDS,
        sender.signature("api.tasks.sweep"),
        name="dispatch sweep",
    )
    sender.add_periodic_task(
        settings.MESSAGE_COMPACTION_INTERVAL_SECONDS,
        sender.signature("api.tasks.compact_messages"),
        name="message partition compaction",
    )
    sender.add_periodic_task(
        24 * 3600,
        sender.signature("api.tasks.flush_expired_tokens"),
        name="expired refresh tokens",
    )


@worker_init.connect
def refuse_a_bad_gateway_configuration(**kwargs):
    """A worker with an unusable SMS_GATEWAY_URL/_TOKEN stops at start-up, saying why."""
    from api.checks import gateway_settings_error

    error = gateway_settings_error()
    if error:
        raise SystemExit(f"Refusing to start the worker: {error}")

"""Celery application: the worker runs api.tasks, beat runs the dispatch sweep."""

import os

from celery import Celery

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

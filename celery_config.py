"""Seed compatibility: `celery -A celery_config worker` works; prefer `celery -A Work`."""

from Work.celery import app

__all__ = ("app",)

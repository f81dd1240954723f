"""Probes for images, compose and Kubernetes: unauthenticated, cheap, JSON.

- /healthz: the process answers (no dependency is touched), for liveness.
- /readyz: the database answers and has every migration applied, and the Celery broker takes a
  connection, for readiness. 503 naming what is not ready otherwise.
"""

from __future__ import annotations

import logging
import os

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

logger = logging.getLogger(__name__)
_migrated = False  # once true it stays true for this process: migrations only get applied


@never_cache
@require_GET
def healthz(request):
    return JsonResponse({"status": "ok"})


def _database() -> str | None:
    global _migrated
    try:
        connection = connections[DEFAULT_DB_ALIAS]
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        if not _migrated:
            from django.db.migrations.executor import MigrationExecutor

            executor = MigrationExecutor(connection)
            if executor.migration_plan(executor.loader.graph.leaf_nodes()):
                return "migrations not applied"
            _migrated = True
    except Exception as exc:  # noqa: BLE001 - any failure means not ready; say which kind
        return f"unreachable ({type(exc).__name__})"
    return None


def _broker() -> str | None:
    url = settings.CELERY_BROKER_URL
    if url.startswith("filesystem://"):
        folder = settings.CELERY_BROKER_TRANSPORT_OPTIONS["data_folder_in"]
        return None if os.access(folder, os.W_OK) else "broker folder not writable"
    try:
        from kombu import Connection

        with Connection(url, connect_timeout=2) as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
    except Exception as exc:  # noqa: BLE001
        return f"unreachable ({type(exc).__name__})"
    return None


@never_cache
@require_GET
def readyz(request):
    checks = {"database": _database(), "broker": _broker()}
    failing = {name: problem for name, problem in checks.items() if problem}
    if failing:
        logger.warning("not ready: %s", failing)
        return JsonResponse({"status": "not ready", "failing": failing}, status=503)
    return JsonResponse({"status": "ready", "checks": dict.fromkeys(checks, "ok")})

"""List endpoints at a million messages: keyset (cursor) pagination, no COUNT(*).

    .venv/bin/python bench/bench_api.py --messages 1000000 --requests 300

Seeds N messages (set-based SQL), then times GET /api/messages/ (first page, deep pages reached
by following `next`, and filtered by campaign and status) through Django's full request stack
with a real JWT. Prints req/s and p50/p99 per case, and the SQL of one page (no COUNT).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench import common, db, fixtures  # noqa: E402

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/tds_bench_api"


def timed_requests(client, urls, headers) -> list[float]:
    latencies = []
    for url in urls:
        started = time.perf_counter()
        response = client.get(url, **headers)
        latencies.append(time.perf_counter() - started)
        assert response.status_code == 200, response.content[:200]
    return latencies


def report(name: str, latencies: list[float]) -> None:
    ordered = sorted(latencies)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    print(
        f"{name:34} {len(latencies) / sum(latencies):7.0f} req/s"
        f"   p50 {common.median(latencies) * 1000:6.1f} ms   p99 {p99 * 1000:6.1f} ms"
    )


def main() -> None:
    parser = common.arguments(__doc__)
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()

    common.setup_django(
        database_url=os.environ.get("BENCH_API_DATABASE_URL", DEFAULT_URL),
        migrate=False,  # prepare_messages migrates
        extra_env={
            "LOG_LEVEL": "ERROR",
            "DJANGO_ALLOWED_HOSTS": "testserver",
            # This one has always run with the settings' default, DEBUG on.
            "DJANGO_DEBUG": os.environ.get("DJANGO_DEBUG", "true"),
        },
    )
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from rest_framework.test import APIClient
    from rest_framework_simplejwt.tokens import RefreshToken

    print(f"seeding {args.messages} messages ...", flush=True)
    fixtures.prepare_messages(args.messages)
    # Half of them sent, so the status filter is selective.
    db.execute("UPDATE api_message SET status = 'sent' WHERE id % 2 = 0")
    db.vacuum_analyze("api_message")
    token = str(RefreshToken.for_user(fixtures.api_user("bench")).access_token)
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    client = APIClient()

    first = ["/api/messages/?page_size=50"] * args.requests
    report("first page (50)", timed_requests(client, first, headers))

    first_page = "/api/messages/?page_size=1000"
    deep, next_url = [], first_page
    for _ in range(args.requests):
        link = client.get(next_url, **headers).json()["next"]
        next_url = link.replace("http://testserver", "") if link else first_page
        deep.append(next_url)
    report("deep pages (cursor, walked)", timed_requests(client, deep, headers))

    filtered = ["/api/messages/?campaign=1&status=sent&page_size=50"] * args.requests
    report("filtered campaign+status", timed_requests(client, filtered, headers))

    with CaptureQueriesContext(connection) as queries:
        client.get(deep[-1], **headers)
    page_sql = [q["sql"] for q in queries.captured_queries if "api_message" in q["sql"]]
    print("\nSQL of a deep page:", page_sql[-1][:300])
    print("COUNT in any list query:", any("COUNT(" in q.upper() for q in page_sql))


if __name__ == "__main__":
    main()

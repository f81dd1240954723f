"""Scenario data: clients written straight to the database, campaigns created through the API
(a real gunicorn), and reads of the scenario's database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

OPEN_STATUSES = ("pending", "sending", "paused")


def create_clients(stack, chaos, *, tag: str, count: int) -> list[str]:
    """`count` clients with `tag` and fresh phone numbers (remembered for the log scan)."""
    first = len(chaos.phones)
    phones = [f"79{(first + i) % 10**9:09d}" for i in range(count)]
    chaos.phones.extend(phones)
    stack.django(  # the same numbers, made there (a list of them can pass ARG_MAX)
        "from api.models import Client;"
        f"Client.objects.bulk_create([Client(phone_number=f'79{{({first} + i) % 10**9:09d}}',"
        f" mobile_operator_code='900', tag={tag!r}) for i in range({count})], batch_size=5000)"
    )
    return phones


def create_campaign(stack, *, tag: str, ends_in: float = 3600, **fields) -> int:
    now = datetime.now(UTC)
    body = {
        "text_message": f"chaos {stack.name}",
        "tag": tag,
        "start_datetime": (now - timedelta(seconds=5)).isoformat(),
        "end_datetime": (now + timedelta(seconds=ends_in)).isoformat(),
        **fields,
    }
    status, reply = stack.request("POST", "/api/campaigns/", body)
    assert status == 201, reply
    return reply["id"]


def run_ids(stack, campaign_id: int) -> list[int]:
    with stack.cluster.connect(stack.database) as conn:
        rows = conn.execute(
            "SELECT id FROM api_campaignrun WHERE campaign_id = %s ORDER BY id", [campaign_id]
        ).fetchall()
    return [row[0] for row in rows]


def counts(stack, campaign_id: int) -> dict[str, int]:
    with stack.cluster.connect(stack.database) as conn:
        rows = conn.execute(
            "SELECT m.status, count(*) FROM api_message m JOIN api_campaignrun r"
            " ON r.id = m.run_id WHERE r.campaign_id = %s GROUP BY m.status",
            [campaign_id],
        ).fetchall()
    return dict(rows)


def sql(stack, query: str, params=()) -> list[tuple]:
    with stack.cluster.connect(stack.database) as conn:
        return conn.execute(query, params).fetchall()


def settled(stack, campaign_id: int, expected: int) -> bool:
    found = counts(stack, campaign_id)
    return sum(found.values()) == expected and not any(found.get(s) for s in OPEN_STATUSES)


def wait_settled(stack, campaign_id: int, expected: int, *, timeout: float) -> float:
    return stack.wait_until(
        lambda: settled(stack, campaign_id, expected),
        timeout=timeout,
        what=f"campaign {campaign_id} settled ({expected} messages)",
    )

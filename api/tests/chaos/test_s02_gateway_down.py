"""Scenario 2: the gateway is down for a while, then back.

Nothing ends `failed` because of the outage; delivery resumes by itself; retries during the
outage stay bounded by the backoff (no hot loop); other campaigns' bookkeeping goes on."""

import time

from .campaigns import counts, create_campaign, create_clients, run_ids, sql, wait_settled
from .conftest import LARGE
from .reconcile import read_receipts, reconcile, report

SIZE = 1000 if LARGE else 200
OUTAGE = 60 if LARGE else 20
RETRY_MAX = 4.0
INTERVAL = 5.0


def attempts(stack) -> int:
    return sql(stack, "SELECT coalesce(sum(attempts), 0) FROM api_message")[0][0]


def test_a_gateway_outage_fails_nothing_and_delivery_resumes(chaos, make_stack):
    stack = make_stack(
        SMS_RETRY_BASE_SECONDS=1,
        SMS_RETRY_MAX_SECONDS=RETRY_MAX,
        SMS_MAX_ATTEMPTS=40,
        SMS_RATE_LIMIT=50,
        DISPATCH_INTERVAL_SECONDS=INTERVAL,
    )
    stack.start_all()
    stack.log_in(chaos.secret)
    create_clients(stack, chaos, tag="outage", count=SIZE)
    create_clients(stack, chaos, tag="ending", count=20)
    campaign = create_campaign(stack, tag="outage")
    stack.wait_until(
        lambda: counts(stack, campaign).get("sent", 0) >= SIZE // 10,
        timeout=120,
        what="sending started",
    )

    stack.gateway.stop(timeout=2)
    down_at = time.time()
    ending = create_campaign(stack, tag="ending", ends_in=OUTAGE / 2)  # ends during the outage
    time.sleep(OUTAGE / 2)
    attempts_half = attempts(stack)
    time.sleep(OUTAGE / 2)
    rate = (attempts(stack) - attempts_half) / (OUTAGE / 2)
    stack.start_gateway()
    up_at = time.time()
    wait_settled(stack, campaign, SIZE, timeout=300)

    receipts = read_receipts(stack.receipts)
    resumed_after = min(r["at"] for r in receipts if r["at"] > up_at) - up_at
    result = reconcile(stack)
    result.extra.update(
        outage_seconds=round(up_at - down_at, 1),
        attempts_per_second_in_outage=round(rate, 1),
        resumed_after_seconds=round(resumed_after, 1),
    )
    report(result, chaos.results)
    result.assert_clean()
    assert counts(stack, campaign) == {"sent": SIZE}  # nothing failed because of the outage
    # Each message retries at most once per RETRY_MAX / 2 seconds once its backoff has grown.
    assert rate <= SIZE / (RETRY_MAX / 2), rate
    assert resumed_after <= INTERVAL + 1, resumed_after
    assert counts(stack, ending) == {"expired": 20}  # expired during the outage
    status, stats = stack.get(f"/api/campaigns/{ending}/stats/")
    assert status == 200 and stats["status"] == "finished", stats
    assert (
        sql(
            stack,
            "SELECT count(*) FROM api_campaignrun WHERE id = ANY(%s)",
            [run_ids(stack, ending)],
        )[0][0]
        == 1
    )

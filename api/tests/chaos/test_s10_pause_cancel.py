"""Scenario 10: pause and cancel while 20 dispatchers are sending.

Nothing may be sent after the pause/cancel response returns beyond what the dispatchers had
already handed to the provider (at most 2 x SMS_CONCURRENCY each) and what they start before
their next run check (RUN_CHECK_SECONDS): measured here, documented in README "Guarantees"."""

import time

from .campaigns import counts, create_campaign, create_clients, sql, wait_settled
from .conftest import LARGE
from .reconcile import read_receipts, reconcile, report

SIZE = 5000 if LARGE else 1500
DISPATCHERS, CONCURRENCY, RATE = 20, 5, 300


def ids_of(stack, campaign) -> set[int]:
    rows = sql(
        stack,
        "SELECT m.id FROM api_message m JOIN api_campaignrun r ON r.id = m.run_id"
        " WHERE r.campaign_id = %s",
        [campaign],
    )
    return {row[0] for row in rows}


def test_pause_and_cancel_stop_twenty_dispatchers(chaos, make_stack):
    stack = make_stack(
        WORKER_CONCURRENCY=DISPATCHERS // 2,
        SMS_CONCURRENCY=CONCURRENCY,
        SMS_RATE_LIMIT=RATE,
        DISPATCH_BATCH_SIZE=50,
    )
    stack.start_all(workers=2, gateway_faults="--latency-ms 20")
    stack.log_in(chaos.secret)
    create_clients(stack, chaos, tag="steer", count=SIZE)
    paused, cancelled = create_campaign(stack, tag="steer"), create_campaign(stack, tag="steer")
    stack.django(
        "from api.tasks import dispatch_messages\n"
        f"for _ in range({DISPATCHERS}): dispatch_messages.delay()"
    )
    stack.wait_until(
        lambda: counts(stack, paused).get("sent", 0) >= SIZE // 5,
        timeout=120,
        what="sending started",
    )

    assert stack.request("POST", f"/api/campaigns/{paused}/pause/")[0] == 200
    paused_at = time.time()
    assert stack.request("POST", f"/api/campaigns/{cancelled}/cancel/")[0] == 200
    cancelled_at = time.time()
    wait_settled(stack, cancelled, SIZE, timeout=300)
    time.sleep(3)
    receipts = read_receipts(stack.receipts)
    after_pause = sum(
        1 for r in receipts if r["id"] in ids_of(stack, paused) and r["at"] > paused_at
    )
    after_cancel = sum(
        1 for r in receipts if r["id"] in ids_of(stack, cancelled) and r["at"] > cancelled_at
    )
    held_back = counts(stack, paused)
    assert stack.request("POST", f"/api/campaigns/{paused}/resume/")[0] == 200
    wait_settled(stack, paused, SIZE, timeout=300)

    result = reconcile(stack)
    bound = DISPATCHERS * (2 * CONCURRENCY) + RATE
    result.extra.update(
        sent_after_pause=after_pause,
        sent_after_cancel=after_cancel,
        bound=bound,
        paused_campaign_when_paused=held_back,
    )
    report(result, chaos.results)
    result.assert_clean()
    assert held_back.get("paused"), held_back  # the pause really held messages back
    assert after_pause <= bound and after_cancel <= bound, (after_pause, after_cancel)
    assert counts(stack, paused) == {"sent": SIZE}
    assert set(counts(stack, cancelled)) == {"sent", "cancelled"}

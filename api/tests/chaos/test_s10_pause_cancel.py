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


def steer(stack, campaign: int, action: str) -> tuple[int, dict]:
    """Once a fifth of the campaign is sent, pause or cancel it; returns the requests for its
    messages that reached the gateway after the response, and its counts then."""
    stack.wait_until(
        lambda: counts(stack, campaign).get("sent", 0) >= SIZE // 5,
        timeout=120,
        what=f"sending before the {action}",
    )
    assert stack.request("POST", f"/api/campaigns/{campaign}/{action}/")[0] == 200
    answered_at = time.time()
    time.sleep(3)
    ids = ids_of(stack, campaign)
    late = sum(1 for r in read_receipts(stack.receipts) if r["id"] in ids and r["at"] > answered_at)
    return late, counts(stack, campaign)


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
    after_pause, held_back = steer(stack, paused, "pause")
    # The paused campaign's messages wait; the other one is sent now, and cancelled mid-way.
    after_cancel, _ = steer(stack, cancelled, "cancel")
    wait_settled(stack, cancelled, SIZE, timeout=300)
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

"""Scenario 1: a gateway answering 30 % 503, 10 % accepting without answering, 5 % 429."""

from collections import Counter, defaultdict

from .campaigns import create_campaign, create_clients, run_ids, sql, wait_settled
from .conftest import LARGE
from .reconcile import read_receipts, reconcile, report

SIZE = 3000 if LARGE else 300
MAX_ATTEMPTS = 30


def test_flaky_gateway_delivers_everything_once(chaos, make_stack):
    stack = make_stack(SMS_MAX_ATTEMPTS=MAX_ATTEMPTS)
    stack.start_all(
        workers=1,
        gateway_faults="--error-rate 0.3 --timeout-rate 0.1 --throttle-rate 0.05 --retry-after 1",
    )
    stack.log_in(chaos.secret)
    create_clients(stack, chaos, tag="flaky", count=SIZE)
    campaign = create_campaign(stack, tag="flaky")
    wait_settled(stack, campaign, SIZE, timeout=600)

    result = reconcile(stack, run_ids(stack, campaign))
    receipts = read_receipts(stack.receipts)
    early = requests_before_retry_after(receipts)
    per_message = Counter(r["id"] for r in receipts)
    result.extra.update(
        early_requests=len(early), most_requests_per_message=max(per_message.values())
    )
    report(result, chaos.results)
    result.assert_clean()
    assert result.by_status == {"sent": SIZE}
    statuses = Counter(str(r["status"]) for r in receipts)
    assert statuses["503"] and statuses["429"] and statuses["hang"], statuses  # faults happened
    assert not early, f"requests before the Retry-After they were given: {early[:5]}"
    assert max(per_message.values()) <= MAX_ATTEMPTS
    assert sql(stack, "SELECT max(attempts) FROM api_message")[0][0] <= MAX_ATTEMPTS


def requests_before_retry_after(receipts: list[dict]) -> list[tuple]:
    """(id, seconds early) of each request sent before the Retry-After of this id's last 429."""
    not_before: dict[int, float] = defaultdict(float)
    early = []
    for receipt in receipts:
        if receipt["at"] < not_before[receipt["id"]] - 0.05:  # the two clocks are one clock
            early.append((receipt["id"], round(not_before[receipt["id"]] - receipt["at"], 3)))
        if receipt["status"] == 429:
            not_before[receipt["id"]] = receipt["at"] + float(receipt["retry_after"])
    return early

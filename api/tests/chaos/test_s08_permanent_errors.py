"""Scenario 8: permanent gateway errors (400) → one request each, `failed` with the reason."""

from collections import Counter

from .campaigns import create_campaign, create_clients, run_ids, sql, wait_settled
from .conftest import LARGE
from .reconcile import read_receipts, reconcile, report

SIZE = 2000 if LARGE else 200


def test_a_refused_message_is_sent_once_and_failed_with_the_reason(chaos, make_stack):
    stack = make_stack()
    stack.start_all(gateway_faults="--bad-request-rate 0.2 --error-rate 0.1")
    stack.log_in(chaos.secret)
    create_clients(stack, chaos, tag="refused", count=SIZE)
    campaign = create_campaign(stack, tag="refused")
    wait_settled(stack, campaign, SIZE, timeout=300)

    result = reconcile(stack, run_ids(stack, campaign))
    report(result, chaos.results)
    result.assert_clean()
    receipts = read_receipts(stack.receipts)
    refused = {r["id"] for r in receipts if r["status"] == 400}
    last = {r["id"]: r["status"] for r in receipts}  # (the receipts are in time order)
    refusals = Counter(r["id"] for r in receipts if r["status"] == 400)
    failed = dict(sql(stack, "SELECT id, last_error FROM api_message WHERE status = 'failed'"))
    assert refused and set(failed) == refused
    # One 400 each, and never a request after it (a 503 before it is an ordinary retry).
    assert set(refusals.values()) == {1} and {last[i] for i in refused} == {400}
    assert all(error.startswith("gateway HTTP 400") for error in failed.values()), failed
    assert result.by_status == {"sent": SIZE - len(refused), "failed": len(refused)}

"""Scenario 7: the campaign's end passes while messages are queued (rate limit) or waiting for
a retry → none is sent after the end (the gateway's own receive times); they end `expired`."""

from datetime import datetime

from .campaigns import counts, create_campaign, create_clients, run_ids, wait_settled
from .conftest import LARGE
from .reconcile import read_receipts, reconcile, report

SIZE = 2000 if LARGE else 300
RATE = 20  # messages/s: the end comes long before the last message
# A request started just before the end reaches the gateway a moment later (loopback transit
# on a loaded machine): "sent after the end" is a request *started* after it.
TRANSIT = 0.25


def test_nothing_is_sent_after_the_campaign_end(chaos, make_stack):
    stack = make_stack(SMS_RATE_LIMIT=RATE, SMS_RETRY_BASE_SECONDS=1, SMS_RETRY_MAX_SECONDS=3)
    stack.start_all(gateway_faults="--error-rate 0.3 --throttle-rate 0.05 --retry-after 1")
    stack.log_in(chaos.secret)
    create_clients(stack, chaos, tag="ends", count=SIZE)
    campaign = create_campaign(stack, tag="ends", ends_in=SIZE / RATE / 2)
    wait_settled(stack, campaign, SIZE, timeout=300)

    _, body = stack.get(f"/api/campaigns/{campaign}/")
    end = datetime.fromisoformat(body["end_datetime"]).timestamp()
    ids = {m for m, in stack_messages(stack, campaign)}
    receipts = [r for r in read_receipts(stack.receipts) if r["id"] in ids]
    late = [r for r in receipts if r["at"] >= end + TRANSIT]
    result = reconcile(stack, run_ids(stack, campaign))
    result.extra.update(
        late_requests=len(late), last_request_before_end=round(end - receipts[-1]["at"], 3)
    )
    report(result, chaos.results)
    result.assert_clean()
    assert not late, late[:5]
    found = counts(stack, campaign)
    assert found.get("expired") and found.get("sent"), found
    assert set(found) == {"sent", "expired"}, found


def stack_messages(stack, campaign):
    from .campaigns import sql

    return sql(
        stack,
        "SELECT m.id FROM api_message m JOIN api_campaignrun r ON r.id = m.run_id"
        " WHERE r.campaign_id = %s",
        [campaign],
    )

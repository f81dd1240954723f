"""Scenario 9: several hosts. Two workers, each in its own network namespace (veth links to
Postgres/Redis and to the gateway); one is cut off from Postgres and Redis mid-batch and
reconnected later → its batch is taken over after the lease, nothing is sent twice, and when
it comes back it records no stale outcome over the newer ones."""

import time

import pytest

from .campaigns import counts, create_campaign, create_clients, sql, wait_settled
from .conftest import LARGE
from .reconcile import read_receipts, reconcile, report
from .services import GATEWAY_HOST_ANY, Namespaces
from .stack import GATEWAY_PORT

SIZE = 3000 if LARGE else 600
CUT = 60 if LARGE else 20
LEASE = 6
CONCURRENCY = 10
IN_CLIENT_PER_PROCESS = 2 * CONCURRENCY  # a stream hands at most this many to its provider


def host_env(chaos, stack, n: int) -> dict:
    db, gw = Namespaces.host_address(n, "db"), Namespaces.host_address(n, "gw")
    return {
        "DATABASE_URL": chaos.cluster.url(stack.database, host=db),
        "CELERY_BROKER_URL": chaos.redis.url(0, host=db),
        "CACHE_URL": chaos.redis.url(1, host=db),
        "SMS_GATEWAY_URL": f"http://{gw}:{GATEWAY_PORT}",
    }


def test_a_host_cut_off_mid_batch_sends_nothing_twice(chaos, make_stack):
    if chaos.hosts is None:
        pytest.skip(f"several hosts need network namespaces: {chaos.netns_reason}")
    stack = make_stack(DISPATCH_LEASE_SECONDS=LEASE, SMS_RATE_LIMIT=50, SMS_CONCURRENCY=CONCURRENCY)
    stack.start_gateway(host=GATEWAY_HOST_ANY, faults="--latency-ms 20")
    stack.start_web()
    for n, name in enumerate(chaos.hosts.names, start=1):
        stack.start_worker(netns=name, **host_env(chaos, stack, n))
    stack.start_beat()
    stack.log_in(chaos.secret)
    create_clients(stack, chaos, tag="hosts", count=SIZE)
    campaign = create_campaign(stack, tag="hosts")
    cut_off = Namespaces.host_address(1, "gw")[:-1] + "2"  # host 1 as the gateway sees it

    def host1_sending() -> bool:
        mine = [r for r in read_receipts(stack.receipts) if r.get("peer") == cut_off]
        return len(mine) >= 20 and counts(stack, campaign).get("sending", 0) > 0

    stack.wait_until(host1_sending, timeout=120, what="host 1 mid-batch")
    chaos.hosts.cut(1, up=False)
    cut_at = time.time()
    try:
        taken_over = wait_settled(stack, campaign, SIZE, timeout=CUT)  # without host 1
    finally:
        time.sleep(max(0.0, CUT - (time.time() - cut_at)))
        chaos.hosts.cut(1, up=True)
    reconnected_at = time.time()
    before = dict(sql(stack, "SELECT id, status FROM api_message"))
    time.sleep(2 * LEASE)  # host 1 wakes up and writes whatever it still holds

    result = reconcile(stack)
    after = dict(sql(stack, "SELECT id, status FROM api_message"))
    receipts = read_receipts(stack.receipts)
    from_host1 = [r for r in receipts if r.get("peer") == cut_off]
    during_cut = [r["at"] - cut_at for r in from_host1 if cut_at <= r["at"] < reconnected_at]
    first_by = {}
    for receipt in receipts:
        first_by.setdefault(receipt["id"], receipt)
    result.extra.update(
        cut_seconds=round(reconnected_at - cut_at, 1),
        settled_while_cut_off_after_s=round(taken_over, 1),
        host1_last_request_after_cut_s=round(max(during_cut, default=0), 1),
        host1_requests_after_reconnect=sum(1 for r in from_host1 if r["at"] > reconnected_at),
    )
    report(result, chaos.results)
    # The only re-sends: requests host 1 had handed to its gateway client when it was cut
    # (answered, but not recordable), re-sent by the new owner after host 1's lease.
    result.assert_clean(double_sends_allowed=2 * IN_CLIENT_PER_PROCESS)
    assert all(first_by[i].get("peer") == cut_off for i in result.double_send_ids)
    assert result.by_status == {"sent": SIZE}
    assert before == after  # no stale outcome written over the newer ones
    assert max(during_cut, default=0) <= LEASE  # nothing sent by host 1 past its lease
    assert not result.extra["host1_requests_after_reconnect"]

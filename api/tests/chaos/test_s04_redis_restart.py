"""Scenario 4: Redis killed and restarted empty mid-run → all delivered; workers and beat
recover by themselves (a campaign created after the restart is delivered too)."""

import time

from .campaigns import counts, create_campaign, create_clients, wait_settled
from .conftest import LARGE
from .reconcile import reconcile, report

SIZE = 2000 if LARGE else 300


def test_redis_restarted_empty_loses_nothing(chaos, make_stack):
    stack = make_stack(SMS_RATE_LIMIT=30)
    stack.start_all(workers=1)
    stack.log_in(chaos.secret)
    create_clients(stack, chaos, tag="broker", count=SIZE)
    create_clients(stack, chaos, tag="after", count=20)
    campaign = create_campaign(stack, tag="broker")
    stack.wait_until(
        lambda: counts(stack, campaign).get("sent", 0) >= SIZE // 5,
        timeout=120,
        what="sending started",
    )

    chaos.redis.kill()  # every queued task, the rate-limit counter and the cache are gone
    killed_at = time.time()
    time.sleep(8)  # longer than a dispatch task (5 s): the running one ends, its re-enqueue fails
    chaos.redis.start()
    restarted_at = time.time()
    unsent_at_restart = SIZE - counts(stack, campaign).get("sent", 0)
    recovered = wait_settled(stack, campaign, SIZE, timeout=300)
    stack.log_in(chaos.secret)  # the throttle counts lived in the lost cache: still works
    later = create_campaign(stack, tag="after")
    wait_settled(stack, later, 20, timeout=120)

    result = reconcile(stack)
    result.extra.update(
        redis_down_seconds=round(restarted_at - killed_at, 1),
        settled_after_restart_seconds=round(recovered, 1),
        unsent_at_restart=unsent_at_restart,
    )
    report(result, chaos.results)
    result.assert_clean()
    assert result.by_status == {"sent": SIZE + 20}
    assert unsent_at_restart > 0  # the restarted broker carried the rest
    assert all(proc.alive() for proc in stack.workers + stack.beats)  # recovered, not restarted

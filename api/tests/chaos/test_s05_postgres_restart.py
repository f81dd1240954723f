"""Scenario 5: Postgres restarted mid-run → all delivered, no accepted message re-sent; the API
answers 5xx only while it is down and recovers without a restart of our processes."""

import threading
import time

from .campaigns import counts, create_campaign, create_clients, wait_settled
from .conftest import LARGE
from .reconcile import reconcile, report
from .services import wait_for_postgres

SIZE = 3000 if LARGE else 400
# The promise is for an outage shorter than a lease (README "How delivery works"): the default
# lease, 30 s, against a restart of a few seconds. (With a 6 s lease and a 6 s outage the
# processes reap each other's held messages when the database is back: 97 of 400 re-sent.)
LEASE = 30


def test_postgres_restart_resends_nothing(chaos, make_stack):
    stack = make_stack(SMS_RATE_LIMIT=80, DISPATCH_LEASE_SECONDS=LEASE)
    stack.start_all(workers=1)
    stack.log_in(chaos.secret)
    create_clients(stack, chaos, tag="pg", count=SIZE)
    campaign = create_campaign(stack, tag="pg")
    stack.wait_until(
        lambda: counts(stack, campaign).get("sent", 0) >= SIZE // 5,
        timeout=120,
        what="sending started",
    )
    answers: list[tuple[float, int]] = []
    stop = threading.Event()
    poller = threading.Thread(target=poll_api, args=(stack, campaign, answers, stop))
    poller.start()
    try:
        time.sleep(1)
        down_at = time.time()
        chaos.cluster.stop("fast")
        time.sleep(5)
        chaos.cluster.start()
        wait_for_postgres(chaos.cluster)
        up_at = time.time()
        recovered = wait_settled(stack, campaign, SIZE, timeout=300)
        time.sleep(1)
    finally:
        stop.set()
        poller.join(30)

    result = reconcile(stack)
    failures = [(at, status) for at, status in answers if status != 200]
    late = [(at, status) for at, status in failures if not down_at - 1 <= at <= up_at + 5]
    result.extra.update(
        postgres_down_seconds=round(up_at - down_at, 1),
        settled_after_restart_seconds=round(recovered, 1),
        api_answers=len(answers),
        api_errors_while_down=len(failures),
    )
    report(result, chaos.results)
    result.assert_clean()  # including: no accepted message re-sent
    assert result.by_status == {"sent": SIZE}
    assert failures and all(500 <= status < 600 for _, status in failures), failures[:5]
    assert not late, late[:5]  # errors only while it was down (and a moment after)
    assert answers[-1][1] == 200
    assert all(proc.alive() for proc in stack.procs)  # nothing of ours was restarted


def poll_api(stack, campaign, answers, stop):
    while not stop.is_set():
        try:
            status, _ = stack.get(f"/api/campaigns/{campaign}/stats/", timeout=5)
        except OSError:
            status = 599  # no answer at all (counted as a 5xx: the API did not recover)
        answers.append((time.time(), status))
        time.sleep(0.2)

"""Scenario 6: two beat processes at once → no duplicate sends, no duplicate runs."""

from .campaigns import create_campaign, create_clients, run_ids, sql, wait_settled
from .conftest import LARGE
from .reconcile import reconcile, report
from .stack import sweeps_sent

SIZE = 2000 if LARGE else 300


def test_two_beats_send_nothing_twice(chaos, make_stack):
    stack = make_stack(SMS_RATE_LIMIT=100, DISPATCH_INTERVAL_SECONDS=1)
    stack.start_all(workers=2)
    second = stack.folder / "beat2"
    second.mkdir()
    stack.start_beat(DATA_DIR=str(second))  # its own schedule file, as on another host
    stack.log_in(chaos.secret)
    create_clients(stack, chaos, tag="beats", count=SIZE)
    campaigns = [create_campaign(stack, tag="beats", auto_start=True) for _ in range(2)]
    for campaign in campaigns:
        wait_settled(stack, campaign, SIZE, timeout=300)

    result = reconcile(stack)
    sweeps = [len(sweeps_sent(beat)) for beat in stack.beats]
    result.extra.update(sweeps_sent_by_each_beat=sweeps)
    report(result, chaos.results)
    result.assert_clean()
    assert all(sweeps), sweeps  # both beats really ran
    assert result.by_status == {"sent": 2 * SIZE}
    for campaign in campaigns:
        (run,) = run_ids(stack, campaign)  # one run each
        planned = sql(stack, "SELECT planned_messages FROM api_campaignrun WHERE id = %s", [run])
        assert planned == [(SIZE,)]

"""The development gateway's receipt log and control endpoint (the chaos suite relies on them)."""

import json
import urllib.request

from devtools.fake_gateway import FakeGateway, GatewayConfig

TOKEN = "t"  # noqa: S105 - the test gateway's own bearer token


def post(url: str, body: dict) -> int:
    request = urllib.request.Request(  # noqa: S310 - a local test server
        url, data=json.dumps(body).encode(), headers={"Authorization": f"Bearer {TOKEN}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as reply:  # noqa: S310
            return reply.status
    except urllib.error.HTTPError as error:
        return error.code


def test_receipts_name_each_request_and_a_restart_still_knows_the_accepted_ids(tmp_path):
    log = tmp_path / "receipts.jsonl"
    gateway = FakeGateway(GatewayConfig(token=TOKEN), receipt_log=str(log))
    gateway.start_in_thread()
    sms = {"id": 5, "phone": 79000000001, "text": "hi"}
    assert post(f"{gateway.url}/send/5", sms) == 200
    gateway.stop()

    again = FakeGateway(GatewayConfig(token=TOKEN), receipt_log=str(log))
    again.start_in_thread()
    assert post(f"{again.url}/send/5", sms) == 200
    again.stop()

    receipts = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(r["id"], r["status"], r["repeat"]) for r in receipts] == [
        (5, 200, False),
        (5, 200, True),
    ]
    assert "79000000001" not in log.read_text()  # no phone numbers in the receipts
    assert again.state.delivered_count == 0  # recognised as a repeat, not delivered again


def test_control_changes_the_faults_of_a_running_gateway():
    server = FakeGateway(GatewayConfig(token=TOKEN))
    server.app = lambda: FakeGateway.app(server, control=True)  # serve /control in the thread
    app_url = server.start_in_thread()
    try:
        assert post(f"{app_url}/control", {"bad_request_rate": 1.0}) == 200
        assert post(f"{app_url}/send/7", {"id": 7, "phone": 79000000002, "text": "x"}) == 400
        assert post(f"{app_url}/control", {"no_such_knob": 1}) == 400
    finally:
        server.stop()

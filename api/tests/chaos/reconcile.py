"""The end of every scenario: the database against the gateway's own receipt log.

0 lost (each message accepted by the gateway and recorded `sent`, or failed / expired /
cancelled with a recorded reason), 0 re-sends of a message whose acceptance the gateway had
answered, the stats counters equal to a recount, and how many requests were re-sends after an
unknown outcome (a request the gateway accepted without answering).
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from .processes import run

TERMINAL_WITH_REASON = {"failed", "expired", "cancelled"}


def read_receipts(path: Path) -> list[dict]:
    if not path.exists():
        return []
    receipts = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return sorted(receipts, key=lambda receipt: receipt["at"])


@dataclass
class Reconciliation:
    scenario: str
    messages: int = 0
    by_status: dict = field(default_factory=dict)
    lost: list = field(default_factory=list)  # (id, status, why)
    double_sends: int = 0  # requests for an id whose acceptance the gateway had answered
    double_send_ids: list = field(default_factory=list)
    resends_after_unknown: int = 0  # requests for an id accepted but not answered
    requests: int = 0
    accepted: int = 0
    counters: str = ""
    extra: dict = field(default_factory=dict)

    def line(self) -> str:
        return (
            f"[chaos] {self.scenario}: {self.messages} messages {self.by_status}; lost"
            f" {len(self.lost)}, accepted twice {self.double_sends}, re-sends after an unknown"
            f" outcome {self.resends_after_unknown}, gateway requests {self.requests}"
            + (f"; {self.extra}" if self.extra else "")
        )

    def assert_clean(self, *, double_sends_allowed: int = 0) -> None:
        assert not self.lost, f"lost messages: {self.lost[:10]}"
        assert (
            self.double_sends <= double_sends_allowed
        ), f"{self.double_sends} re-sends of answered acceptances: {self.double_send_ids[:10]}"
        assert self.counters == "Counters match the messages.", self.counters


def classify_requests(receipts: list[dict]) -> tuple[int, list[int], int]:
    """(re-sends after an answered acceptance, their ids, re-sends after an unknown outcome)."""
    state: dict[int, str] = {}
    doubles, double_ids, unknown = 0, [], 0
    for receipt in receipts:
        seen = state.get(receipt["id"])
        if seen == "answered":
            doubles += 1
            double_ids.append(receipt["id"])
        elif seen == "unknown":
            unknown += 1
        if receipt["status"] == 200:
            state[receipt["id"]] = "answered"
        elif receipt["status"] == "hang" and seen is None:
            state[receipt["id"]] = "unknown"
    return doubles, double_ids, unknown


def reconcile(stack, run_ids: list[int] | None = None) -> Reconciliation:
    receipts = read_receipts(stack.receipts)
    accepted = {r["id"] for r in receipts if r.get("accepted")}
    result = Reconciliation(stack.name, requests=len(receipts), accepted=len(accepted))
    result.double_sends, result.double_send_ids, result.resends_after_unknown = classify_requests(
        receipts
    )
    with stack.cluster.connect(stack.database) as conn:
        where, params = ("WHERE run_id = ANY(%s)", [run_ids]) if run_ids else ("", [])
        rows = conn.execute(
            f"SELECT id, status, last_error FROM api_message {where}", params  # noqa: S608
        ).fetchall()
    result.messages = len(rows)
    result.by_status = dict(Counter(status for _, status, _ in rows))
    for message_id, status, error in rows:
        if status == "sent" and message_id not in accepted:
            result.lost.append((message_id, status, "recorded sent, never accepted"))
        elif status in TERMINAL_WITH_REASON and not error:
            result.lost.append((message_id, status, "no reason recorded"))
        elif status != "sent" and status not in TERMINAL_WITH_REASON:
            result.lost.append((message_id, status, "not settled"))
    result.extra["accepted_but_not_recorded_sent"] = len(
        accepted & {m for m, s, _ in rows if s != "sent"}
    )
    result.counters = run(
        [sys.executable, "manage.py", "recount_stats", "--dry-run"], env=stack.env
    ).strip()
    return result


def report(result: Reconciliation, results_file: Path) -> None:
    print(result.line())  # noqa: T201 - the scenario's figures, shown with -s and in the log
    with open(results_file, "a") as out:
        record = asdict(result) | {"at": datetime.now(UTC).isoformat()}
        record["lost"] = record["lost"][:20]
        record["double_send_ids"] = record["double_send_ids"][:20]
        out.write(json.dumps(record) + "\n")

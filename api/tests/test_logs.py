"""LOG_FORMAT=json: one JSON object per line, the ids as fields, phones masked, a request id on
API lines. (A real run followed by a message id: test_compose_smoke.py.)"""

import io
import json
import logging
import logging.config
import subprocess
import sys

import pytest

from api import logs
from api.tests.servers import ROOT, scratch_env


@pytest.fixture
def json_log():
    """The `api` logger configured as LOG_FORMAT=json does, writing to a buffer."""
    stream = io.StringIO()
    config = logs.logging_config("json", "DEBUG")
    config["handlers"]["console"]["stream"] = stream
    api_logger = logging.getLogger("api")
    saved = api_logger.handlers[:], api_logger.level, api_logger.propagate
    logging.config.dictConfig(config)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    api_logger.handlers, api_logger.level, api_logger.propagate = saved[0], saved[1], saved[2]


def test_json_lines_carry_the_ids_as_fields(json_log):
    logging.getLogger("api.services.x").info(
        "message sent", extra={"message_id": 4294967297, "run_id": 1, "client_id": 1}
    )
    (line,) = json_log()
    assert line["message"] == "message sent"
    assert (line["message_id"], line["run_id"], line["client_id"]) == (4294967297, 1, 1)
    assert line["level"] == "INFO" and line["logger"] == "api.services.x"
    assert "time" in line and "request_id" not in line


def test_phones_are_masked_in_tracebacks_and_ids_stay_whole(json_log):
    log = logging.getLogger("api.x")
    try:
        raise ValueError("bad phone 79161234567")
    except ValueError:
        log.exception("failed message=%s", 4294967297)
    (line,) = json_log()
    assert "79161234567" not in line["exc_info"] and "4567" in line["exc_info"]
    assert line["message"] == "failed message=4294967297"  # an id is not a phone


def test_lines_logged_while_serving_a_request_carry_its_id(json_log):
    token = logs.request_id.set("req-1")
    try:
        logging.getLogger("api.x").info("inside")
    finally:
        logs.request_id.reset(token)
    logging.getLogger("api.x").info("outside")
    inside, outside = json_log()
    assert inside["request_id"] == "req-1"
    assert "request_id" not in outside


def test_an_unknown_log_format_stops_the_service_saying_why(tmp_path):
    env = scratch_env(tmp_path, LOG_FORMAT="xml")
    result = subprocess.run(  # noqa: S603 - our own interpreter and code
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode != 0
    assert "LOG_FORMAT must be one of plain, json" in result.stderr

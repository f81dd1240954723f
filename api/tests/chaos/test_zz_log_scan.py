"""The log scan: everything the suite's processes printed (gunicorn, workers, beats, the
gateway, Postgres, Redis) and the gateway's receipts hold no full phone number, no token
(JWT, the gateway's bearer token, the signing key) and no password. Runs last."""

import re

import pytest

JWT = re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.")


def collected_logs(folder) -> dict:
    return {
        path: path.read_text(errors="replace")
        for path in folder.rglob("*")
        if path.is_file() and path.suffix in {".log", ".jsonl"} and "pgdata" not in path.parts
    }


def test_no_phone_token_or_password_in_any_log(chaos):
    if not chaos.scenarios_run:
        pytest.skip("no chaos scenario ran in this session: nothing was logged to scan")
    logs = collected_logs(chaos.folder)
    assert sum(len(text) for text in logs.values()) > 10_000  # the scan sees real output
    secrets = {
        "password": chaos.secret.password,
        "gateway token": chaos.secret.gateway_token,
        "signing key": chaos.secret.secret_key,
        **{f"JWT #{i}": token for i, token in enumerate(chaos.secret.tokens)},
    }
    found = []
    phones = set(chaos.phones)
    for path, text in logs.items():
        found += [(path.name, what) for what, value in secrets.items() if value in text]
        found += [(path.name, "a JWT") for _ in JWT.finditer(text)][:1]
        digits = set(re.findall(r"(?<!\d)7\d{10}(?!\d)", text))
        found += [(path.name, f"phone {phone[:4]}…") for phone in digits & phones]
    assert phones and chaos.secret.tokens
    assert not found, found[:20]

"""gunicorn's access log (as `make run` and the images start it) never holds a full phone
number: a client lookup by phone is an everyday call."""

import http.client

from api.tests.servers import gunicorn, scratch_env


def test_phone_numbers_in_the_access_log_are_masked(tmp_path):
    log = tmp_path / "access.log"
    env = scratch_env(tmp_path)

    with gunicorn(env, "--workers", "1", "--access-logfile", str(log)) as port:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request(
            "GET",
            "/api/clients/?phone_number=79161234567",
            headers={
                "Referer": "http://console.example/?phone=79161234567",
                "User-Agent": "sync-script 79161234567",
            },
        )
        assert conn.getresponse().status == 401
        conn.close()

    text = log.read_text()
    assert "/api/clients/?phone_number=7916***4567" in text
    assert "phone=7916***4567" in text
    assert "sync-script 7916***4567" in text
    assert "79161234567" not in text


def test_short_digit_runs_are_hidden_whole_not_half_shown():
    from api.phones import scrub_phones

    # 4 + 4 shown digits of a 7-digit run would be all of it.
    assert scrub_phones("id=1234567 x", min_digits=7) == "id=*** x"
    assert scrub_phones("p=79161234567", min_digits=7) == "p=7916***4567"

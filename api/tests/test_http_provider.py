"""The gateway client (aiohttp) against real servers that misbehave on purpose.

Each test asserts what the gateway received (requests per message id) and the outcome each
message got: a reply that breaks is that message's retry (never an immediate re-send, never the
whole batch's), a 2xx status line is a delivery, our own bad data is a failure.
"""

import pytest
from django.core.exceptions import ImproperlyConfigured

from api.models import MessageStatus
from api.providers.base import Outcome, OutgoingSms
from api.providers.http import HttpProvider, parse_retry_after
from api.services import dispatch
from api.tests.factories import CampaignFactory, ClientFactory
from api.tests.misbehaving_gateway import CLOSE, ConnectProxy, MisbehavingGateway, ok

TOKEN = "test-token"


@pytest.fixture
def server():
    gateway = MisbehavingGateway().start()
    yield gateway
    gateway.stop()


@pytest.fixture
def make_provider():
    providers = []

    def make(url, **options):
        options = {"token": TOKEN, "concurrency": 1, "read_timeout": 2, **options}
        provider = HttpProvider(url=url, **options)
        providers.append(provider)
        return provider

    yield make
    for provider in providers:
        provider.close()


def sms(message_id, phone="79001234567"):
    return OutgoingSms(message_id, phone, "Hello")


def outcomes(results):
    return {r.message_id: r.outcome for r in results}


# --- replies that break off -----------------------------------------------------------------
def test_reply_cut_after_the_status_line_is_a_retry_sent_once(server, make_provider):
    server.script([b"HTTP/1.1 200 OK\r\n", CLOSE])

    (result,) = make_provider(server.url).send_messages([sms(1)])

    assert result.outcome == Outcome.RETRY and "gateway reply broken" in result.error
    assert server.count_per_id() == {1: 1}  # not re-sent at once on a new connection


def test_a_reused_connection_broken_mid_reply_is_not_resent_at_once(server, make_provider):
    # The first request leaves a keep-alive connection; the second one's reply breaks after
    # its status line: the old client re-sent that message at once, outside the backoff.
    server.script([ok()], [b"HTTP/1.1 503 Busy\r\n", CLOSE], [ok()])
    provider = make_provider(server.url)

    first, second = provider.send_messages([sms(1)]), provider.send_messages([sms(2)])
    third = provider.send_messages([sms(3)])

    assert [first[0].outcome, second[0].outcome, third[0].outcome] == [
        Outcome.SENT,
        Outcome.RETRY,
        Outcome.SENT,
    ]
    assert server.count_per_id() == {1: 1, 2: 1, 3: 1}
    assert server.received[1].connection == server.received[0].connection  # it was reused


def test_2xx_headers_then_cut_is_delivered_not_resent(server, make_provider):
    # The status line is the gateway's answer; losing the rest of the reply must not turn an
    # accepted message into a second SMS.
    server.script(
        [b"HTTP/1.1 200 OK\r\nContent-Length: 27\r\n\r\n", CLOSE],
        [b'HTTP/1.1 200 OK\r\nContent-Length: 27\r\n\r\n{"code": 0,', CLOSE],
    )
    provider = make_provider(server.url)

    results = provider.send_messages([sms(1)]) + provider.send_messages([sms(2)])

    assert outcomes(results) == {1: Outcome.SENT, 2: Outcome.SENT}
    assert server.count_per_id() == {1: 1, 2: 1}


def test_an_error_status_cut_mid_body_is_a_retry(server, make_provider):
    server.script([b"HTTP/1.1 503 Busy\r\nContent-Length: 40\r\n\r\nbusy", CLOSE])

    (result,) = make_provider(server.url).send_messages([sms(1)])

    assert result.outcome == Outcome.RETRY
    assert server.count_per_id() == {1: 1}


def test_close_delimited_body_in_several_packets_is_read_whole(server, make_provider):
    # No Content-Length: the body ends when the server closes. It comes in three packets.
    server.script(
        [
            b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n",
            b"invalid phone: ",
            0.05,
            b"the number is not ",
            0.05,
            b"served by this route",
            CLOSE,
        ]
    )

    (result,) = make_provider(server.url).send_messages([sms(1)])

    assert result.outcome == Outcome.FAILED
    assert result.error.endswith("invalid phone: the number is not served by this route")


@pytest.mark.parametrize(
    "bad_chunk",
    [b"zz\r\nhello\r\n0\r\n\r\n", b"5" * 9000 + b"\r\nhello\r\n0\r\n\r\n"],
    ids=["not-hex", "over-long-size-line"],
)
def test_a_bad_chunked_body_is_that_messages_retry_only(server, make_provider, bad_chunk):
    server.script(
        [ok()],
        [b"HTTP/1.1 503 Busy\r\nTransfer-Encoding: chunked\r\n\r\n" + bad_chunk, CLOSE],
        [ok()],
    )

    results = make_provider(server.url).send_messages([sms(1), sms(2), sms(3)])

    assert outcomes(results) == {1: Outcome.SENT, 2: Outcome.RETRY, 3: Outcome.SENT}
    assert server.count_per_id() == {1: 1, 2: 1, 3: 1}


def test_chunked_reply_with_trailers_and_retry_after(server, make_provider):
    server.script(
        [
            b"HTTP/1.1 429 Slow Down\r\nTransfer-Encoding: chunked\r\nRetry-After: 7\r\n\r\n"
            b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: 1\r\n\r\n"
        ]
    )

    (result,) = make_provider(server.url).send_messages([sms(1)])

    assert (result.outcome, result.retry_after) == (Outcome.RETRY, 7.0)


@pytest.mark.parametrize(
    "connection_header", [b"close", b"Close", b"keep-alive, close", b"close, TE", b" CLOSE "]
)
def test_connection_close_variants_open_a_new_connection(server, make_provider, connection_header):
    server.default_reply = [ok(b"Connection: " + connection_header + b"\r\n"), CLOSE]
    provider = make_provider(server.url)

    results = [provider.send_messages([sms(n)])[0] for n in (1, 2, 3)]

    assert {r.outcome for r in results} == {Outcome.SENT}
    assert server.count_per_id() == {1: 1, 2: 1, 3: 1}
    assert server.connections == 3


def test_keep_alive_reuses_one_connection(server, make_provider):
    provider = make_provider(server.url)

    for number in range(3):
        provider.send_messages([sms(number)])

    assert server.connections == 1


def test_a_reply_slower_than_the_read_timeout_is_a_retry(server, make_provider):
    server.script([3, ok()])

    (result,) = make_provider(server.url, read_timeout=0.3).send_messages([sms(1)])

    assert (result.outcome, result.error) == (Outcome.RETRY, "gateway timeout")
    assert server.count_per_id() == {1: 1}


def test_one_slow_reply_does_not_hold_up_the_others(server, make_provider):
    import time

    server.replies_for[1] = [1.5, ok()]  # by id: requests in parallel arrive in any order
    provider = make_provider(server.url, concurrency=4)
    arrived = {}

    def on_result(result):
        arrived[result.message_id] = time.monotonic()

    started = time.monotonic()
    provider.submit([sms(n) for n in range(1, 6)], on_result)
    while len(arrived) < 5 and time.monotonic() - started < 5:
        time.sleep(0.01)

    assert arrived[1] - started >= 1.5
    assert max(arrived[n] for n in range(2, 6)) - started < 1.0


def test_garbage_instead_of_http_is_a_retry(server, make_provider):
    server.script([b"SSH-2.0-OpenSSH_9.2\r\n\r\n", CLOSE])

    (result,) = make_provider(server.url).send_messages([sms(1)])

    assert result.outcome == Outcome.RETRY


def test_our_own_bad_data_fails_that_message_only(server, make_provider):
    results = make_provider(server.url).send_messages([sms(1, phone="7900x"), sms(2)])

    assert outcomes(results) == {1: Outcome.FAILED, 2: Outcome.SENT}
    assert server.count_per_id() == {2: 1}


def test_each_message_gets_its_own_outcome_in_the_stream(server, make_provider, db, settings):
    """Through dispatch: one batch with every kind of trouble; each row records its own."""
    settings.SMS_MAX_ATTEMPTS = 5
    ClientFactory.create_batch(5, tag="mixed")
    campaign = CampaignFactory(tag="mixed")
    from api.tests.test_dispatch import start_and_plan

    run = start_and_plan(campaign)
    ids = sorted(run.messages.values_list("id", flat=True))
    replies = [
        [ok()],
        [b"HTTP/1.1 200 OK\r\nContent-Length: 90\r\n\r\n{", CLOSE],
        [b"HTTP/1.1 503 Busy\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", CLOSE],
        [b"HTTP/1.1 400 Bad\r\nContent-Length: 7\r\n\r\nno such"],
        [b"HTTP/1.1 200 OK\r\n", CLOSE],
    ]
    server.replies_for = dict(zip(ids, replies, strict=True))

    dispatch.dispatch_due_messages(provider=make_provider(server.url), time_budget=10)

    status = dict(run.messages.values_list("id", "status"))
    assert [status[i] for i in ids] == [
        MessageStatus.SENT,
        MessageStatus.SENT,
        MessageStatus.PENDING,
        MessageStatus.FAILED,
        MessageStatus.PENDING,
    ]
    assert server.count_per_id() == {i: 1 for i in ids}
    assert run.messages.get(pk=ids[2]).attempts == 1  # a retry counts as an attempt


# --- the address, the token, TLS and proxies -------------------------------------------------
def test_request_shape_path_with_spaces_and_query_string(server, make_provider):
    provider = make_provider(f"{server.url}/sms api/v1/?account=42&route=a b")

    provider.send_messages([sms(30064771073)])

    (request,) = server.received
    assert request.method == "POST"
    assert request.target == "/sms%20api/v1/send/30064771073?account=42&route=a+b"
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["host"] == f"127.0.0.1:{server.port}"
    import json

    assert json.loads(request.body) == {"id": 30064771073, "phone": 79001234567, "text": "Hello"}


def test_ipv6_literal_host():
    try:
        server = MisbehavingGateway(host="::1").start()
    except OSError:
        pytest.skip("no IPv6 loopback on this machine")
    provider = HttpProvider(url=server.url, token=TOKEN, concurrency=1)
    try:
        (result,) = provider.send_messages([sms(1)])
    finally:
        provider.close()
        server.stop()

    assert result.outcome == Outcome.SENT
    assert server.received[0].headers["host"] == f"[::1]:{server.port}"


@pytest.mark.parametrize(
    ("url", "token", "complaint"),
    [
        ("", "t", "SMS_GATEWAY_URL is not set"),
        ("ftp://gateway.example", "t", "http:// or https://"),
        ("gateway.example/send", "t", "http:// or https://"),
        ("http://", "t", "no host"),
        ("http://gateway.example\r\nX-Evil: 1", "t", "control character"),
        ("http://gateway.example:99999", "t", "not a valid URL"),
        ("http://gateway.example", "abc\r\nX-Evil: 1", "SMS_GATEWAY_TOKEN"),
        ("http://gateway.example", "tok en\n", "SMS_GATEWAY_TOKEN"),
    ],
)
def test_bad_gateway_settings_are_refused_when_the_provider_is_built(url, token, complaint):
    with pytest.raises(ImproperlyConfigured, match=complaint):
        HttpProvider(url=url, token=token)


def test_the_token_never_appears_in_the_error():
    with pytest.raises(ImproperlyConfigured) as error:
        HttpProvider(url="http://gateway.example", token="s3cret-value\r\n")
    assert "s3cret" not in str(error.value)


def test_a_bad_gateway_url_fails_the_system_check(settings):
    from django.core.management import call_command
    from django.core.management.base import SystemCheckError

    settings.SMS_PROVIDER = "api.providers.http.HttpProvider"
    settings.SMS_GATEWAY_URL = "ftp://gateway.example"
    with pytest.raises(SystemCheckError, match="api.E001"):
        call_command("check")


@pytest.fixture(scope="module")
def certificate_authority():
    trustme = pytest.importorskip("trustme")
    return trustme.CA()


@pytest.fixture
def tls_server(certificate_authority):
    import ssl

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    certificate_authority.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    gateway = MisbehavingGateway(ssl_context=context).start()
    yield gateway
    gateway.stop()


@pytest.fixture
def ca_bundle(certificate_authority, tmp_path):
    path = tmp_path / "ca.pem"
    certificate_authority.cert_pem.write_to_path(str(path))
    return str(path)


def test_tls_with_a_self_signed_certificate_is_refused_by_default(tls_server, make_provider):
    (result,) = make_provider(tls_server.url).send_messages([sms(1)])

    assert (result.outcome, result.error) == (Outcome.RETRY, "gateway TLS certificate not trusted")
    assert tls_server.received == []


def test_tls_is_accepted_with_the_ca_bundle(tls_server, make_provider, ca_bundle):
    (result,) = make_provider(tls_server.url, ca_bundle=ca_bundle).send_messages([sms(1)])

    assert result.outcome == Outcome.SENT
    assert tls_server.count_per_id() == {1: 1}


def test_a_missing_ca_bundle_is_a_configuration_error(tmp_path):
    with pytest.raises(ImproperlyConfigured, match="SMS_GATEWAY_CA_BUNDLE"):
        HttpProvider(url="https://gateway.example", token="t", ca_bundle=str(tmp_path / "none"))


def test_https_proxy_from_the_environment_is_used(
    tls_server, make_provider, ca_bundle, monkeypatch
):
    proxy = ConnectProxy().start()
    monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{proxy.port}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    try:
        (result,) = make_provider(tls_server.url, ca_bundle=ca_bundle).send_messages([sms(1)])
    finally:
        proxy.stop()

    assert result.outcome == Outcome.SENT
    assert proxy.tunnels == [f"127.0.0.1:{tls_server.port}"]
    assert tls_server.count_per_id() == {1: 1}


def test_no_proxy_bypasses_the_proxy(server, make_provider, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")

    (result,) = make_provider(server.url).send_messages([sms(1)])

    assert result.outcome == Outcome.SENT


@pytest.mark.parametrize(
    ("header", "seconds"),
    [("7", 7.0), (" 3 ", 3.0), ("1_0", None), ("0x10", None), ("-5", None), ("", None)],
)
def test_retry_after_is_parsed_strictly(header, seconds):
    assert parse_retry_after(header) == seconds

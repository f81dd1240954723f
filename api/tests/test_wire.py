"""The gateway HTTP client against raw servers: reply framings, keep-alive, timeouts."""

import asyncio

import pytest

from api.providers.wire import GatewayProtocolError, HostConnectionPool

OK_BODY = b'{"code": 0, "message": "OK"}'


def serve_and_post(replies, posts=1, read_timeout=2.0, close_after_each=False):
    """Serve canned raw replies (one per request) and POST `posts` times through one pool."""
    received: list[bytes] = []
    connections = 0

    async def handle(reader, writer):
        nonlocal connections
        connections += 1
        while replies:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError):
                break
            length = int(
                next(
                    line.split(b":")[1]
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length")
                )
            )
            received.append(head + await reader.readexactly(length))
            reply = replies.pop(0)
            if reply is None:  # never answer
                await asyncio.sleep(10)
                break
            writer.write(reply)
            await writer.drain()
            if close_after_each:
                break
        writer.close()

    async def main():
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        pool = HostConnectionPool(
            f"http://127.0.0.1:{port}/v1", size=1, connect_timeout=1, read_timeout=read_timeout
        )
        results = []
        for number in range(posts):
            async with pool.slots:
                try:
                    results.append(await pool.post(f"/send/{number}", b'{"id": 1}', b"X-A: b\r\n"))
                except Exception as exc:  # noqa: BLE001 - the test inspects it
                    results.append(exc)
        pool.close()
        server.close()
        return results

    results = asyncio.run(main())
    return results, received, connections


def test_content_length_reply_and_request_shape():
    reply = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(OK_BODY), OK_BODY)
    (result,), (request,), _ = serve_and_post([reply])
    assert result.status == 200 and result.body == OK_BODY
    assert request.startswith(b"POST /v1/send/0 HTTP/1.1\r\n")
    assert b"\r\nX-A: b\r\n" in request and request.endswith(b'{"id": 1}')


def test_keep_alive_reuses_one_connection():
    reply = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    results, received, connections = serve_and_post([reply] * 3, posts=3)
    assert [r.status for r in results] == [200, 200, 200]
    assert connections == 1


def test_chunked_reply_with_trailers():
    reply = b"HTTP/1.1 429 Too Many\r\nTransfer-Encoding: chunked\r\nRetry-After: 7\r\n\r\n"
    reply += b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: 1\r\n\r\n"
    (result,), _, _ = serve_and_post([reply])
    assert (result.status, result.body, result.headers["retry-after"]) == (429, b"hello world", "7")


def test_interim_100_continue_is_skipped():
    reply = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"
    (result,), _, _ = serve_and_post([reply])
    assert result.status == 201


def test_close_delimited_reply_then_a_new_connection():
    reply = b"HTTP/1.0 503 Unavailable\r\n\r\nbusy"
    results, _, connections = serve_and_post([reply, reply], posts=2, close_after_each=True)
    assert [(r.status, r.body) for r in results] == [(503, b"busy"), (503, b"busy")]
    assert connections == 2


def test_a_connection_the_server_closed_while_idle_is_replaced_transparently():
    reply = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    # The server closes after each reply without saying so: the pooled connection is stale.
    results, received, connections = serve_and_post([reply, reply], posts=2, close_after_each=True)
    assert [r.status for r in results] == [200, 200]
    assert connections == 2
    assert len(received) == 2


def test_a_gateway_that_never_answers_times_out():
    results, _, _ = serve_and_post([None], read_timeout=0.3)
    assert isinstance(results[0], TimeoutError)


def test_garbage_is_a_protocol_error():
    results, _, _ = serve_and_post([b"SSH-2.0-OpenSSH\r\n\r\n"])
    assert isinstance(results[0], GatewayProtocolError)


def test_only_http_urls_are_accepted():
    with pytest.raises(ValueError, match="scheme"):
        HostConnectionPool("ftp://example.com", size=1, connect_timeout=1, read_timeout=1)

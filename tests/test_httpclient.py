"""The lean upstream client (sidecar.httpclient) against real sockets: framing, pool, keep-alive,
timeouts, back-pressure, failures, the idle-closed retry (TLS, proxies and names:
test_httpclient_connect.py)."""

from __future__ import annotations

import asyncio
import errno
import socket
import gzip
import hashlib
import sys
import zlib

import aiohttp
import pytest
import yarl
from aiohttp import web
from fake_http import RawServer, Request, answer, keep_alive

from sidecar.httpclient import (
    LeanSession,
    MalformedAnswerError,
    UpstreamConnectError,
)

PROXY_VARS = ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "NO_PROXY", "no_proxy", "ALL_PROXY",
              "all_proxy")


@pytest.fixture(autouse=True)
def _no_proxy_env(monkeypatch):
    for name in PROXY_VARS:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
async def make_session():
    sessions: list[LeanSession] = []

    def make(**kw) -> LeanSession:
        kw = {"limit": 10, "limit_per_host": 10, "keepalive_timeout": 30.0} | kw
        sessions.append(LeanSession(**kw))
        return sessions[-1]

    yield make
    for s in sessions:
        await s.close()


@pytest.fixture
async def raw():
    servers: list[RawServer] = []

    async def start(handle, ssl_context=None, host="127.0.0.1") -> RawServer:
        servers.append(await RawServer(handle).start(ssl_context, host))
        return servers[-1]

    yield start
    for s in servers:
        await s.close()


def ok(body: bytes = b"ok", headers=()):
    return keep_alive(lambda req, n: answer(200, body, headers))


async def post_ok(session: LeanSession, srv: RawServer, times: int) -> None:
    """POST ``times`` requests one after another; each is answered 200 ``ok``."""
    for _ in range(times):
        async with session.post(srv.url(), data=b"x") as resp:
            assert resp.status == 200 and await resp.read() == b"ok"


# -- bodies -------------------------------------------------------------------------------


async def test_content_length_chunked_and_until_close_bodies(raw, make_session):
    async def handle(srv, reader, writer, n):
        req = await srv.read(reader)
        if req.line.startswith("GET /length"):
            writer.write(answer(200, b"x" * 100_000))
        elif req.line.startswith("GET /chunked"):
            writer.write(answer(200, headers=(("Transfer-Encoding", "chunked"),), length=False))
            for part in (b"hello ", b"chunked ", b"world"):
                writer.write(b"%x\r\n%b\r\n" % (len(part), part))
                await writer.drain()
                await asyncio.sleep(0.01)
            writer.write(b"0\r\n\r\n")
        else:  # no length: the body ends when the connection does
            writer.write(answer(200, length=False) + b"until ")
            await writer.drain()
            await asyncio.sleep(0.01)
            writer.write(b"close")
            await writer.drain()
            writer.close()
            return
        await writer.drain()
        await srv.read(reader)

    srv = await raw(handle)
    session = make_session()
    async with session.get(srv.url("/length")) as resp:
        assert resp.status == 200 and await resp.read() == b"x" * 100_000
    async with session.get(srv.url("/chunked")) as resp:
        assert [c async for c in resp.content.iter_any()] == [b"hello ", b"chunked ", b"world"]
    async with session.get(srv.url("/close")) as resp:
        assert await resp.read() == b"until close"


async def test_a_reader_that_stops_early_leaves_no_async_generator_to_finalise(raw, make_session):
    """An SSE stream's reader stops at ``[DONE]``: the body's iterator is an object, not an async
    generator that asyncio would finalise through the loop's self-pipe (a wake-up per stream)."""
    srv = await raw(ok(b"data: 1\n\ndata: [DONE]\n\n"))
    session = make_session()
    started = []
    hooks = sys.get_asyncgen_hooks()
    sys.set_asyncgen_hooks(firstiter=lambda gen: (started.append(gen), hooks.firstiter and hooks.firstiter(gen)))
    try:
        async with session.get(srv.url()) as resp:
            async for piece in resp.content.iter_any():
                assert piece.startswith(b"data: 1")
                break
            pieces = resp.content.iter_chunked(4)
            assert pieces.__aiter__() is pieces
    finally:
        sys.set_asyncgen_hooks(*hooks)
    assert started == []


async def test_gzip_and_deflate_bodies_are_decompressed(raw, make_session):
    text = b"compressible " * 1000

    def respond(req: Request, n: int) -> bytes:
        if req.line.startswith("GET /gzip"):
            return answer(200, gzip.compress(text), (("Content-Encoding", "gzip"),))
        if req.line.startswith("GET /raw-deflate"):
            c = zlib.compressobj(wbits=-15)
            return answer(200, c.compress(text) + c.flush(), (("Content-Encoding", "deflate"),))
        return answer(200, zlib.compress(text), (("Content-Encoding", "deflate"),))

    srv = await raw(keep_alive(respond))
    session = make_session()
    for path in ("/gzip", "/deflate", "/raw-deflate"):
        async with session.get(srv.url(path)) as resp:
            assert await resp.read() == text, path
    async with session.get(srv.url("/gzip")) as resp:
        assert b"".join([c async for c in resp.content.iter_chunked(1000)]) == text
    assert "Accept-Encoding" not in dict(srv.requests[0].headers)


@pytest.mark.parametrize("ended", [True, False], ids=["whole", "open"])
async def test_a_compressed_body_that_is_not_valid_is_a_payload_error(raw, make_session, ended):
    """Found whole in one read (the parser's callbacks) or with the answer still open (the read's
    body pieces handed on after parsing): either way a ClientPayloadError, not a crash."""
    head = b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n"
    body = b"a\r\nnot gzip!!\r\n" + (b"0\r\n\r\n" if ended else b"")

    def respond(req: Request, n: int) -> bytes:
        return head + body

    srv = await raw(keep_alive(respond))
    session = make_session()
    async with session.get(srv.url("/bad"), timeout=aiohttp.ClientTimeout(total=5)) as resp:
        with pytest.raises(aiohttp.ClientPayloadError, match="compressed body is not valid"):
            await resp.read()


async def test_an_interim_1xx_answer_is_skipped_and_the_connection_reused(raw, make_session):
    srv = await raw(keep_alive(lambda req, n: b"HTTP/1.1 100 Continue\r\n\r\n" + answer(200, b"ok")))
    session = make_session()
    await post_ok(session, srv, 2)
    assert srv.connections == 1


async def test_an_ipv6_literal_host_is_connected_and_named_in_brackets(raw, make_session):
    try:
        srv = await raw(ok(), host="::1")
    except OSError:
        pytest.skip("no IPv6 loopback here")
    session = make_session()
    async with session.get(srv.url("/v6", host="[::1]")) as resp:
        assert await resp.read() == b"ok"
    assert dict(srv.requests[0].headers)["Host"] == f"[::1]:{srv.port}"


async def test_head_204_and_304_have_no_body(raw, make_session):
    def respond(req: Request, n: int) -> bytes:
        if req.line.startswith("HEAD"):
            return answer(200, headers=(("Content-Length", "1234"),), length=False)
        status = 204 if "204" in req.line else 304
        return answer(status, length=False)

    srv = await raw(keep_alive(respond))
    session = make_session()
    for _ in range(2):
        async with session.request("HEAD", srv.url("/")) as resp:
            assert resp.status == 200 and resp.headers["Content-Length"] == "1234" and await resp.read() == b""
    for status in (204, 304):
        async with session.get(srv.url(f"/{status}")) as resp:
            assert resp.status == status and await resp.read() == b""
    assert srv.connections == 1  # (each answer left the connection reusable, a HEAD's too)


async def test_response_headers_are_case_insensitive_and_keep_repeats(raw, make_session):
    srv = await raw(ok(headers=(("Set-Cookie", "a=1"), ("set-cookie", "b=2"), ("X-Request-ID", "r1"))))
    async with make_session().get(srv.url()) as resp:
        assert resp.headers.getall("SET-COOKIE") == ["a=1", "b=2"]
        assert resp.headers["x-request-id"] == "r1" and resp.reason == "OK"
        assert isinstance(resp.headers, aiohttp.typedefs.CIMultiDictProxy)


# -- the request ----------------------------------------------------------------------------


async def test_request_head_is_the_callers_headers_plus_host_and_framing(raw, make_session):
    srv = await raw(ok())
    session = make_session(request_headers=lambda: {"traceparent": "00-abc-def-01"})
    async with session.post(srv.url("/v1/chat?x=1"), data=b"{}", headers={"Authorization": "Bearer k"}) as resp:
        await resp.read()
    async with session.post(yarl.URL(srv.url("/model/a%2Fb/invoke"), encoded=True), data=b"") as resp:
        await resp.read()
    first, second = srv.requests
    assert first.line == "POST /v1/chat?x=1 HTTP/1.1"
    assert first.headers == [("Host", f"127.0.0.1:{srv.port}"), ("Authorization", "Bearer k"),
                             ("traceparent", "00-abc-def-01"), ("Content-Length", "2")]
    assert second.line == "POST /model/a%2Fb/invoke HTTP/1.1"  # the encoded form, kept
    with pytest.raises(ValueError):
        await session.post(srv.url(), data=b"", headers={"X": "a\r\nInjected: 1"})


async def test_chunked_upload_is_streamed_as_it_comes(make_session, aiohttp_server):
    got_first = asyncio.Event()
    seen: dict = {}

    async def handler(request: web.Request) -> web.Response:
        seen["te"] = request.headers.get("Transfer-Encoding")
        first = await request.content.readany()
        got_first.set()  # the generator waits for this before its second chunk: nothing is buffered
        rest = await request.read()
        return web.Response(body=first + rest)

    app = web.Application()
    app.router.add_post("/up", handler)
    server = await aiohttp_server(app)

    async def body():
        yield b"first;"
        await asyncio.wait_for(got_first.wait(), 5)
        for i in range(3):
            yield b"more%d;" % i

    async with make_session().post(str(server.make_url("/up")), data=body()) as resp:
        assert await resp.read() == b"first;more0;more1;more2;"
    assert seen["te"] == "chunked"


# -- the pool -----------------------------------------------------------------------------


async def test_a_response_dropped_unreleased_mid_body_frees_its_connection(raw, make_session):
    """As aiohttp's do: a caller that forgets a response whose body is still coming does not keep
    its connection (and its pool slot) for ever."""
    async def handle(srv, reader, writer, n):
        req = await srv.read(reader)
        if req.line.startswith("GET /endless"):
            writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n")
            await writer.drain()
            await asyncio.sleep(30)  # the rest never comes
        else:
            writer.write(answer(200, b"ok"))
            await writer.drain()

    srv = await raw(handle)
    session = make_session(limit_per_host=1)
    resp = await session.get(srv.url("/endless"))
    assert resp.status == 200
    del resp  # never released
    async with session.get(srv.url("/next"), timeout=aiohttp.ClientTimeout(total=3)) as resp:
        assert await resp.read() == b"ok"
    assert srv.connections == 2


async def test_keep_alive_reuses_one_connection(raw, make_session):
    srv = await raw(ok())
    session = make_session()
    await post_ok(session, srv, 20)
    assert srv.connections == 1 and len(srv.requests) == 20


async def test_pool_bounds_connections_per_host_and_serves_waiters(raw, make_session):
    async def slow(srv, reader, writer, n):
        while await srv.read(reader) is not None:
            await asyncio.sleep(0.02)
            writer.write(answer(200, b"ok"))

    srv = await raw(slow)
    session = make_session(limit=10, limit_per_host=3)

    async def call():
        async with session.get(srv.url()) as resp:
            return await resp.read()

    assert await asyncio.gather(*(call() for _ in range(20))) == [b"ok"] * 20
    assert srv.peak <= 3 and srv.connections <= 3


async def test_total_limit_is_shared_across_hosts(raw, make_session):
    async def slow(srv, reader, writer, n):
        while await srv.read(reader) is not None:
            await asyncio.sleep(0.02)
            writer.write(answer(200, b"ok"))

    one, two = await raw(slow), await raw(slow)
    session = make_session(limit=2, limit_per_host=2)

    async def call(srv):
        async with session.get(srv.url()) as resp:
            return await resp.read()

    results = await asyncio.gather(*(call(s) for _ in range(6) for s in (one, two)))
    assert results == [b"ok"] * 12
    assert one.peak + two.peak <= 3  # at most 2 open at once (one may close as the other opens)
    assert max(one.peak, two.peak) <= 2


async def test_idle_connections_close_after_keepalive_timeout(raw, make_session):
    srv = await raw(ok())
    session = make_session(keepalive_timeout=0.1)
    async with session.get(srv.url()) as resp:
        await resp.read()
    for _ in range(100):
        if srv.closed:
            break
        await asyncio.sleep(0.05)
    assert srv.closed == 1
    async with session.get(srv.url()) as resp:  # and the next request opens a new one
        assert await resp.read() == b"ok"
    assert srv.connections == 2


async def test_connection_close_and_http10_are_not_reused(raw, make_session):
    def respond(req: Request, n: int) -> bytes:
        if "/close" in req.line:
            return answer(200, b"ok", (("Connection", "close"),))
        return answer(200, b"ok", version="1.0")

    srv = await raw(keep_alive(respond))
    session = make_session()
    for path in ("/close", "/close", "/ten", "/ten"):
        async with session.get(srv.url(path)) as resp:
            assert await resp.read() == b"ok"
    assert srv.connections == 4


async def test_a_released_unread_body_closes_its_connection(raw, make_session):
    async def handle(srv, reader, writer, n):
        while await srv.read(reader) is not None:
            writer.write(answer(200, b"y" * 2_000_000))
            await writer.drain()

    srv = await raw(handle)
    session = make_session()
    async with session.get(srv.url()) as resp:
        assert len(await resp.content.iter_any().__anext__()) > 0
    async with session.get(srv.url()) as resp:
        assert len(await resp.read()) == 2_000_000
    assert srv.connections == 2


# -- timeouts -----------------------------------------------------------------------------


async def never_answers(srv, reader, writer, n):
    await srv.read(reader)
    await asyncio.sleep(30)


async def test_sock_read_timeout_when_the_upstream_never_answers(raw, make_session):
    srv = await raw(never_answers)
    with pytest.raises(asyncio.TimeoutError):
        await make_session().get(srv.url(), timeout=aiohttp.ClientTimeout(sock_read=0.2))


async def test_total_and_read_timeouts_when_the_body_stalls(raw, make_session):
    async def stalls(srv, reader, writer, n):
        await srv.read(reader)
        writer.write(answer(200, headers=(("Content-Length", "100"),), length=False) + b"part")
        await asyncio.sleep(30)

    srv = await raw(stalls)
    session = make_session()
    resp = await session.get(srv.url(), timeout=aiohttp.ClientTimeout(total=0.3))
    with pytest.raises(asyncio.TimeoutError):
        await resp.read()
    resp = await session.get(srv.url(), timeout=aiohttp.ClientTimeout(sock_read=0.2))
    with pytest.raises(asyncio.TimeoutError):
        async for _ in resp.content.iter_any():
            pass
    assert session._pool.total == 0  # both connections closed, not pooled


async def test_connect_timeout_bounds_waiting_for_a_pooled_connection(raw, make_session):
    srv = await raw(never_answers)
    session = make_session(limit_per_host=1)
    busy = asyncio.ensure_future(session.get(srv.url()))
    await asyncio.sleep(0.05)
    with pytest.raises(asyncio.TimeoutError):
        await session.get(srv.url(), timeout=aiohttp.ClientTimeout(connect=0.2))
    busy.cancel()


# -- back-pressure ------------------------------------------------------------------------


async def test_a_slow_reader_pauses_the_upstream_and_gets_every_byte(raw, make_session):
    size, piece = 48 * 1024 * 1024, 256 * 1024
    peak = [0]
    digest = hashlib.sha256()

    async def fast(srv, reader, writer, n):
        """Writes as fast as it can, without waiting for drain: what the client does not take
        piles up in its own transport's buffer."""
        await srv.read(reader)
        writer.write(answer(200, headers=(("Content-Length", str(size)),), length=False))
        for i in range(size // piece):
            data = bytes([i % 251]) * piece
            digest.update(data)
            writer.write(data)
            peak[0] = max(peak[0], writer.transport.get_write_buffer_size())
            await asyncio.sleep(0)
        await writer.drain()

    srv = await raw(fast)
    got = hashlib.sha256()
    received = 0
    async with make_session().get(srv.url()) as resp:
        async for data in resp.content.iter_any():
            got.update(data)
            received += len(data)
            if received < 4 * 1024 * 1024:
                await asyncio.sleep(0.02)  # slower than the upstream, for the first megabytes
            assert resp._size < 2 * 1024 * 1024  # what the client buffers stays bounded
    assert received == size and got.digest() == digest.digest()
    # the client stopped reading: the kernel's buffers filled and the server's writes stalled
    assert peak[0] > 16 * 1024 * 1024, peak[0]


# -- failures -----------------------------------------------------------------------------


async def test_a_refused_connection_is_a_connect_error(make_session):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    with pytest.raises(UpstreamConnectError) as info:
        await make_session().post(f"http://user:secret@127.0.0.1:{port}/v1", data=b"x")
    assert isinstance(info.value, aiohttp.ClientConnectorError)  # (what code written for aiohttp catches)
    assert info.value.os_error.errno == errno.ECONNREFUSED
    for text in (str(info.value), str(info.value.os_error), info.value.strerror, info.value.host):
        assert str(port) not in text and "secret" not in text and "127.0.0.1" not in text
    with pytest.raises(getattr(aiohttp, "ClientConnectorDNSError", aiohttp.ClientConnectorError),  # (3.11+)
                       match="could not connect to the upstream"):
        await make_session().get("http://no-such-host.invalid/v1")


async def test_a_body_cut_short_is_a_payload_error(raw, make_session):
    async def cut(srv, reader, writer, n):
        req = await srv.read(reader)
        if "/chunked" in req.line:
            writer.write(answer(200, headers=(("Transfer-Encoding", "chunked"),), length=False) + b"5\r\nhello\r\n")
        else:
            writer.write(answer(200, headers=(("Content-Length", "100"),), length=False) + b"only part")
        await writer.drain()

    srv = await raw(cut)
    session = make_session()
    for path in ("/length", "/chunked"):
        async with session.get(srv.url(path)) as resp:
            with pytest.raises(aiohttp.ClientPayloadError):
                await resp.read()


async def test_no_answer_on_a_fresh_connection_is_server_disconnected(raw, make_session):
    async def hang_up(srv, reader, writer, n):
        await srv.read(reader)

    srv = await raw(hang_up)
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await make_session().post(srv.url(), data=b"x")
    assert srv.connections == 1  # not retried: the connection was new


async def test_a_malformed_answer_is_a_response_error(raw, make_session):
    async def garbage(srv, reader, writer, n):
        await srv.read(reader)
        writer.write(b"NOT HTTP AT ALL\r\n\r\n")
        await writer.drain()
        await asyncio.sleep(1)

    srv = await raw(garbage)
    with pytest.raises(MalformedAnswerError) as info:
        await make_session().get(srv.url())
    assert isinstance(info.value, aiohttp.ClientResponseError)


# -- the idle-closed retry ----------------------------------------------------------------


async def closes_on_second_request(srv, reader, writer, n):
    """Answers one request per connection; a second one finds it closed, as if the upstream
    closed it idle just as the request went out."""
    await srv.read(reader)
    writer.write(answer(200, b"ok"))
    await writer.drain()
    await srv.read(reader)


async def test_a_request_on_a_connection_closed_while_idle_is_retried_once(raw, make_session):
    srv = await raw(closes_on_second_request)
    session = make_session()
    await post_ok(session, srv, 2)
    assert srv.connections == 2 and len(srv.requests) == 3


async def test_a_streamed_body_is_not_retried(raw, make_session):
    srv = await raw(closes_on_second_request)
    session = make_session()
    async with session.post(srv.url(), data=b"x") as resp:
        await resp.read()

    async def body():
        yield b"once"

    with pytest.raises(aiohttp.ServerDisconnectedError):
        await session.post(srv.url(), data=body())
    assert srv.connections == 1


async def test_an_idle_connection_the_upstream_closed_is_not_used(raw, make_session):
    async def one_and_close(srv, reader, writer, n):
        await srv.read(reader)
        writer.write(answer(200, b"ok"))
        await writer.drain()
        await asyncio.sleep(0.05)

    srv = await raw(one_and_close)
    session = make_session()
    for _ in range(2):
        async with session.get(srv.url()) as resp:
            assert await resp.read() == b"ok"
        await asyncio.sleep(0.2)
    assert srv.connections == 2


# -- the session --------------------------------------------------------------------------


async def test_close_closes_pooled_connections(raw, make_session):
    srv = await raw(ok())
    session = make_session()
    async with session.get(srv.url()) as resp:
        await resp.read()
    await session.close()
    assert session.closed
    for _ in range(100):
        if srv.closed:
            break
        await asyncio.sleep(0.02)
    assert srv.closed == 1
    with pytest.raises(RuntimeError):
        await session.get(srv.url())

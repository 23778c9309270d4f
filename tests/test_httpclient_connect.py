"""The lean upstream client (sidecar.httpclient) connecting, against real sockets: TLS with
certificate and host checks, proxies from the environment (CONNECT tunnels, an https proxy,
NO_PROXY), and host names (the resolver's cache, each address in turn)."""

from __future__ import annotations

import asyncio
import socket
import ssl

import aiohttp
import pytest
import trustme
from fake_http import answer, keep_alive
from test_httpclient import _no_proxy_env, make_session, ok, raw  # noqa: F401 (fixtures: the env's proxies unset)

from sidecar.httpclient import (
    LeanSession,
    ProxyCertificateError,
    ProxyConnectError,
    UpstreamCertificateError,
    UpstreamConnectError,
)


# -- TLS ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ca():
    return trustme.CA()


@pytest.fixture
async def tls_server(raw, ca):
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(server_ctx)
    return await raw(ok(b"secure"), server_ctx)


def trusting(ca) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    return ctx


async def test_tls_with_a_trusted_certificate(tls_server, make_session, ca):
    async with make_session(ssl_context=trusting(ca)).get(tls_server.url(host="localhost", scheme="https")) as resp:
        assert await resp.read() == b"secure"


async def test_tls_wrong_host_or_untrusted_certificate_is_a_certificate_error(tls_server, make_session, ca):
    with pytest.raises(UpstreamCertificateError) as info:  # the certificate is for localhost only
        await make_session(ssl_context=trusting(ca)).get(tls_server.url(host="127.0.0.1", scheme="https"))
    assert isinstance(info.value, aiohttp.ClientConnectorCertificateError) and info.value.ssl
    assert "127.0.0.1" not in str(info.value) and "127.0.0.1" not in str(info.value.certificate_error)
    with pytest.raises(UpstreamCertificateError):  # the default trust store does not know the CA
        await make_session().get(tls_server.url(host="localhost", scheme="https"))


# -- proxies ------------------------------------------------------------------------------


async def connect_proxy(srv, reader, writer, n):
    """A CONNECT proxy: records the request, then pipes bytes both ways."""
    req = await srv.read(reader)
    if srv.refuse:
        writer.write(answer(407, headers=(("Proxy-Authenticate", "Basic"),)))
        await writer.drain()
        return
    host, port = req.line.split()[1].rsplit(":", 1)
    up_reader, up_writer = await asyncio.open_connection("127.0.0.1", int(port))
    writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")

    async def pipe(src, dst):
        try:
            while data := await src.read(65536):
                dst.write(data)
                await dst.drain()
        finally:
            dst.close()

    await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer), return_exceptions=True)


async def test_https_proxy_tunnels_with_connect_and_basic_auth(tls_server, raw, make_session, ca, monkeypatch):
    proxy = await raw(connect_proxy)
    proxy.refuse = False
    monkeypatch.setenv("HTTPS_PROXY", f"http://alice:s%3Acret@127.0.0.1:{proxy.port}")
    session = make_session(ssl_context=trusting(ca))
    async with session.get(tls_server.url("/via", host="localhost", scheme="https")) as resp:
        assert await resp.read() == b"secure"
    (connect,) = proxy.requests
    assert connect.line == f"CONNECT localhost:{tls_server.port} HTTP/1.1"
    assert connect.header("Proxy-Authorization") == "Basic YWxpY2U6czpjcmV0"  # alice:s:cret
    assert tls_server.requests[0].line == "GET /via HTTP/1.1"
    assert tls_server.requests[0].header("Proxy-Authorization") is None


async def test_a_proxy_reached_over_tls_carries_a_tls_tunnel(tls_server, raw, make_session, ca, monkeypatch):
    """``HTTPS_PROXY=https://...``: TLS to the proxy (its certificate checked), then the tunnel's
    own TLS to the target inside it."""
    proxy_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(proxy_ctx)
    proxy = await raw(connect_proxy, proxy_ctx)
    proxy.refuse = False
    monkeypatch.setenv("HTTPS_PROXY", f"https://carol:pw@localhost:{proxy.port}")
    session = make_session(ssl_context=trusting(ca))
    for path in ("/one", "/two"):  # (the second goes over the pooled tunnel)
        async with session.get(tls_server.url(path, host="localhost", scheme="https")) as resp:
            assert resp.status == 200 and await resp.read() == b"secure"
    (connect,) = proxy.requests
    assert connect.line == f"CONNECT localhost:{tls_server.port} HTTP/1.1"
    assert connect.header("Proxy-Authorization") == "Basic Y2Fyb2w6cHc="  # carol:pw
    assert [r.line for r in tls_server.requests] == ["GET /one HTTP/1.1", "GET /two HTTP/1.1"]
    with pytest.raises(ProxyCertificateError) as info:  # a proxy whose certificate is not trusted: no tunnel
        await make_session().get(tls_server.url(host="localhost", scheme="https"))
    assert str(info.value).startswith("the proxy's TLS certificate was not accepted")
    assert isinstance(info.value, ProxyConnectError) and len(proxy.requests) == 1


async def test_a_proxy_refusing_the_tunnel_is_a_proxy_error(tls_server, raw, make_session, ca, monkeypatch):
    proxy = await raw(connect_proxy)
    proxy.refuse = True
    monkeypatch.setenv("https_proxy", f"http://bob:wrong@127.0.0.1:{proxy.port}")
    with pytest.raises(ProxyConnectError) as info:
        await make_session(ssl_context=trusting(ca)).get(tls_server.url(host="localhost", scheme="https"))
    assert "407" in str(info.value) and "wrong" not in str(info.value)
    assert isinstance(info.value, aiohttp.ClientProxyConnectionError)


async def test_http_proxy_gets_the_absolute_form_and_no_proxy_bypasses_it(raw, make_session, monkeypatch):
    proxy = await raw(keep_alive(lambda req, n: answer(200, b"from proxy")))
    origin = await raw(ok(b"direct"))
    monkeypatch.setenv("HTTP_PROXY", f"http://u:p@127.0.0.1:{proxy.port}")
    monkeypatch.setenv("NO_PROXY", "localhost")
    session = make_session()
    async with session.post(origin.url("/v1/x?y=1"), data=b"{}") as resp:
        assert await resp.read() == b"from proxy"
    (req,) = proxy.requests
    assert req.line == f"POST http://127.0.0.1:{origin.port}/v1/x?y=1 HTTP/1.1"
    assert req.header("Proxy-Authorization") == "Basic dTpw"
    async with session.get(origin.url(host="localhost")) as resp:  # NO_PROXY names it
        assert await resp.read() == b"direct"
    assert len(proxy.requests) == 1 and len(origin.requests) == 1
    async with make_session(trust_env=False).get(origin.url()) as resp:  # trust_env=False: no proxy
        assert await resp.read() == b"direct"


# -- names --------------------------------------------------------------------------------


async def one_answer_then_close(srv, reader, writer, n):
    """Answers one request and closes: every request needs a new connection."""
    if await srv.read(reader) is not None:
        writer.write(answer(200, b"ok", (("Connection", "close"),)))
        await writer.drain()
    writer.close()


def count_lookups(monkeypatch, fake=None) -> list[str]:
    """The names the running loop is asked to resolve; ``fake(host, port)``, when given, answers."""
    loop = asyncio.get_running_loop()
    real = loop.getaddrinfo
    asked: list[str] = []

    async def getaddrinfo(host, port, *args, **kwargs):
        asked.append(host)
        if fake is not None:
            return fake(host, port)
        return await real(host, port, *args, **kwargs)

    monkeypatch.setattr(loop, "getaddrinfo", getaddrinfo)
    return asked


async def test_a_name_is_resolved_once_per_ttl_and_once_for_concurrent_connections(raw, make_session, monkeypatch):
    srv = await raw(one_answer_then_close)
    asked = count_lookups(monkeypatch)

    async def get(session: LeanSession) -> None:
        async with session.get(srv.url(host="localhost")) as resp:
            assert resp.status == 200 and await resp.read() == b"ok"

    session = make_session()  # (the default TTL, 10 s)
    await asyncio.gather(*(get(session) for _ in range(5)))  # five new connections at once: one lookup
    await get(session)  # a new connection within the TTL: none
    assert asked == ["localhost"] and srv.connections == 6
    brief = make_session(ttl_dns_cache=0.1)
    await get(brief)
    await asyncio.sleep(0.2)  # (past its TTL however slow the machine)
    await get(brief)
    assert asked == ["localhost"] * 3
    async with make_session(ttl_dns_cache=0).get(srv.url()) as resp:  # an address: nothing to look up
        assert resp.status == 200
    assert len(asked) == 3


async def test_each_address_is_tried_in_turn_and_a_name_that_failed_is_looked_up_again(raw, make_session,
                                                                                         monkeypatch):
    srv = await raw(keep_alive(lambda req, n: answer(200, b"ok")))
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))  # (bound, never listening: connecting is refused)
    dead = (socket.AF_INET, socket.SOCK_STREAM, 6, "", closed.getsockname())
    live = (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", srv.port))
    lacking = (12345, socket.SOCK_STREAM, 6, "", ("::1", 1))  # (a family this host cannot make a socket of)
    answers = [[dead], [lacking, dead, live]]
    asked = count_lookups(monkeypatch, lambda host, port: answers.pop(0))
    session = make_session()
    try:
        with pytest.raises(UpstreamConnectError, match="could not connect to the upstream"):
            await session.get(f"http://upstream.test:{srv.port}/")
        async with session.get(f"http://upstream.test:{srv.port}/a") as resp:  # asked again: the dead one, then the live
            assert resp.status == 200 and await resp.read() == b"ok"
    finally:
        closed.close()
    assert asked == ["upstream.test", "upstream.test"]
    assert srv.requests[0].header("Host") == f"upstream.test:{srv.port}"

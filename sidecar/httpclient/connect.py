"""Opening a connection for a target: TCP (to each address the name resolves to, in turn), then
TLS with certificate and host-name checks for https, through the environment's proxy when there
is one (a CONNECT tunnel for https)."""

from __future__ import annotations

import asyncio
import socket
import ssl
from typing import TYPE_CHECKING

import aiohttp

from sidecar.httpclient.errors import ConnectTimeoutError, ProxyConnectError, UpstreamConnectError, connect_error
from sidecar.httpclient.protocol import Connection
from sidecar.httpclient.resolve import Resolver, is_ip_literal

if TYPE_CHECKING:
    from sidecar.httpclient.pool import Pool
    from sidecar.httpclient.target import Target


async def open_connection(pool: Pool, target: Target, ssl_context: ssl.SSLContext, resolver: Resolver,
                          until: float | None, sock_connect: float | None) -> Connection:
    """A connected :class:`Connection` for ``target`` by ``until`` (loop time) and within
    ``sock_connect`` seconds; failures as :class:`UpstreamConnectError` (:class:`UpstreamCertificateError`
    for a certificate, :class:`ProxyConnectError` for the proxy), too slow as a timeout error."""
    loop = pool.loop
    if sock_connect is not None:
        by = loop.time() + sock_connect
        until = by if until is None else min(until, by)
    if until is None:
        return await _open(pool, target, ssl_context, resolver)
    try:
        async with asyncio.timeout_at(until):
            return await _open(pool, target, ssl_context, resolver)
    except TimeoutError as exc:
        if isinstance(exc, aiohttp.ClientError):  # (a timeout from within: already ours)
            raise
        raise ConnectTimeoutError("timed out connecting to the upstream") from None


async def _open(pool: Pool, target: Target, ssl_context: ssl.SSLContext, resolver: Resolver) -> Connection:
    loop = pool.loop
    conn = Connection(loop, pool, target.key)
    proxy = target.proxy
    try:
        if proxy is None:
            await _connect(resolver, conn, target.host, target.port, ssl_context if target.https else None)
            return conn
        try:
            await _connect(resolver, conn, proxy.host, proxy.port, ssl_context if proxy.tls else None)
        except OSError as exc:  # ssl.SSLError included
            raise connect_error(exc, proxy=True) from exc
        if target.https:
            await _tunnel(conn, target)
            conn.transport = await loop.start_tls(conn.transport, conn, ssl_context, server_hostname=target.host)
        return conn
    except OSError as exc:
        conn.counted = False  # the pool's reservation is undone by the pool
        conn.close()
        if isinstance(exc, UpstreamConnectError):  # (already ours: the proxy's, say)
            raise
        raise connect_error(exc) from exc
    except BaseException:
        conn.counted = False
        conn.close()
        raise


async def _connect(resolver: Resolver, conn: Connection, host: str, port: int, tls: ssl.SSLContext | None) -> None:
    """Connect ``conn`` to ``host:port``: to each address the name resolves to, in turn, until
    one takes the connection (a TLS failure is not the address's fault: it ends the attempt). When
    none does, the name is looked up afresh next time: its addresses may have changed."""
    loop = resolver.loop
    server_hostname = host if tls is not None else None
    if is_ip_literal(host):
        await loop.create_connection(lambda: conn, host, port, ssl=tls, server_hostname=server_hostname)
        return
    failure: OSError | None = None
    for family, sockaddr in await resolver.addresses(host, port):
        try:
            sock = socket.socket(family, socket.SOCK_STREAM)  # (a family the host lacks: the next address)
        except OSError as exc:
            failure = exc
            continue
        try:
            sock.setblocking(False)
            await loop.sock_connect(sock, sockaddr)
        except OSError as exc:
            sock.close()
            failure = exc
            continue
        except BaseException:
            sock.close()
            raise
        await loop.create_connection(lambda: conn, sock=sock, ssl=tls, server_hostname=server_hostname)
        return
    resolver.forget(host, port)
    assert failure is not None
    raise failure


async def _tunnel(conn: Connection, target: Target) -> None:
    """Ask the proxy for a tunnel to the target (CONNECT host:port)."""
    proxy = target.proxy
    assert proxy is not None
    authority = f"[{target.host}]:{target.port}" if ":" in target.host else f"{target.host}:{target.port}"
    lines = [f"CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n"]
    if proxy.authorization:
        lines.append(f"Proxy-Authorization: {proxy.authorization}\r\n")
    lines.append("\r\n")
    try:
        status = await conn.open_tunnel("".join(lines).encode("utf-8"))
    except OSError as exc:
        raise ProxyConnectError(f"the proxy closed the connection before the tunnel opened "
                                f"({type(exc).__name__})") from exc
    except Exception as exc:
        raise ProxyConnectError(f"the proxy did not open a tunnel ({type(exc).__name__})") from exc
    if status == 407:
        raise ProxyConnectError("the proxy asks for authentication (407): check the credentials in HTTPS_PROXY")
    if not 200 <= status < 300:
        raise ProxyConnectError(f"the proxy refused the tunnel ({status})")

"""Opening a connection for a target: TCP, then TLS with certificate and host-name checks for
https, through the environment's proxy when there is one (a CONNECT tunnel for https)."""

from __future__ import annotations

import asyncio
import ssl
from typing import TYPE_CHECKING

import aiohttp

from sidecar.httpclient.errors import ConnectTimeoutError, ProxyConnectError, connect_error
from sidecar.httpclient.protocol import Connection

if TYPE_CHECKING:
    from sidecar.httpclient.pool import Pool
    from sidecar.httpclient.target import Target


async def open_connection(pool: Pool, target: Target, ssl_context: ssl.SSLContext, until: float | None,
                          sock_connect: float | None) -> Connection:
    """A connected :class:`Connection` for ``target`` by ``until`` (loop time) and within
    ``sock_connect`` seconds; failures as :class:`UpstreamConnectError` (:class:`UpstreamCertificateError`
    for a certificate, :class:`ProxyConnectError` for the proxy), too slow as a timeout error."""
    loop = pool.loop
    if sock_connect is not None:
        by = loop.time() + sock_connect
        until = by if until is None else min(until, by)
    if until is None:
        return await _open(pool, target, ssl_context)
    try:
        async with asyncio.timeout_at(until):
            return await _open(pool, target, ssl_context)
    except TimeoutError as exc:
        if isinstance(exc, aiohttp.ClientError):  # (a timeout from within: already ours)
            raise
        raise ConnectTimeoutError("timed out connecting to the upstream") from None


async def _open(pool: Pool, target: Target, ssl_context: ssl.SSLContext) -> Connection:
    loop = pool.loop
    conn = Connection(loop, pool, target.key)
    proxy = target.proxy
    try:
        if proxy is None:
            tls = ssl_context if target.https else None
            await loop.create_connection(lambda: conn, target.host, target.port, ssl=tls,
                                         server_hostname=target.host if tls else None)
            return conn
        proxy_tls = ssl_context if proxy.tls else None
        try:
            await loop.create_connection(lambda: conn, proxy.host, proxy.port, ssl=proxy_tls,
                                         server_hostname=proxy.host if proxy_tls else None)
        except OSError as exc:  # ssl.SSLError included
            raise connect_error(exc, proxy=True) from exc
        if target.https:
            await _tunnel(conn, target)
            conn.transport = await loop.start_tls(conn.transport, conn, ssl_context, server_hostname=target.host)
        return conn
    except OSError as exc:
        conn.counted = False  # the pool's reservation is undone by the pool
        conn.close()
        raise connect_error(exc) from exc
    except BaseException:
        conn.counted = False
        conn.close()
        raise


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

"""``LeanSession``: the subset of :class:`aiohttp.ClientSession` the sidecar and its plugins use
(``request``/``post``/``get`` with ``data``, ``headers`` and a :class:`aiohttp.ClientTimeout`),
on keep-alive HTTP/1.1 connections parsed by llhttp."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable, Generator, Mapping
from typing import Any

import aiohttp
import yarl
from multidict import CIMultiDictProxy

from sidecar.httpclient.connect import open_connection
from sidecar.httpclient.pool import Pool
from sidecar.httpclient.protocol import Connection
from sidecar.httpclient.proxy import ProxyConfig
from sidecar.httpclient.resolve import DEFAULT_TTL, Resolver
from sidecar.httpclient.response import LeanResponse
from sidecar.httpclient.target import Target, Targets

DEFAULT_TIMEOUT = aiohttp.ClientTimeout(total=300, sock_connect=30)
"""aiohttp's default, for a request given no timeout."""

_SPECIAL_LENGTHS = frozenset((4, 14, 17))  # host, content-length, transfer-encoding: checked by name
_BODY_METHODS = frozenset(("POST", "PUT", "PATCH"))
_REPLAYABLE = (bytes, bytearray, memoryview)


def default_ssl_context() -> ssl.SSLContext:
    """The system's CAs with certificate and host-name checks: the context aiohttp built when it
    was imported (the server imports it anyway), else a new one. Building one loads every CA
    from disk (~0.1 s here), which would block the event loop at the first https request."""
    shared = getattr(aiohttp.connector, "_SSL_CONTEXT_VERIFIED", None)
    if isinstance(shared, ssl.SSLContext) and shared.verify_mode == ssl.CERT_REQUIRED and shared.check_hostname:
        return shared
    return ssl.create_default_context()


class RequestContext:
    """What ``session.request(...)`` returns: awaited, the response (left open); ``async with``,
    the response, released on exit."""

    __slots__ = ("_coro", "_resp")

    def __init__(self, coro: Any) -> None:
        self._coro = coro
        self._resp: LeanResponse | None = None

    def __await__(self) -> Generator[Any, None, LeanResponse]:
        return self._coro.__await__()

    async def __aenter__(self) -> LeanResponse:
        self._resp = await self._coro
        return self._resp

    async def __aexit__(self, *exc: object) -> None:
        if self._resp is not None:
            self._resp.release()


class LeanSession:
    """Keep-alive connections per (scheme, host, port, proxy): at most ``limit`` in all and
    ``limit_per_host`` to one (0: no bound), idle ones closed after ``keepalive_timeout`` seconds.
    ``request_headers``, when given, is called once per request for headers to add. Host names
    are resolved once per ``ttl_dns_cache`` seconds (aiohttp's default, 10; 0: every connection)."""

    def __init__(self, *, limit: int, limit_per_host: int, keepalive_timeout: float,
                 ssl_context: ssl.SSLContext | None = None, trust_env: bool = True,
                 request_headers: Callable[[], Mapping[str, str] | None] | None = None,
                 ttl_dns_cache: float = DEFAULT_TTL) -> None:
        self._limit = limit
        self._limit_per_host = limit_per_host
        self._keepalive_timeout = keepalive_timeout
        self._ssl = ssl_context
        self._targets = Targets(ProxyConfig(trust_env))
        self._request_headers = request_headers
        self._ttl_dns_cache = ttl_dns_cache
        self._pool: Pool | None = None
        self._resolver: Resolver | None = None
        self.closed = False

    # -- aiohttp.ClientSession's surface ----------------------------------------------------

    def request(self, method: str, url: str | yarl.URL, *, data: Any = None,
                headers: Mapping[str, str] | None = None,
                timeout: aiohttp.ClientTimeout | None = None) -> RequestContext:
        return RequestContext(self._request(method.upper(), url, data, headers, timeout))

    def post(self, url: str | yarl.URL, *, data: Any = None, headers: Mapping[str, str] | None = None,
             timeout: aiohttp.ClientTimeout | None = None) -> RequestContext:
        return RequestContext(self._request("POST", url, data, headers, timeout))

    def get(self, url: str | yarl.URL, *, data: Any = None, headers: Mapping[str, str] | None = None,
            timeout: aiohttp.ClientTimeout | None = None) -> RequestContext:
        return RequestContext(self._request("GET", url, data, headers, timeout))

    async def post_read(self, url: str | yarl.URL, data: Any, headers: Mapping[str, str] | None,
                        timeout: aiohttp.ClientTimeout | None) -> tuple[int, CIMultiDictProxy[str], bytes]:
        """POST and read the whole answer: its status, headers and body, the connection given
        back. What ``async with session.post(...) as resp: await resp.read()`` does, without the
        context object and its two coroutines (a JSON call's answer: :func:`sidecar.upstream.post_json`)."""
        resp = await self._request("POST", url, data, headers, timeout)
        try:
            body = await resp.read()
        finally:
            resp.release()
        return resp.status, resp.headers, body

    async def close(self) -> None:
        """Close every connection, idle or in use."""
        self.closed = True
        if self._pool is not None:
            self._pool.close()

    async def __aenter__(self) -> LeanSession:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- one request ------------------------------------------------------------------------

    async def _request(self, method: str, url: str | yarl.URL, data: Any,
                       headers: Mapping[str, str] | None, timeout: aiohttp.ClientTimeout | None,
                       ) -> LeanResponse:
        if self.closed:
            raise RuntimeError("Session is closed")
        pool = self._pool or self._start()
        try:
            target = self._targets.get(url)
        except ValueError as exc:
            raise aiohttp.InvalidURL(str(exc)) from None
        if isinstance(data, str):
            data = data.encode("utf-8")
        replayable = data is None or isinstance(data, _REPLAYABLE)
        if not replayable and not hasattr(data, "__aiter__"):
            raise TypeError("data must be bytes or an async iterable of bytes")
        head = self._head(method, target, headers, data, replayable)
        t = timeout or DEFAULT_TIMEOUT
        now = pool.loop.time()
        deadline = now + t.total if t.total else None
        wait_until = now + t.connect if t.connect else None
        if deadline is not None and (wait_until is None or deadline < wait_until):
            wait_until = deadline
        head_only = method == "HEAD"
        conn = await pool.acquire(target, wait_until, t.sock_connect)
        reused = conn.requests > 0
        try:
            return await conn.send(head, data, deadline, t.sock_read, head_only)
        except aiohttp.ServerDisconnectedError:
            # the upstream closed a kept-alive connection as the request went out: once more on a
            # fresh one, if nothing of an answer came and the body can be sent again
            if not (reused and replayable and not conn.got_bytes):
                raise
        conn = await pool.acquire(target, wait_until, t.sock_connect, fresh=True)
        return await conn.send(head, data, deadline, t.sock_read, head_only)

    def _start(self) -> Pool:
        if self._ssl is None:
            self._ssl = default_ssl_context()
        loop = asyncio.get_running_loop()
        self._resolver = Resolver(loop, self._ttl_dns_cache)
        self._pool = Pool(loop, self._limit, self._limit_per_host, self._keepalive_timeout, self._open)
        return self._pool

    async def _open(self, target: Target, until: float | None, sock_connect: float | None) -> Connection:
        assert self._pool is not None and self._ssl is not None and self._resolver is not None
        return await open_connection(self._pool, target, self._ssl, self._resolver, until, sock_connect)

    def _head(self, method: str, target: Target, headers: Mapping[str, str] | None, data: Any,
              replayable: bool) -> bytes:
        """The request head as bytes: the caller's headers (and the hook's), ``Host`` unless given,
        the body's framing, nothing else."""
        lines: list[str] = []
        host = True
        extra = self._request_headers() if self._request_headers is not None else None
        for given in (headers, extra):
            if given:
                for name, value in given.items():
                    if len(name) in _SPECIAL_LENGTHS:
                        low = name.lower()
                        if low == "host":
                            host = False
                        elif low == "content-length" or low == "transfer-encoding":
                            continue  # the body's framing is ours to say
                    lines.append(f"{name}: {value}\r\n")
        block = "".join(lines)
        if block.count("\n") != len(lines) or block.count("\r") != len(lines):
            raise ValueError("a request header contains a line break")
        if data is None:
            framing = "Content-Length: 0\r\n" if method in _BODY_METHODS else ""
        elif replayable:
            framing = f"Content-Length: {len(data)}\r\n"
        else:
            framing = "Transfer-Encoding: chunked\r\n"
        proxy = target.proxy
        if proxy is not None and proxy.authorization and not target.https:
            framing += f"Proxy-Authorization: {proxy.authorization}\r\n"
        host_line = f"Host: {target.host_header}\r\n" if host else ""
        return f"{method} {target.request_target} HTTP/1.1\r\n{host_line}{block}{framing}\r\n".encode("utf-8")

"""An upstream answer: status, headers and a body that arrives from the connection's parser,
read whole (:meth:`LeanResponse.read`) or as it comes (``.content.iter_any()``), with the
connection's reading paused while too much is buffered."""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import aiohttp
from multidict import CIMultiDictProxy

if TYPE_CHECKING:
    from sidecar.httpclient.protocol import Connection

HIGH_WATER = 256 * 1024
"""Buffered body bytes above which the connection stops reading until the consumer catches up."""
LOW_WATER = 64 * 1024


class _Deflate:
    """``Content-Encoding: deflate``: zlib-wrapped as the RFC says, or raw as some servers send."""

    __slots__ = ("_d",)

    def __init__(self) -> None:
        self._d: Any = None

    def decompress(self, data: bytes) -> bytes:
        if self._d is None:
            self._d = zlib.decompressobj(15 if data[:1] and data[0] & 0x0F == 8 else -15)
        return self._d.decompress(data)

    def flush(self) -> bytes:
        return self._d.flush() if self._d is not None else b""


def _decoder(encoding: str) -> Any:
    encoding = encoding.strip().lower()
    if encoding in ("gzip", "x-gzip"):
        return zlib.decompressobj(31)
    if encoding == "deflate":
        return _Deflate()
    return None  # identity, or one we do not know: passed through as aiohttp does


class LeanResponse:
    """The subset of :class:`aiohttp.ClientResponse` the sidecar uses. ``content`` is the response
    itself (``content.iter_any()``, ``content.iter_chunked(n)``)."""

    __slots__ = ("status", "reason", "headers", "until_close", "_conn", "_buf", "_size",
                 "_waiter", "_eof", "_exc", "_decoder", "_read_all", "_body", "_sock_read", "__weakref__")

    def __init__(self, conn: Connection, status: int, reason: str, headers: CIMultiDictProxy[str],
                 sock_read: float | None) -> None:
        self.status = status
        self.reason = reason
        self.headers = headers
        self.until_close = False
        self._conn: Connection | None = conn
        self._buf: list[bytes] = []
        self._size = 0
        self._waiter: Any = None
        self._eof = False
        self._exc: BaseException | None = None
        self._decoder: Any = None
        self._read_all = False
        self._body: bytes | None = None
        self._sock_read = sock_read

    def __repr__(self) -> str:
        return f"<LeanResponse {self.status} {self.reason}>"

    @property
    def content(self) -> LeanResponse:
        """The body's reader: the response itself (a property, not an attribute: no reference cycle,
        so a response dropped unreleased is freed at once)."""
        return self

    def __del__(self) -> None:
        conn = self._conn
        if conn is not None:  # dropped unreleased while its body was still coming: free the connection
            self._conn = None
            try:
                conn.loop.call_soon_threadsafe(conn.close)  # (the collector may run in any thread)
            except RuntimeError:  # the loop is closed: its transports are gone anyway
                pass

    @property
    def ok(self) -> bool:
        return self.status < 400

    # -- fed by the connection --------------------------------------------------------------

    def prepare_body(self, headers: CIMultiDictProxy[str]) -> None:
        """How the body is framed and encoded, from the head."""
        encoding = headers.get("Content-Encoding")
        if encoding is not None:
            self._decoder = _decoder(encoding)
        te = headers.get("Transfer-Encoding")
        if te is None:
            self.until_close = "Content-Length" not in headers
        else:
            self.until_close = "chunked" not in te.lower()

    def feed_data(self, data: bytes) -> None:
        decoder = self._decoder
        if decoder is not None:
            try:
                data = decoder.decompress(data)
            except zlib.error:
                raise aiohttp.ClientPayloadError("the upstream's compressed body is not valid") from None
            if not data:
                return
        self._buf.append(data)
        self._size += len(data)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        if self._size > HIGH_WATER and not self._read_all:
            conn = self._conn
            if conn is not None and not conn.paused:
                conn.pause()

    def feed_eof(self) -> None:
        decoder = self._decoder
        if decoder is not None:
            self._decoder = None
            try:
                tail = decoder.flush()
            except zlib.error:
                self.set_exception(aiohttp.ClientPayloadError("the upstream's compressed body is not valid"))
                return
            if tail:
                self._buf.append(tail)
                self._size += len(tail)
        self._eof = True
        self._conn = None
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def set_exception(self, exc: BaseException) -> None:
        self._exc = exc
        self._conn = None
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # -- read by the caller -----------------------------------------------------------------

    async def _wait(self) -> None:
        conn = self._conn
        assert conn is not None
        loop = conn.loop
        waiter = self._waiter = loop.create_future()
        handle = loop.call_later(self._sock_read, conn.read_timed_out, self) if self._sock_read is not None else None
        try:
            await waiter
        finally:
            self._waiter = None
            if handle is not None:
                handle.cancel()

    def _take(self, limit: int = 0) -> bytes:
        """The buffered bytes (at most ``limit`` when given); reading resumes below the low water."""
        buf = self._buf
        if limit and self._size > limit:
            data = b"".join(buf)
            buf[:] = [data[limit:]]
            data = data[:limit]
            self._size -= limit
        else:
            data = buf[0] if len(buf) == 1 else b"".join(buf)
            buf.clear()
            self._size = 0
        conn = self._conn
        if conn is not None and conn.paused and self._size < LOW_WATER:
            conn.resume()
        return data

    async def read(self) -> bytes:
        """The whole (decoded) body; read once, then the same bytes again."""
        if self._body is not None:
            return self._body
        if not self._eof:
            self._read_all = True
            conn = self._conn
            if conn is not None:
                conn.resume()
            while not self._eof:
                if self._exc is not None:
                    raise self._exc
                await self._wait()
        if self._exc is not None:
            raise self._exc
        self._body = body = self._take() if self._buf else b""
        return body

    def iter_any(self) -> AsyncIterator[bytes]:
        """The body's bytes as they arrive (everything buffered at each step)."""
        return _Pieces(self, 0)

    def iter_chunked(self, n: int) -> AsyncIterator[bytes]:
        """The body's bytes as they arrive, at most ``n`` at a time."""
        return _Pieces(self, n)

    # -- the connection's return ------------------------------------------------------------

    def release(self) -> None:
        """Done with the answer: its connection went back to the pool if the body ended, else it
        is closed (an unread body is not worth reading to reuse the connection)."""
        conn = self._conn
        if conn is not None:
            self._conn = None
            conn.response = None
            conn.close()

    close = release

    async def __aenter__(self) -> LeanResponse:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.release()


class _Pieces:
    """:meth:`LeanResponse.iter_any` and ``iter_chunked``: an iterator object, not an async
    generator, because a reader that stops early (an SSE stream's ``[DONE]``) drops it unfinished,
    and asyncio finalises a dropped async generator through ``call_soon_threadsafe``: a write to
    the loop's self-pipe and an extra wake-up per stream."""

    __slots__ = ("_resp", "_limit")

    def __init__(self, resp: LeanResponse, limit: int) -> None:
        self._resp = resp
        self._limit = limit

    def __aiter__(self) -> _Pieces:
        return self

    async def __anext__(self) -> bytes:
        resp = self._resp
        while True:
            if resp._buf:
                return resp._take(self._limit)
            if resp._exc is not None:
                raise resp._exc
            if resp._eof:
                raise StopAsyncIteration
            await resp._wait()

"""One keep-alive HTTP/1.1 connection: an asyncio Protocol whose llhttp parser (httptools) turns
the upstream's bytes into a :class:`LeanResponse`. No task of its own: the caller's task awaits
futures that ``data_received`` and the timers set."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterable
from typing import TYPE_CHECKING, Any

import aiohttp
from httptools import HttpParserCallbackError, HttpParserError, HttpResponseParser
from multidict import CIMultiDict, CIMultiDictProxy

from sidecar.httpclient.errors import MalformedAnswerError, ReadTimeoutError
from sidecar.httpclient.response import LeanResponse

if TYPE_CHECKING:
    from sidecar.httpclient.pool import Pool

_NAMES: dict[bytes, str] = {}
"""Header names seen before, decoded once (bounded: cleared when it grows past a few hundred)."""

_LAST_CHUNK = b"0\r\n\r\n"


def _name(raw: bytes) -> str:
    name = _NAMES.get(raw)
    if name is None:
        if len(_NAMES) > 512:
            _NAMES.clear()
        name = _NAMES[raw] = raw.decode("latin-1")
    return name


class Connection(asyncio.Protocol):
    """A connection to one pool key; serves one request at a time (no pipelining)."""

    __slots__ = ("loop", "pool", "key", "transport", "parser", "waiter", "_response", "exc", "closed",
                 "requests", "got_bytes", "head_only", "keep_alive", "sent", "idle_since", "in_pool",
                 "counted", "due", "sock_read", "paused", "drain_waiter", "write_paused", "_raw", "_body",
                 "_reason", "tunnel")

    def __init__(self, loop: asyncio.AbstractEventLoop, pool: Pool, key: tuple) -> None:
        self.loop = loop
        self.pool = pool
        self.key = key
        self.transport: Any = None
        self.parser = HttpResponseParser(self)
        self.waiter: asyncio.Future | None = None  # the answer head (or the CONNECT answer's status)
        self._response: weakref.ref[LeanResponse] | None = None
        self.exc: BaseException | None = None
        self.closed = False
        self.requests = 0
        self.got_bytes = False
        self.head_only = False
        self.keep_alive = True
        self.sent = True
        self.idle_since = 0.0
        self.in_pool = False
        self.counted = True
        self.due: int | None = None  # the tick of the call's total deadline (pool.deadlines)
        self.sock_read: float | None = None
        self.paused = False
        self.drain_waiter: asyncio.Future | None = None
        self.write_paused = False
        self._raw: list[tuple[str, str]] = []
        self._body: list[bytes] = []  # body pieces of the current read, handed on once it is parsed
        self._reason = b""
        self.tunnel = False

    @property
    def response(self) -> LeanResponse | None:
        """The answer whose body is arriving, held weakly: one its caller dropped without releasing
        it is collected, and closes this connection (``LeanResponse.__del__``), as aiohttp's do;
        else an abandoned stream would keep its connection, and its pool slot, for good."""
        ref = self._response
        return ref() if ref is not None else None

    @response.setter
    def response(self, resp: LeanResponse | None) -> None:
        self._response = weakref.ref(resp) if resp is not None else None

    # -- asyncio.Protocol -------------------------------------------------------------------

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.got_bytes = True
        try:
            self.parser.feed_data(data)
        except HttpParserCallbackError as exc:
            self._body.clear()
            self.fail(exc.__context__ or exc)
        except HttpParserError as exc:
            self._body.clear()
            if self.response is None:
                self.fail(MalformedAnswerError(f"the upstream's answer is not valid HTTP ({exc})"))
            else:
                self.fail(aiohttp.ClientPayloadError(f"the upstream's answer body is not valid ({exc})"))
        else:
            if self._body:
                try:
                    self._hand_body()
                except aiohttp.ClientPayloadError as exc:  # (a compressed body that is not valid)
                    self.fail(exc)

    def _hand_body(self) -> None:
        """The body pieces llhttp found in one read, to the response in one piece: a chunked
        answer (an SSE stream: a chunk per event) would otherwise wake its reader per chunk."""
        pieces = self._body
        data = pieces[0] if len(pieces) == 1 else b"".join(pieces)
        pieces.clear()
        resp = self.response
        if resp is not None:
            resp.feed_data(data)

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.pool.discard(self)
        self._forget_deadline()
        resp = self.response
        if resp is not None:
            self.response = None
            if resp.until_close and self.exc is None:
                resp.feed_eof()
            else:
                resp.set_exception(self.exc or aiohttp.ClientPayloadError(
                    "the upstream closed the connection before the answer's body ended"))
        waiter = self.waiter
        if waiter is not None:
            self.waiter = None
            if not waiter.done():
                waiter.set_exception(self.exc or aiohttp.ServerDisconnectedError(
                    "the upstream closed the connection before answering"))
        drain = self.drain_waiter
        if drain is not None and not drain.done():
            drain.set_exception(self.exc or aiohttp.ServerDisconnectedError(
                "the upstream closed the connection while the request was being sent"))

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        drain = self.drain_waiter
        if drain is not None and not drain.done():
            drain.set_result(None)

    # -- httptools callbacks ----------------------------------------------------------------

    def on_status(self, reason: bytes) -> None:
        self._reason += reason

    def on_header(self, name: bytes, value: bytes) -> None:
        self._raw.append((_name(name), value.decode("utf-8", "surrogateescape")))

    def on_headers_complete(self) -> None:
        parser = self.parser
        status = parser.get_status_code()
        raw, reason = self._raw, self._reason
        self._raw, self._reason = [], b""
        waiter = self.waiter
        if waiter is None or waiter.done():  # nothing asked: an idle connection talking, or a late answer
            raise MalformedAnswerError("the upstream sent an answer no request asked for")
        if self.tunnel:  # the proxy's answer to CONNECT: TLS follows, read by a fresh parser
            self.parser = HttpResponseParser(self)
            self.waiter = None
            waiter.set_result(status)
            return
        if status < 200:  # 1xx: an interim answer; the real one follows
            return
        self.keep_alive = parser.should_keep_alive()
        headers = CIMultiDictProxy(CIMultiDict(raw))
        no_body = self.head_only or status == 204 or status == 304
        resp = LeanResponse(self, status, reason.decode("latin-1"), headers, self.sock_read)
        if no_body:
            resp.feed_eof()
            if self.head_only:  # llhttp would wait for the body Content-Length announces:
                self.parser = HttpResponseParser(self)  # the next answer gets a fresh parser
        else:
            resp.prepare_body(headers)
            self.response = resp
        self.waiter = None  # let go before the pool may hand the connection on (answer_done below)
        waiter.set_result(resp)
        if no_body:
            self.answer_done()

    def on_body(self, body: bytes) -> None:
        self._body.append(body)  # (handed on when the read is parsed, or the answer ends)

    def on_message_complete(self) -> None:
        if self._body:
            self._hand_body()
        resp = self.response
        if resp is not None:
            self.response = None
            resp.feed_eof()
            self.answer_done()

    # -- the exchange -----------------------------------------------------------------------

    async def send(self, head: bytes, body: Any, deadline: float | None, sock_read: float | None,
                   head_only: bool = False) -> LeanResponse:
        """Send one request and wait for the answer head; the body follows on the response."""
        loop = self.loop
        self.requests += 1
        self.got_bytes = False
        self.exc = None
        self.keep_alive = True
        self.sock_read = sock_read
        self.head_only = head_only
        waiter = self.waiter = loop.create_future()
        if deadline is not None:
            self.due = self.pool.deadlines.add(self, deadline)
        try:
            if body is None:
                self.pool.write(self.transport, head)
            elif isinstance(body, bytes | bytearray | memoryview):
                if len(body) <= 65536:
                    self.pool.write(self.transport, head + body)
                else:
                    self.transport.write(head)
                    self.transport.write(body)
            else:
                self.sent = False
                self.transport.write(head)
                await self._send_chunks(body)
            if not waiter.done() and sock_read is not None:
                handle = loop.call_later(sock_read, self.read_timed_out, waiter)
                try:
                    return await waiter
                finally:
                    handle.cancel()
            return await waiter
        except BaseException:
            # this exchange's failure, or the caller cancelled: close, unless the answer already
            # ended and the connection serves someone else now
            if self.waiter is waiter:
                self.waiter = None
                self.close()
            elif waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                waiter.result().release()  # the head came, nobody will read its body
            raise

    async def _send_chunks(self, body: AsyncIterable[bytes]) -> None:
        """A request body from an async iterable, sent chunked as it comes (drained when the
        transport's write buffer is full)."""
        write = self.transport.write
        async for chunk in body:
            if self.closed or self.transport.is_closing():
                break
            if chunk:
                write(b"%x\r\n%b\r\n" % (len(chunk), chunk))
                if self.write_paused:
                    await self.drain()
        else:
            if not self.closed:
                write(_LAST_CHUNK)
        self.sent = True
        if self.waiter is None or self.waiter.done():  # answered while still sending: do not reuse
            self.keep_alive = False
            if self.response is None and not self.closed and self.exc is None:
                self.answer_done()

    async def drain(self) -> None:
        if self.closed:
            raise self.exc or aiohttp.ServerDisconnectedError("the upstream closed the connection")
        self.drain_waiter = self.loop.create_future()
        try:
            await self.drain_waiter
        finally:
            self.drain_waiter = None

    async def open_tunnel(self, head: bytes) -> int:
        """Send a proxy's CONNECT and return the status of its answer."""
        self.tunnel = True
        waiter = self.waiter = self.loop.create_future()
        try:
            self.transport.write(head)
            return await waiter
        finally:
            if self.waiter is waiter:
                self.waiter = None
            self.tunnel = False

    def answer_done(self) -> None:
        """The answer ended: back to the pool if it may carry another exchange, else closed."""
        self._forget_deadline()
        if self.paused:
            self.paused = False
            self.transport.resume_reading()
        if not self.sent:  # the streamed upload is still going; it ends the exchange
            self.keep_alive = False
            return
        if self.keep_alive and not self.closed:
            self.pool.release(self)
        else:
            self.close()

    # -- failures and closing ---------------------------------------------------------------

    def read_timed_out(self, owner: object) -> None:
        """``sock_read`` passed waiting for ``owner`` (the head's waiter or the response): fail it,
        if it is still this connection's exchange."""
        if owner is self.waiter or owner is self.response:
            self.fail(ReadTimeoutError("timed out reading the upstream's answer"))

    def total_timed_out(self) -> None:
        self.due = None
        self.fail(asyncio.TimeoutError())

    def fail(self, exc: BaseException) -> None:
        """End the exchange with ``exc`` (for whoever waits) and close the connection."""
        if self.exc is None:
            self.exc = exc
        waiter = self.waiter
        if waiter is not None:
            self.waiter = None
            if not waiter.done():
                waiter.set_exception(exc)
        resp = self.response
        if resp is not None:
            self.response = None
            resp.set_exception(exc)
        drain = self.drain_waiter
        if drain is not None and not drain.done():
            drain.set_exception(exc)
        self.close()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._forget_deadline()
            if self.transport is not None:
                self.transport.close()
            self.pool.discard(self)

    def _forget_deadline(self) -> None:
        if self.due is not None:
            self.pool.deadlines.remove(self, self.due)
            self.due = None

    def pause(self) -> None:
        if not self.paused and not self.closed:
            self.paused = True
            self.transport.pause_reading()

    def resume(self) -> None:
        if self.paused:
            self.paused = False
            if not self.closed:
                self.transport.resume_reading()

"""The asyncio loop the sidecar serves on when uvloop is not installed: asyncio's own selector loop,
with a turn's socket writes sent together at its end, and less bookkeeping in Python per callback.

**Writes at the end of the turn.** A ``send`` on a socket whose peer sleeps in ``epoll_wait`` wakes
it, and on a virtual machine waking a process on the other core (an inter-processor interrupt) is
the dearest part of the send. Written at once, as asyncio does, each of a proxied chat's two sends
(the request to the upstream, the answer to the client) found its peer asleep again: the peer
had handled the previous one while the sidecar worked on the next request. Here a turn's writes
wait until its callbacks have all run, then go one after another, so a peer is woken about once
a turn, not once a request (chat at c=64: 29-45 µs of system time a request before, 15-19 after;
``bench/RESULTS.md``). (uvloop sends a write at once when nothing is queued; on uvloop the lean
upstream client holds a turn's later requests itself: :meth:`sidecar.httpclient.pool.Pool.write`.)
Only while the loop is idle (its last turn wrote to one connection at most) does a turn's first
write go at once: with one request in flight nothing would share its wake-up, and held, a chat
at c=1 waited for the rest of its turn (aiohttp's clean-up after the answer, +15 µs at the
median). A write waits at most for the rest of its turn; nothing is held across turns, and no
write is merged with another connection's. Only ``bytes`` are held (the caller may change a
``bytearray`` after writing it), at most :data:`HOLD_BYTES` a transport; a transport with data
queued already, closing, or in a ``sendfile`` writes as asyncio does.

**Callbacks.** On Python 3.11 a future's callback, a task's every step and each wake-up goes through
``loop.call_soon``, and each time asyncio makes five Python calls (``call_soon``, ``_check_closed``,
``_call_soon``, ``Handle.__init__`` and ``get_debug`` in it). Here ``call_soon`` makes its handle
itself, ``time`` is ``time.monotonic`` and ``get_debug`` a C method while debug mode is off. In
debug mode and on a closed loop everything goes through asyncio's own code, its checks and errors.
"""

from __future__ import annotations

import asyncio
import contextvars
import sys
import time
from asyncio import events, selector_events
from typing import Any, Callable

__all__ = ["LeanLoop", "new_event_loop"]


class _Handle(events.Handle):
    """asyncio's ``Handle``, made without asking the loop whether it is in debug mode (its maker,
    :meth:`LeanLoop.call_soon`, only makes one when it is not)."""

    __slots__ = ()

    def __init__(self, callback: Callable[..., Any], args: tuple[Any, ...], loop: asyncio.AbstractEventLoop,
                 context: contextvars.Context | None) -> None:
        self._callback = callback
        self._args = args
        self._loop = loop
        self._cancelled = False
        self._repr = None
        self._source_traceback = None
        self._context = contextvars.copy_context() if context is None else context


_Handle.__name__ = _Handle.__qualname__ = "Handle"  # (as handles show in logs)

HOLD_BYTES = 65536
"""The most a transport holds in a turn; a turn that writes more sends it asyncio's way, so its flow
control (a paused protocol, a ``drain`` that waits) works as ever."""


class _SocketTransport(selector_events._SelectorSocketTransport):
    """asyncio's socket transport, whose writes wait for the end of the loop's turn (:class:`LeanLoop`)."""

    _held: bytes | None = None
    """What was written in this turn, not sent yet."""

    def write(self, data: bytes | bytearray | memoryview) -> None:
        held = self._held
        if held is not None:
            if len(held) + len(data) <= HOLD_BYTES:
                self._held = held + data
                return
            self.send_held()  # (a turn that writes more goes asyncio's way: sent, queued, paused)
        else:
            loop = self._loop
            writes = loop._writes
            loop._writes = writes + 1
            if ((writes or loop._busy)  # (an idle loop's first write goes at once: the module's doc)
                    and type(data) is bytes and 0 < len(data) <= HOLD_BYTES and not self._buffer
                    and not self._conn_lost and not self._eof and not self._closing and self._empty_waiter is None):
                self._held = data
                loop._held.append(self)
                return
        _write(self, data)

    def writelines(self, list_of_data: Any) -> None:
        self.write(b"".join(list_of_data))

    def send_held(self) -> None:
        """Send what this turn wrote (as asyncio's ``write``: at once, the rest when the socket can take it)."""
        held = self._held
        if held is not None:
            self._held = None
            _write(self, held)
            if self._protocol_paused:  # (by set_write_buffer_limits meanwhile: asyncio's write never resumes)
                self._maybe_resume_protocol()

    def get_write_buffer_size(self) -> int:
        return super().get_write_buffer_size() + len(self._held or b"")

    def write_eof(self) -> None:
        self.send_held()
        super().write_eof()

    def close(self) -> None:
        self.send_held()
        super().close()

    def _force_close(self, exc: BaseException | None) -> None:
        held, self._held = self._held, None
        if held is not None and not self._buffer and not self._conn_lost:
            try:  # (asyncio's write had sent it already: what the kernel takes now, the rest dropped as asyncio's queue)
                self._sock.send(held)
            except OSError:
                pass
        super()._force_close(exc)

    def _make_empty_waiter(self) -> asyncio.Future:
        self.send_held()  # (a sendfile starts after what was written before it)
        return super()._make_empty_waiter()


_write = selector_events._SelectorSocketTransport.write  # (asyncio's: the send, or the queue)
_run_once = asyncio.SelectorEventLoop._run_once


class LeanLoop(asyncio.SelectorEventLoop):
    """asyncio's selector loop: a turn's socket writes sent at its end, a cheaper ``call_soon``,
    ``time`` and ``get_debug``."""

    time = time.monotonic  # (a C function is no descriptor: ``loop.time()`` calls it as it is)
    holds_writes = True
    """(the lean upstream client's pool, :meth:`sidecar.httpclient.pool.Pool.write`, leaves it to the loop)"""

    def __init__(self, selector: Any = None) -> None:
        self._held: list[_SocketTransport] = []
        self._writes = 0  # (writes made in this turn)
        self._busy = False  # (whether the last turn wrote more than once: then every write is held)
        super().__init__(selector)
        self.get_debug = self._debug.__bool__  # (C: what C futures and tasks ask at creation)

    def set_debug(self, enabled: bool) -> None:
        super().set_debug(enabled)
        self.get_debug = bool(enabled).__bool__

    def _make_socket_transport(self, sock: Any, protocol: asyncio.BaseProtocol, waiter: Any = None, *,
                               extra: Any = None, server: Any = None) -> _SocketTransport:
        if sys.version_info >= (3, 12):
            self._ensure_fd_no_transport(sock)
        return _SocketTransport(self, sock, protocol, waiter, extra, server)

    def _run_once(self) -> None:
        if self._held:  # (written outside a turn: before the loop ran, between two runs)
            self._send_held()
        self._busy = self._writes > 1
        self._writes = 0
        try:
            _run_once(self)
        finally:  # (a callback's SystemExit or KeyboardInterrupt ends the turn early: what it wrote goes)
            if self._held:
                self._send_held()

    def _send_held(self) -> None:
        held, self._held = self._held, []
        try:
            for transport in held:
                transport.send_held()
        except BaseException:  # (a protocol's pause_writing raised: the rest go at the next turn's end)
            self._held.extend(t for t in held if t._held is not None)
            raise

    def close(self) -> None:
        if self._held:
            self._send_held()
        super().close()

    def call_soon(self, callback: Callable[..., Any], *args: Any,
                  context: contextvars.Context | None = None) -> events.Handle:
        if self._debug or self._closed:  # (asyncio's checks, its errors)
            return super().call_soon(callback, *args, context=context)
        handle = _Handle(callback, args, self, context)
        self._ready.append(handle)
        return handle

    def create_task(self, coro: Any, *, name: str | None = None,
                    context: contextvars.Context | None = None) -> asyncio.Task:
        if self._task_factory is not None or self._debug or self._closed:
            return super().create_task(coro, name=name, context=context)
        return asyncio.Task(coro, loop=self, name=name, context=context)


def new_event_loop() -> LeanLoop:
    """A new :class:`LeanLoop` (the loop factory ``sidecar serve`` uses without uvloop)."""
    return LeanLoop()

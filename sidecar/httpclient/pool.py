"""The keep-alive pool: connections per key (scheme, host, port, proxy), at most ``limit`` in all
and ``limit_per_host`` per key (0: no bound, as aiohttp); a request beyond waits, first come first
served, for a free one; idle connections close after ``keepalive_timeout`` (one sweep timer)."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import aiohttp

from sidecar.httpclient.deadlines import Deadlines
from sidecar.httpclient.errors import ConnectTimeoutError

if TYPE_CHECKING:
    from sidecar.httpclient.protocol import Connection
    from sidecar.httpclient.target import Target

Opener = Callable[["Target", "float | None", "float | None"], Awaitable["Connection"]]
"""``(target, until, sock_connect) -> Connection``: opens a connection by ``until`` (loop time)."""


def _timed_out(waiter: asyncio.Future) -> None:
    if not waiter.done():
        waiter.set_exception(ConnectTimeoutError("timed out waiting for a free upstream connection"))


class Pool:
    """Hands out connections; :meth:`release` takes them back, :meth:`discard` forgets closed ones."""

    def __init__(self, loop: asyncio.AbstractEventLoop, limit: int, limit_per_host: int,
                 keepalive_timeout: float, opener: Opener) -> None:
        self.loop = loop
        self.opener = opener
        self.limit = limit
        self.limit_per_host = limit_per_host
        self.keepalive_timeout = keepalive_timeout
        self.idle: dict[tuple, list[Connection]] = {}
        self.busy: set[Connection] = set()
        self.count: dict[tuple, int] = {}  # connecting, busy and idle, per key
        self.total = 0
        self.waiters: deque[tuple[tuple, asyncio.Future]] = deque()
        self.deadlines = Deadlines(loop)
        """The total deadlines of the exchanges in flight (:class:`~sidecar.httpclient.protocol.Connection`)."""
        self._sweeper: asyncio.TimerHandle | None = None
        self._waking = False
        self._held: list[tuple[asyncio.WriteTransport, bytes]] | None = None
        self._holds = not getattr(loop, "holds_writes", False)  # (sidecar.loop.LeanLoop holds them itself)
        self.closed = False

    # -- writing ----------------------------------------------------------------------------

    def write(self, transport: asyncio.WriteTransport, data: bytes) -> None:
        """Send ``data`` (a whole request): the first of a turn of the loop at once, the turn's
        later ones together once its callbacks have run. A send that finds the upstream asleep
        wakes it, dear on a virtual machine; sent together, a turn's requests wake it once (what
        :class:`sidecar.loop.LeanLoop` does for every socket; uvloop sends each write at once:
        chat at c=64 on uvloop, 38-44 -> 25-26 µs of system time a request)."""
        held = self._held
        if not self._holds:
            transport.write(data)
        elif held is None:
            self._held = []
            self.loop.call_soon(self._write_held)
            transport.write(data)
        else:
            held.append((transport, data))

    def _write_held(self) -> None:
        held, self._held = self._held, None
        assert held is not None  # (set to a list when this was scheduled, and only this empties it)
        for transport, data in held:
            if not transport.is_closing():  # (closed meanwhile: its exchange fails in connection_lost)
                transport.write(data)

    # -- handing out ------------------------------------------------------------------------

    async def acquire(self, target: Target, wait_until: float | None, sock_connect: float | None = None,
                      fresh: bool = False) -> Connection:
        """An idle connection for the target's key (unless ``fresh``), else a new one from the
        opener when the limits allow, else the first one freed; waiting ends at ``wait_until``."""
        key = target.key
        if self.closed:
            raise aiohttp.ClientConnectionError("the session is closed")
        idle = self.idle.get(key)
        if idle and not fresh:
            conn = idle.pop()
            conn.in_pool = False
            self.busy.add(conn)
            return conn
        if not self._room(key):
            waiter = self.loop.create_future()
            self.waiters.append((key, waiter))
            handle = self.loop.call_at(wait_until, _timed_out, waiter) if wait_until is not None else None
            try:
                got = await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():  # served just as it was cancelled
                    self._give_back(key, waiter.result())
                raise
            finally:
                if handle is not None:
                    handle.cancel()
            if got is not None:
                return got
        # a slot is reserved for key: open into it
        try:
            conn = await self.opener(target, wait_until, sock_connect)
        except BaseException:
            self._unreserve(key)
            raise
        if self.closed:
            conn.counted = False
            conn.close()
            raise aiohttp.ClientConnectionError("the session is closed")
        self.busy.add(conn)
        return conn

    def _room(self, key: tuple) -> bool:
        """Whether a new connection for ``key`` fits (closing an idle one of another key if only
        the total bound stands in the way); if so its slot is reserved."""
        per = self.count.get(key, 0)
        if self.limit_per_host and per >= self.limit_per_host:
            return False
        if self.limit and self.total >= self.limit and not self._evict_other(key):
            return False
        self.count[key] = per + 1
        self.total += 1
        return True

    def _evict_other(self, key: tuple) -> bool:
        oldest: Connection | None = None
        for other, conns in self.idle.items():
            if other != key and conns and (oldest is None or conns[0].idle_since < oldest.idle_since):
                oldest = conns[0]
        if oldest is None:
            return False
        oldest.close()  # discards it: the total drops by one
        return True

    def _unreserve(self, key: tuple) -> None:
        self.count[key] -= 1
        self.total -= 1
        if self.waiters:
            self._wake()

    def _give_back(self, key: tuple, got: Connection | None) -> None:
        if got is None:
            self._unreserve(key)
        else:
            self.release(got)

    # -- taking back ------------------------------------------------------------------------

    def release(self, conn: Connection) -> None:
        """A connection whose exchange ended cleanly: to the first waiter for its key, else idle."""
        self.busy.discard(conn)
        if self.closed:
            conn.close()
            return
        if self.waiters:
            for i, (key, waiter) in enumerate(self.waiters):
                if key == conn.key and not waiter.done():
                    del self.waiters[i]
                    self.busy.add(conn)
                    waiter.set_result(conn)
                    return
        conn.in_pool = True
        conn.idle_since = self.loop.time()
        idle = self.idle.get(conn.key)
        if idle is None:
            self.idle[conn.key] = [conn]
        else:
            idle.append(conn)
        if self._sweeper is None:
            self._sweeper = self.loop.call_at(conn.idle_since + self.keepalive_timeout, self._sweep)
        if self.waiters:  # waiters for other keys blocked by the total bound may now evict it
            self._wake()

    def discard(self, conn: Connection) -> None:
        """A connection that closed: its slot is free."""
        if not conn.counted:
            return
        conn.counted = False
        self.busy.discard(conn)
        if conn.in_pool:
            conn.in_pool = False
            idle = self.idle.get(conn.key)
            if idle is not None and conn in idle:
                idle.remove(conn)
        self.count[conn.key] -= 1
        self.total -= 1
        if self.waiters:
            self._wake()

    def _wake(self) -> None:
        """Serve the waiters that can be served now, in the order they came."""
        if self._waking:  # an eviction below discards a connection, which calls back here
            return
        self._waking = True
        try:
            self._serve()
        finally:
            self._waking = False

    def _serve(self) -> None:
        served = []
        for i, (key, waiter) in enumerate(self.waiters):
            if waiter.done():
                served.append(i)
                continue
            idle = self.idle.get(key)
            if idle:
                conn = idle.pop()
                conn.in_pool = False
                self.busy.add(conn)
                waiter.set_result(conn)
                served.append(i)
            elif self._room(key):
                waiter.set_result(None)
                served.append(i)
        for i in reversed(served):
            del self.waiters[i]

    def _sweep(self) -> None:
        """Close the connections idle for ``keepalive_timeout``; come back for the next one."""
        self._sweeper = None
        now = self.loop.time()
        expiry = now - self.keepalive_timeout
        first: float | None = None
        for conns in list(self.idle.values()):
            for conn in list(conns):
                if conn.idle_since <= expiry:
                    conn.close()
                elif first is None or conn.idle_since < first:
                    first = conn.idle_since
        if first is not None:
            self._sweeper = self.loop.call_at(first + self.keepalive_timeout, self._sweep)

    def close(self) -> None:
        """Close every connection, idle or busy; waiters fail."""
        self.closed = True
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        for conns in list(self.idle.values()):
            for conn in list(conns):
                conn.close()
        for conn in list(self.busy):
            conn.fail(aiohttp.ClientConnectionError("the session is closed"))
        self.deadlines.close()
        while self.waiters:
            _, waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_exception(aiohttp.ClientConnectionError("the session is closed"))

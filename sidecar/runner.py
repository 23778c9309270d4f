"""Serving the app on its sockets, with bounds on connections and a graceful, logged stop.

What ``web.run_app`` does, plus what an operator needs before production:

- a new connection that has not sent a complete request head within
  ``general_settings.request_head_timeout`` is closed (slowloris, idle sockets), and an idle
  keep-alive connection after ``keepalive_timeout`` (aiohttp also closes one whose next head is
  not complete by then);
- running out of file descriptors is one log line per interval, not a traceback per attempt;
  accepting resumes by itself as connections close (asyncio's accept backs off by itself; on
  uvloop :class:`Listeners` stops listening short of the limit, see there);
- SIGTERM/SIGINT logs what is in flight, and the stop logs when the last request finished.
"""

from __future__ import annotations

import asyncio
import errno
import gc
import logging
import os
import resource
import signal
import socket
import sys
import time
from collections.abc import Callable

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from sidecar import keys

log = logging.getLogger("sidecar")

_OUT_OF_DESCRIPTORS = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)


def raise_fd_limit() -> int:
    """Raise the soft ``RLIMIT_NOFILE`` to the hard limit (each connection is a descriptor); logs
    and returns the limit in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError) as exc:
            log.warning("cannot raise the file descriptor limit from %d to %d: %s", soft, hard, exc)
    log.info("file descriptor limit: %s", "unlimited" if soft == resource.RLIM_INFINITY else soft)
    return soft


GC_THRESHOLDS = (5000, 10, 10)
"""The garbage collector's thresholds in a serving process (Python's default: 700, 10, 10). A
request's objects are freed by reference counting as it ends (it leaves no cycles), yet with 700
the collector ran every ~20 requests at chat c=64 and scanned what the requests in flight held:
about 50 µs of CPU per request (thread CPU time in gc callbacks), and 11% of the process's CPU per
request in four alternating pairs. With 5,000 it runs a few times a minute under that load."""


def tune_gc() -> None:
    """Set :data:`GC_THRESHOLDS`, log them, and turn the collector on (the command line keeps it
    off while the sidecar starts up). What start-up made is frozen first, as
    :func:`freeze_startup_objects` freezes what the app's start-up adds: all of it was still in
    the youngest generation, and the first collection would have scanned it."""
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    gc.enable()
    log.info("garbage collector thresholds: %s", ", ".join(map(str, GC_THRESHOLDS)))


def freeze_startup_objects() -> int:
    """Move what start-up made (modules, the config, plugins, the registry: a few hundred thousand
    objects that live as long as the process) out of the collector's reach, and say how many:
    its full collections then scan only what requests made since. No collection first (it would
    cost start-up tens of ms); a start-up object that later becomes cyclic garbage (a deployment
    of the config that is deleted) is never freed, a bounded loss."""
    gc.freeze()
    return gc.get_freeze_count()


class HeadTimeout:
    """The protocol factory for the listening sockets: aiohttp's handlers, each closed if no
    complete request head arrived within ``timeout``. One sweep a fraction of a second apart
    checks the connections made since, so no timer is held per connection."""

    def __init__(self, server: web.Server, timeout: float, loop: asyncio.AbstractEventLoop) -> None:
        self._server = server
        self._timeout = timeout
        self._loop = loop
        self._period = min(1.0, timeout / 4)
        self._watched: list[tuple[float, RequestHandler]] = []
        self._sweep: asyncio.TimerHandle | None = None
        self.closed = 0

    def __call__(self) -> RequestHandler:
        handler = self._server()
        self._watched.append((self._loop.time() + self._timeout, handler))
        if self._sweep is None:
            self._sweep = self._loop.call_later(self._period, self._check)
        return handler

    def _check(self) -> None:
        now, waiting = self._loop.time(), []
        for deadline, handler in self._watched:
            # (_request_count: complete heads parsed; missing in some aiohttp means "never close")
            if getattr(handler, "_request_count", 1):
                continue  # it sent a request: keepalive_timeout bounds it from now on
            if deadline > now:
                waiting.append((deadline, handler))  # (its transport may not be made yet)
            elif handler.transport is not None:  # (else it was closed meanwhile)
                handler.force_close()
                self.closed += 1
        self._watched = waiting
        self._sweep = self._loop.call_later(self._period, self._check) if waiting else None

    def stop(self) -> None:
        if self._sweep is not None:
            self._sweep.cancel()
            self._sweep = None


class _Refused(asyncio.Protocol):
    """A connection accepted beyond :class:`Listeners`' bound: closed at once."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.close()


def inbound_bounds(fd_limit: int, upstream_connections: int) -> tuple[int, int, int] | None:
    """For a descriptor limit: the inbound connections at which :class:`Listeners` stops
    listening, those beyond which it closes a connection at once, and the reserve kept for the
    rest of the process (the upstream pool's ``max_upstream_connections``, plus 64 for the
    database, logs, listening sockets and the loop's own; at most half the limit). None when
    there is no limit."""
    if fd_limit <= 0 or fd_limit == resource.RLIM_INFINITY:
        return None
    reserve = min(fd_limit // 2, upstream_connections + 64)
    return fd_limit - reserve, fd_limit - reserve // 2, reserve


class Listeners:
    """The listening sockets. On asyncio's selector loops nothing more: when descriptors run out
    their accept logs (:func:`exception_handler`), leaves new connections in the backlog and
    tries again a second later. uvloop (libuv) does neither: it accepts and closes at once the
    connections waiting (its spare-descriptor trick), unlogged, or, without a spare descriptor,
    tries again at every turn of the loop, at full CPU. There, on any loop not asyncio's:

    - with :func:`inbound_bounds`' number of inbound connections open, listening stops (the
      listening sockets stay open, a duplicate of each kept here, so new connections wait in the
      backlog), with one log line (the log handler's repeat limiter keeps it to one per interval);
      a connection accepted beyond the second bound is closed at once;
    - a check every :data:`CHECK_SECONDS` listens again once connections have closed and
      descriptors are free; it also stops listening when no descriptor is left (upstream
      connections and files took them), and listens again on a socket the loop closed by itself
      (uvloop's code closes a listening socket on an error libuv's accept reports to it).

    On every connection: one ``len`` of aiohttp's connection table and a comparison."""

    CHECK_SECONDS = 1.0

    def __init__(self, loop: asyncio.AbstractEventLoop, factory: Callable[[], asyncio.BaseProtocol],
                 server: web.Server, fd_limit: int, upstream_connections: int) -> None:
        self._loop = loop
        self._factory = factory
        self.guarded = not isinstance(loop, asyncio.selector_events.BaseSelectorEventLoop)
        self.servers: list[asyncio.AbstractServer] = []
        self._kept: list[socket.socket] = []  # (guarded: a duplicate of each listening socket)
        self._fd_limit = fd_limit
        bounds = inbound_bounds(fd_limit, upstream_connections)
        # (aiohttp's table of open connections; were it missing, only the checks would guard)
        self._open: dict = getattr(server, "_connections", None)
        if not isinstance(self._open, dict):
            self._open, bounds = {}, None
        if bounds is None:
            bounds = (sys.maxsize, sys.maxsize, 0)
        self._pause_at, self._refuse_at, self._reserve = bounds
        self._resume_below = self._pause_at - max(1, self._pause_at // 10)
        self._resume_headroom = max(1, min(32, self._reserve // 4))
        self.paused = False
        self._relistening = False
        self._closed = False
        self._check_handle: asyncio.TimerHandle | None = None

    @property
    def protocol_factory(self) -> Callable[[], asyncio.BaseProtocol]:
        return self if self.guarded else self._factory

    def __call__(self) -> asyncio.BaseProtocol:
        count = len(self._open)
        if count >= self._pause_at:
            if not self.paused:
                self.paused = True
                self._loop.call_soon(self._pause)  # (not from within the loop's accept callback)
            if count >= self._refuse_at:
                return _Refused()
        return self._factory()

    async def start(self, host: str | None, port: int | None, socks: list[socket.socket] | None) -> None:
        factory = self.protocol_factory
        if socks is not None:
            for sock in socks:
                if self.guarded:  # (the loop closes the socket it is given when it stops listening)
                    self._kept.append(sock)
                    sock = sock.dup()
                self.servers.append(await self._loop.create_server(factory, sock=sock, backlog=1024))
        else:
            server = await self._loop.create_server(factory, host or None, port, backlog=1024, reuse_address=True)
            self.servers.append(server)
            if self.guarded:
                self._kept = [socket.socket(fileno=os.dup(sock.fileno())) for sock in server.sockets]
        if self.guarded:
            self._check_handle = self._loop.call_later(self.CHECK_SECONDS, self._check)

    def addresses(self) -> list[tuple]:
        return [sock.getsockname() for server in self.servers for sock in server.sockets]

    def _pause(self) -> None:
        if self._closed:
            return
        self.paused = True
        self._close_servers()
        log.error("out of file descriptors (limit %s, %d kept for upstream connections and files): new "
                  "connections wait in the backlog until some close", self._fd_limit, self._reserve)

    def _close_servers(self) -> None:
        for server in self.servers:
            server.close()
        self.servers = []

    def _headroom(self, count: int) -> bool:
        """Whether ``count`` descriptors could be opened now."""
        fds: list[int] = []
        try:
            for _ in range(count):
                fds.append(os.dup(self._kept[0].fileno()))
            return True
        except OSError:
            return False
        finally:
            for fd in fds:
                os.close(fd)

    def _check(self) -> None:
        self._check_handle = self._loop.call_later(self.CHECK_SECONDS, self._check)
        if self._relistening or not self._kept:
            return
        if self.paused:
            if len(self._open) < self._resume_below and self._headroom(self._resume_headroom):
                self._relisten()
        elif any(sock is None or sock.fileno() < 0 for server in self.servers for sock in server.sockets):
            log.error("the event loop closed a listening socket (out of file descriptors?): listening again")
            self._close_servers()
            self._relisten()
        elif not self._headroom(1):
            self._pause()

    def _relisten(self) -> None:
        self._relistening = True
        self._loop.create_task(self._listen())

    async def _listen(self) -> None:
        servers: list[asyncio.AbstractServer] = []
        try:
            for sock in self._kept:
                servers.append(await self._loop.create_server(self, sock=sock.dup(), backlog=1024))
        except OSError as exc:  # (out of descriptors again: the next check tries again)
            for server in servers:
                server.close()
            log.error("cannot listen again yet: %s", exc.strerror or exc)
            self.paused = True
            return
        finally:
            self._relistening = False
        if self._closed:
            for server in servers:
                server.close()
            return
        self.servers = servers
        self.paused = False

    def close(self) -> None:
        """Stop listening for good."""
        self._closed = True
        if self._check_handle is not None:
            self._check_handle.cancel()
        self._close_servers()
        for sock in self._kept:
            sock.close()
        self._kept = []


def exception_handler(fd_limit: int) -> Callable[[asyncio.AbstractEventLoop, dict], None]:
    """The loop's exception handler: an accept that fails for want of descriptors is one line
    (the log handler's repeat limiter keeps it to one per interval), without a traceback;
    asyncio retries accepting a second later, by itself."""

    def handle(loop: asyncio.AbstractEventLoop, context: dict) -> None:
        exc = context.get("exception")
        if isinstance(exc, OSError) and exc.errno in _OUT_OF_DESCRIPTORS:
            log.error("out of file descriptors (limit %s): new connections wait in the backlog until some "
                      "close (%s)", fd_limit, exc.strerror or exc)
            return
        loop.default_exception_handler(context)

    return handle


def in_flight(server: web.Server | None) -> int:
    """Requests being handled now (a stream counts until its last byte)."""
    if server is None:
        return 0
    return sum(1 for handler in server.connections if getattr(handler, "_current_request", None) is not None)


def run(app: web.Application, loop: asyncio.AbstractEventLoop, *, host: str | None = None, port: int | None = None,
        socks: list[socket.socket] | None = None, access_log: logging.Logger | None = None,
        fd_limit: int = 0) -> None:
    """Serve ``app`` on ``host``:``port`` or on ``socks`` until SIGTERM or SIGINT."""
    asyncio.set_event_loop(loop)
    loop.set_exception_handler(exception_handler(fd_limit))
    main = loop.create_task(_serve(app, host, port, socks, access_log, fd_limit))
    try:
        loop.run_until_complete(main)
    finally:
        try:
            if not main.done():  # (KeyboardInterrupt before the signal handler was set)
                main.cancel()
                loop.run_until_complete(asyncio.gather(main, return_exceptions=True))
            rest = asyncio.all_tasks(loop)
            for task in rest:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*rest, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            asyncio.set_event_loop(None)
            loop.close()


async def _serve(app: web.Application, host: str | None, port: int | None, socks: list[socket.socket] | None,
                 access_log: logging.Logger | None, fd_limit: int = 0) -> None:
    loop = asyncio.get_running_loop()
    general = app[keys.CONFIG].general
    stop = asyncio.Event()
    received: list[str] = []

    def on_signal(signum: int) -> None:
        if received:
            return
        received.append(signal.Signals(signum).name)
        log.info("%s: stopping; %d requests in flight (%d streams), graceful_shutdown_seconds %g",
                 received[0], in_flight(runner.server), len(app[keys.STATE].streams),
                 general.graceful_shutdown_seconds)
        stop.set()

    # a client that leaves cancels its handler: the upstream call is dropped at once,
    # not at its next chunk (a thinking model may be silent for minutes, and bills)
    runner = web.AppRunner(app, handle_signals=False, access_log=access_log,
                           keepalive_timeout=general.keepalive_timeout,
                           shutdown_timeout=general.graceful_shutdown_seconds, handler_cancellation=True)
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal, signum)
    try:
        await runner.setup()
    except BaseException:  # a plugin's start-up failed, say: close what had started (the database's
        await runner.cleanup()  # thread would keep the process from exiting), then report it
        raise
    log.info("garbage collector: %d start-up objects frozen", freeze_startup_objects())
    factory = HeadTimeout(runner.server, general.request_head_timeout, loop)
    listeners = Listeners(loop, factory, runner.server, fd_limit, general.max_upstream_connections)
    try:
        await listeners.start(host, port, socks)
        if socks is None:
            for address in listeners.addresses():
                log.info("listening on http://%s:%d", f"[{address[0]}]" if ":" in address[0] else address[0],
                         address[1])
        await stop.wait()
    finally:
        listeners.close()
        await _stop(runner, factory, received, general.graceful_shutdown_seconds)


async def _stop(runner: web.AppRunner, factory: HeadTimeout, received: list[str], grace: float) -> None:
    """Let requests finish (aiohttp waits up to the shutdown timeout), logging when the last did."""
    started, last_seen = time.monotonic(), [0]
    watcher = asyncio.ensure_future(_last_request(runner.server, started, last_seen)) if received else None
    try:
        await runner.cleanup()
    finally:
        factory.stop()
        if watcher is not None and not watcher.done():
            watcher.cancel()
            elapsed = time.monotonic() - started
            if elapsed < grace:  # the server's wait ended before the deadline: they all finished
                log.info("the last request in flight finished after %.1f s", elapsed)
            else:
                log.warning("%d requests still in flight were cut off after %.1f s (graceful_shutdown_seconds)",
                            last_seen[0], elapsed)
        if watcher is not None:
            log.info("stopped")


async def _last_request(server: web.Server | None, started: float, last_seen: list[int]) -> None:
    """Logs once the last request in flight has finished."""
    while count := in_flight(server):
        last_seen[0] = count
        await asyncio.sleep(0.05)
    log.info("the last request in flight finished after %.1f s", time.monotonic() - started)

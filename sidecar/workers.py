"""``sidecar serve --workers N``: N processes answering on one listening socket.

The parent binds sockets per worker on the same port (``SO_REUSEPORT``: the kernel spreads
new connections evenly over them, where one shared socket would let the fastest worker take
them all), brings the database schema up to date, builds the app (so a config error is reported
once, before anything starts), then forks the workers, which inherit them.
Each worker is an ordinary single-process sidecar; :mod:`sidecar.sync` keeps their registries in
step through the database. The parent only supervises: SIGTERM or SIGINT stops every worker
gracefully, and a worker that dies is replaced with a back-off; only a crash loop (repeated
fast failures: workers dying soon after they started, several within a minute) stops the whole
server, saying why.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import signal
import socket
import sqlite3
import sys
import time
from collections.abc import Callable

from sidecar.config import ConfigError
from sidecar.db import Database

log = logging.getLogger("sidecar")

BACKOFF_FIRST_SECONDS = 0.5
BACKOFF_MAX_SECONDS = 30.0
FAST_FAILURE_SECONDS = 10.0
"""A worker dying within this many seconds of its start failed fast: it counts toward a crash
loop. One that ran longer (a crash after serving, an OOM kill) is only replaced."""
HEALTHY_SECONDS = 60.0
"""A worker that ran this long resets its slot's back-off: one dying 10-60 s after its start
(on its first traffic, say) is replaced after a back-off that keeps doubling."""
CRASH_LOOP_DEATHS = 5
CRASH_LOOP_SECONDS = 60.0
"""CRASH_LOOP_DEATHS fast failures (of any slots) within CRASH_LOOP_SECONDS stop the server."""


def bind(host: str, port: int, count: int) -> list[list[socket.socket]]:
    """For each of ``count`` worker slots, a listening socket per address ``host`` names (as
    aiohttp binds them: ``localhost`` is 127.0.0.1 and ::1), all on one port. A slot's sockets
    outlive its worker: connections that arrive while a worker is replaced wait for the next."""
    addresses = list(dict.fromkeys((info[0], info[4]) for info in socket.getaddrinfo(
        host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)))  # ("": every address)
    slots: list[list[socket.socket]] = []
    try:
        for _ in range(count):
            socks = []
            slots.append(socks)
            for family, address in addresses:  # (an IPv6 address keeps its flow info and scope)
                sock = socket.create_server((address[0], port, *address[2:]), family=family, backlog=1024,
                                            reuse_port=True, dualstack_ipv6=False)
                sock.set_inheritable(True)
                socks.append(sock)
                port = sock.getsockname()[1]  # (port 0: the others join the port the first was given)
    except OSError:
        _close(slots)
        raise
    return slots


def prepare_database(path: str) -> None:
    """Create or migrate the schema once, before the workers open the file together."""
    if path == ":memory:":
        raise ConfigError("several workers need a database file they can share, not sqlite:///:memory:")

    async def migrate() -> None:
        db = await Database.open(path)
        await db.close()

    try:
        asyncio.run(migrate())
    except (OSError, sqlite3.Error) as exc:
        raise ConfigError(f"cannot open the database {path}: {exc}") from None


def supervise(slots: list[list[socket.socket]], run_worker: Callable[[list[socket.socket]], int]) -> int:
    """Fork a worker per slot, running ``run_worker(its sockets)``, and keep them running until
    a signal: a worker that dies is replaced after a back-off (doubling from
    BACKOFF_FIRST_SECONDS up to BACKOFF_MAX_SECONDS per slot, reset when a worker of the slot
    ran HEALTHY_SECONDS or more). Only a crash loop, CRASH_LOOP_DEATHS fast failures
    (deaths within FAST_FAILURE_SECONDS of the worker's start) within CRASH_LOOP_SECONDS, stops
    the server; the exit code is then the last dead worker's, else 0."""
    parent = os.getpid()
    children: dict[int, tuple[int, float]] = {}  # pid -> (slot, start time)
    due: dict[int, float] = {}  # slot -> when its replacement starts
    backoff: dict[int, float] = {}  # slot -> its next back-off
    fast_deaths: collections.deque[float] = collections.deque()  # when each fast failure happened
    stopping = False
    failed = 0
    stop_signals = {signal.SIGTERM, signal.SIGINT}

    def start(slot: int) -> None:
        # a stop signal arriving from here to the fork waits until the child is in `children`
        signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)
        try:
            if stopping:
                return
            pid = os.fork()
            if pid == 0:
                _worker(parent, slot, slots, run_worker, stop_signals)
            children[pid] = (slot, time.monotonic())
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, stop_signals)

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        if not stopping:  # our copies of the sockets would keep them listening: new connections
            _close(slots)  # must be refused, as with one process, not queued until the exit
        stopping = True
        for pid in list(children):
            _signal(pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for slot in range(len(slots)):
        start(slot)
    while children or (due and not stopping):
        for slot, when in list(due.items()):
            if stopping or when <= time.monotonic():
                del due[slot]
                start(slot)
        pid, status = _wait_child(min(due.values()) if due and not stopping else None)
        child = children.pop(pid, None)
        if child is None or stopping:
            continue
        slot, started = child
        code = os.waitstatus_to_exitcode(status)
        now = time.monotonic()
        if now - started < FAST_FAILURE_SECONDS:
            fast_deaths.append(now)
            while fast_deaths[0] < now - CRASH_LOOP_SECONDS:
                fast_deaths.popleft()
            if len(fast_deaths) >= CRASH_LOOP_DEATHS:
                log.error("worker %d exited (%s) after %.1f s; %d workers died within %g s, a crash loop: "
                          "stopping the server (each died within %g s of its start)", pid, code, now - started,
                          len(fast_deaths), CRASH_LOOP_SECONDS, FAST_FAILURE_SECONDS)
                failed = code if code > 0 else 1
                stop(signal.SIGTERM, None)
                continue
        if now - started >= HEALTHY_SECONDS:  # it served a while: its replacement starts after the first back-off
            backoff.pop(slot, None)
        delay = backoff.get(slot, BACKOFF_FIRST_SECONDS)
        backoff[slot] = min(delay * 2, BACKOFF_MAX_SECONDS)
        log.warning("worker %d exited (%s) after %.1f s; starting another in %g s", pid, code, now - started, delay)
        due[slot] = now + delay
    return failed


def _wait_child(until: float | None) -> tuple[int, int]:
    """The next child to exit, as ``os.wait``; (0, 0) if none did by ``until`` (monotonic)."""
    if until is None:
        try:
            return os.wait()
        except ChildProcessError:
            return 0, 0
    while time.monotonic() < until:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            pid, status = 0, 0
        if pid:
            return pid, status
        time.sleep(min(0.05, max(0.0, until - time.monotonic())))
    return 0, 0


def _worker(parent: int, slot: int, slots: list[list[socket.socket]],
            run_worker: Callable[[list[socket.socket]], int], stop_signals: set[int]) -> None:
    """The forked child: serve on its slot's sockets, then exit (never returns)."""
    code = 1
    try:
        for signum in stop_signals:  # the parent's handlers are not ours; the server installs its own
            signal.signal(signum, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, stop_signals)
        os.setpgid(0, 0)  # a terminal's Ctrl-C reaches the parent only: it stops us once
        _die_with_parent()
        if os.getppid() != parent:  # the parent died before we asked to follow it
            os._exit(0)
        _close([socks for i, socks in enumerate(slots) if i != slot])
        code = run_worker(slots[slot])
    except BaseException:
        log.exception("worker %d failed", os.getpid())
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _close(slots: list[list[socket.socket]]) -> None:
    for socks in slots:
        for sock in socks:
            sock.close()


def _signal(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass


def _die_with_parent() -> None:
    """Linux: SIGTERM this worker if the parent dies (even by SIGKILL), so none is left behind."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass

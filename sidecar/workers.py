"""``sidecar serve --workers N``: N processes answering on one listening socket.

The parent binds one socket per worker on the same port (``SO_REUSEPORT``: the kernel spreads
new connections evenly over them, where one shared socket would let the fastest worker take
them all), brings the database schema up to date, builds the app (so a config error is reported
once, before anything starts), then forks the workers, which inherit them.
Each worker is an ordinary single-process sidecar; :mod:`sidecar.sync` keeps their registries in
step through the database. The parent only supervises: SIGTERM or SIGINT stops every worker
gracefully, and a worker that dies is replaced (one that fails within seconds of starting stops
the whole server instead: it would only fail again).
"""

from __future__ import annotations

import asyncio
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

STARTUP_FAILURE_SECONDS = 3.0


def bind(host: str, port: int, count: int) -> list[socket.socket]:
    """``count`` listening sockets on one port, one per worker slot. A slot's socket outlives
    its worker: connections that arrive while a worker is being replaced wait for the next."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    socks: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.create_server((host, port), family=family, backlog=1024, reuse_port=True)
            sock.set_inheritable(True)
            socks.append(sock)
            port = sock.getsockname()[1]  # (port 0: the others join the port the first was given)
    except OSError:
        for sock in socks:
            sock.close()
        raise
    return socks


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


def supervise(socks: list[socket.socket], run_worker: Callable[[socket.socket], int]) -> int:
    """Fork a worker per socket, running ``run_worker(sock)``, and keep them running until a signal."""
    children: dict[int, tuple[int, float]] = {}  # pid -> (slot, start time)
    stopping = False
    failed = False

    def start(slot: int) -> None:
        pid = os.fork()
        if pid == 0:  # the worker
            code = 1
            try:
                os.setpgid(0, 0)  # a terminal's Ctrl-C reaches the parent only: it stops us once
                _die_with_parent()
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                for i, sock in enumerate(socks):
                    if i != slot:
                        sock.close()
                code = run_worker(socks[slot])
            except BaseException:
                log.exception("worker %d failed", os.getpid())
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        children[pid] = (slot, time.monotonic())

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True
        for pid in list(children):
            _signal(pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for slot in range(len(socks)):
        start(slot)
    while children:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        child = children.pop(pid, None)
        if child is None or stopping:
            continue
        slot, started = child
        code = os.waitstatus_to_exitcode(status)
        if time.monotonic() - started < STARTUP_FAILURE_SECONDS:
            log.error("worker %d exited (%s) while starting; stopping the server", pid, code)
            failed = True
            stop(signal.SIGTERM, None)
            continue
        log.warning("worker %d exited (%s); starting another", pid, code)
        start(slot)
    return 1 if failed else 0


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

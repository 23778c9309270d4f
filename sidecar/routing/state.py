"""The router's shared state behind one small interface: minute windows, requests in flight,
cooldowns and latencies, per deployment.

:class:`RouterState` keeps everything in this process. With ``--workers N`` the limits
(``rpm``, ``tpm``, ``max_parallel_requests``) must hold for the whole sidecar, so their counters
live in :class:`SharedCounters`, a table in shared memory that the workers (forked from the
process that built the app) read and update under one lock. A later backend shared by several
sidecars (Redis) would replace those two classes and nothing else.

The minute window is fixed and anchored at its first request: it opens with the first request
after the previous one closed and lasts 60 s; ``Retry-After`` is the time until it closes.
"""

from __future__ import annotations

import collections
import hashlib
import logging
import mmap
import os
import struct
from dataclasses import dataclass, field

log = logging.getLogger("sidecar")

WINDOW_SECONDS = 60.0


@dataclass(slots=True)
class Limits:
    """A deployment's limits (None: no limit); ``active`` when it has any."""

    rpm: int | None = None
    tpm: int | None = None
    parallel: int | None = None
    active: bool = field(init=False, default=False)

    def __post_init__(self) -> None:
        self.active = self.rpm is not None or self.tpm is not None or self.parallel is not None

    def __bool__(self) -> bool:
        return self.active


class DeploymentStats:
    """What this process knows of one deployment: this minute's counts, in flight, cooldown,
    last error and recent latencies (a sliding window of samples, each kept at most ``ttl``)."""

    __slots__ = ("window_start", "requests", "tokens", "fails", "fails_by_kind", "in_flight", "cooldown_until",
                 "last_error", "last_error_at", "latencies")

    def __init__(self, samples: int = 10) -> None:
        self.window_start = 0.0
        self.requests = 0
        self.tokens = 0
        self.fails = 0
        self.fails_by_kind: dict[str, int] = {}
        self.in_flight = 0
        self.cooldown_until = 0.0
        self.last_error: str | None = None
        self.last_error_at = 0.0
        self.latencies: collections.deque[tuple[float, float]] = collections.deque(maxlen=samples)

    def roll(self, now: float) -> None:
        """Open a new minute window when the last one has closed."""
        if now - self.window_start >= WINDOW_SECONDS:
            self.window_start = now
            self.requests = self.tokens = self.fails = 0
            if self.fails_by_kind:
                self.fails_by_kind = {}

    def latency(self, now: float, ttl: float) -> float | None:
        """The mean of the samples younger than ``ttl``; None with none."""
        fresh = [value for at, value in self.latencies if now - at < ttl]
        return sum(fresh) / len(fresh) if fresh else None


class RouterState:
    """Per-deployment stats in this process; limits counted here or in :class:`SharedCounters`.
    The router, the strategies and /health read and change them only through these methods."""

    def __init__(self, shared: SharedCounters | None = None, samples: int = 10) -> None:
        self.stats: dict[str, DeploymentStats] = {}
        self.shared = shared
        self.samples = samples

    def _of(self, dep_id: str) -> DeploymentStats:
        stats = self.stats.get(dep_id)
        if stats is None:
            stats = self.stats[dep_id] = DeploymentStats(self.samples)
        return stats

    def forget(self, live: set[str]) -> None:
        """Drop the stats of deployments that no longer exist (bounded by the registry)."""
        for dep_id in [d for d in self.stats if d not in live]:
            del self.stats[dep_id]

    # ---------------------------------------------------------------- limits

    def usage(self, dep_id: str, now: float) -> tuple[int, int, int, float]:
        """This minute's requests and tokens, requests in flight, and seconds until the window closes."""
        if self.shared is not None:
            return self.shared.usage(dep_id, now)
        stats = self._of(dep_id)
        stats.roll(now)
        return stats.requests, stats.tokens, stats.in_flight, max(stats.window_start + WINDOW_SECONDS - now, 0.0)

    def wait_for(self, dep_id: str, limits: Limits, estimate: int, now: float) -> float:
        """0 when the deployment can take a request of ``estimate`` input tokens under its limits,
        else the seconds until it may (a full window's end; 1 s while only parallel-bound)."""
        return _wait(limits, estimate, *self.usage(dep_id, now))

    def begin(self, dep_id: str, limits: Limits, estimate: int, now: float) -> float:
        """Count a request starting; with limits, only if they allow it (else the wait, as
        :meth:`wait_for`, and nothing is counted)."""
        stats = self.stats.get(dep_id) or self._of(dep_id)
        if limits.active:
            if self.shared is not None:
                wait = self.shared.admit(dep_id, limits, estimate, now)
            else:
                stats.roll(now)
                wait = _wait(limits, estimate, stats.requests, stats.tokens, stats.in_flight,
                             stats.window_start + WINDOW_SECONDS - now)
            if wait:
                return wait
        if now - stats.window_start >= WINDOW_SECONDS:  # (roll's test, here: no call per request)
            stats.roll(now)
        stats.requests += 1
        stats.in_flight += 1
        return 0.0

    def end(self, dep_id: str, limits: Limits, tokens: int, now: float) -> None:
        """Count a request ending, with the tokens it used."""
        stats = self.stats.get(dep_id) or self._of(dep_id)
        stats.in_flight -= 1
        if now - stats.window_start >= WINDOW_SECONDS:
            stats.roll(now)
        stats.tokens += tokens
        if limits.active and self.shared is not None:
            self.shared.release(dep_id, tokens)

    def in_flight(self, dep_id: str) -> int:
        """Requests in flight to the deployment from this process (what ``least-busy`` compares)."""
        stats = self.stats.get(dep_id)
        return stats.in_flight if stats is not None else 0

    # ---------------------------------------------------------------- failures and cooldowns

    def failed(self, dep_id: str, kind: str, now: float, wall: float) -> tuple[int, int, int]:
        """Count a failure of ``kind`` (``wall``: its time.time(), for /health); this minute's
        failures, failures of that kind and requests after it."""
        stats = self._of(dep_id)
        stats.roll(now)
        stats.fails += 1
        of_kind = stats.fails_by_kind[kind] = stats.fails_by_kind.get(kind, 0) + 1
        stats.last_error, stats.last_error_at = kind, wall
        return stats.fails, of_kind, stats.requests

    def last_error(self, dep_id: str) -> tuple[str | None, float | None]:
        """The kind of the deployment's last failure and when (time.time()), or (None, None)."""
        stats = self.stats.get(dep_id)
        if stats is None or stats.last_error is None:
            return None, None
        return stats.last_error, stats.last_error_at

    def cool(self, dep_id: str, until: float) -> bool:
        """Cool a deployment down until ``until``; a running cooldown is never shortened.
        True when this started or lengthened one."""
        stats = self._of(dep_id)
        if until > stats.cooldown_until:
            stats.cooldown_until = until
            return True
        return False

    def cooling_until(self, dep_id: str) -> float:
        """When the deployment's cooldown ends (monotonic; 0.0 when it never cooled down)."""
        stats = self.stats.get(dep_id)
        return stats.cooldown_until if stats is not None else 0.0

    # ---------------------------------------------------------------- latencies

    def sample(self, dep_id: str, now: float, seconds: float) -> None:
        """Note a latency (a whole answer's, or a stream's time to first token)."""
        self._of(dep_id).latencies.append((now, seconds))

    def latency(self, dep_id: str, now: float, ttl: float) -> float | None:
        """The mean of the deployment's samples younger than ``ttl``; None with none."""
        stats = self.stats.get(dep_id)
        return stats.latency(now, ttl) if stats is not None else None


def _wait(limits: Limits, estimate: int, requests: int, tokens: int, in_flight: int, reset_in: float) -> float:
    if limits.rpm is not None and requests >= limits.rpm:
        return max(reset_in, 0.001)
    if limits.tpm is not None and tokens > 0 and tokens + estimate > limits.tpm:
        return max(reset_in, 0.001)
    if limits.parallel is not None and in_flight >= limits.parallel:
        return 1.0
    return 0.0


# ---------------------------------------------------------------- shared memory (--workers)

_SLOT = struct.Struct("<Qdqq")  # key, window start, requests, tokens
_FLIGHT = struct.Struct("<q")
_OWNER = struct.Struct("<q")


class SharedCounters:
    """Limit counters for ``--workers N``, in anonymous shared memory inherited through fork.

    A slot per limited deployment (found by a hash of its id) holds the shared minute window,
    its requests and tokens; each worker has a row of its own requests in flight, so a worker
    that dies is replaced by one that clears its row instead of leaking them. Every change
    happens under one process-shared lock (held for a few microseconds). A lock not won within
    a second (its holder died while holding it) is skipped and logged, rather than hanging.
    """

    def __init__(self, rows: int, slots: int = 4096) -> None:
        import multiprocessing

        self.rows = rows
        self.slots = slots
        self._owners = 0
        self._table = rows * _OWNER.size
        self._flight = self._table + slots * _SLOT.size
        self.mem = mmap.mmap(-1, self._flight + rows * slots * _FLIGHT.size)
        self.lock = multiprocessing.get_context("fork").Lock()
        self._slot_of: dict[str, int] = {}
        self._row: int | None = None
        self._pid = 0

    # ------------------------------------------------------------ plumbing

    def _locked(self):
        return _Held(self.lock)

    def _my_row(self) -> int:
        pid = os.getpid()
        if self._row is not None and self._pid == pid:
            return self._row
        with self._locked():
            for row in range(self.rows):
                (owner,) = _OWNER.unpack_from(self.mem, self._owners + row * _OWNER.size)
                if owner == 0 or not _alive(owner):
                    _OWNER.pack_into(self.mem, self._owners + row * _OWNER.size, pid)
                    for slot in range(self.slots):
                        _FLIGHT.pack_into(self.mem, self._flight_at(row, slot), 0)
                    self._row, self._pid, self._slot_of = row, pid, {}
                    return row
        raise RuntimeError("no free row in the shared router state")

    def _flight_at(self, row: int, slot: int) -> int:
        return self._flight + (row * self.slots + slot) * _FLIGHT.size

    def _slot(self, dep_id: str) -> int:
        slot = self._slot_of.get(dep_id)
        if slot is not None:
            return slot
        key = int.from_bytes(hashlib.blake2b(dep_id.encode(), digest_size=8).digest(), "little") or 1
        start = key % self.slots
        with self._locked():
            for probe in range(self.slots):
                slot = (start + probe) % self.slots
                found, *_ = _SLOT.unpack_from(self.mem, self._table + slot * _SLOT.size)
                if found == key:
                    break
                if found == 0:
                    _SLOT.pack_into(self.mem, self._table + slot * _SLOT.size, key, 0.0, 0, 0)
                    break
            else:
                raise RuntimeError("the shared router state is full")
        self._slot_of[dep_id] = slot
        return slot

    def _read(self, slot: int, now: float) -> tuple[float, int, int, int]:
        _, start, requests, tokens = _SLOT.unpack_from(self.mem, self._table + slot * _SLOT.size)
        if now - start >= WINDOW_SECONDS:
            start, requests, tokens = now, 0, 0
        in_flight = sum(_FLIGHT.unpack_from(self.mem, self._flight_at(row, slot))[0] for row in range(self.rows))
        return start, requests, tokens, in_flight

    # ------------------------------------------------------------ the interface

    def usage(self, dep_id: str, now: float) -> tuple[int, int, int, float]:
        start, requests, tokens, in_flight = self._read(self._slot(dep_id), now)
        return requests, tokens, in_flight, max(start + WINDOW_SECONDS - now, 0.0)

    def admit(self, dep_id: str, limits: Limits, estimate: int, now: float) -> float:
        slot, row = self._slot(dep_id), self._my_row()
        with self._locked():
            start, requests, tokens, in_flight = self._read(slot, now)
            wait = _wait(limits, estimate, requests, tokens, in_flight, start + WINDOW_SECONDS - now)
            if wait:
                return wait
            key, *_ = _SLOT.unpack_from(self.mem, self._table + slot * _SLOT.size)
            _SLOT.pack_into(self.mem, self._table + slot * _SLOT.size, key, start, requests + 1, tokens)
            at = self._flight_at(row, slot)
            _FLIGHT.pack_into(self.mem, at, _FLIGHT.unpack_from(self.mem, at)[0] + 1)
        return 0.0

    def release(self, dep_id: str, tokens: int) -> None:
        slot, row = self._slot(dep_id), self._my_row()
        with self._locked():
            key, start, requests, used = _SLOT.unpack_from(self.mem, self._table + slot * _SLOT.size)
            _SLOT.pack_into(self.mem, self._table + slot * _SLOT.size, key, start, requests, used + tokens)
            at = self._flight_at(row, slot)
            _FLIGHT.pack_into(self.mem, at, max(_FLIGHT.unpack_from(self.mem, at)[0] - 1, 0))


class _Held:
    """``with``: the lock, or (not won within a second) no lock and one warning."""

    __slots__ = ("lock", "held")

    def __init__(self, lock) -> None:
        self.lock = lock
        self.held = False

    def __enter__(self) -> None:
        self.held = self.lock.acquire(timeout=1.0)
        if not self.held:
            log.warning("the shared router lock was not released (a worker died holding it); going on without it")

    def __exit__(self, *exc: object) -> None:
        if self.held:
            self.lock.release()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True

"""The total deadlines of the exchanges in flight, on one timer.

An asyncio timer per request (``loop.call_at``, then ``cancel``) cost about 14,000 instructions
(callgrind): a ``TimerHandle`` made in Python, a heap ordered by its Python ``__lt__``, and the
cancelled handles swept out of that heap later. Here a deadline is rounded up to the next tick
(:data:`TICKS_PER_SECOND`) and the connections due in one tick share a set: adding one and
removing it again is a dictionary lookup and a set operation, and one timer is armed, for the
earliest tick that held a connection when it was armed (one emptied since costs a wasted
wake-up). So a timeout fires at most one tick late, never early.
"""

from __future__ import annotations

import asyncio
from heapq import heappop, heappush
from typing import Protocol

TICKS_PER_SECOND = 50
"""How finely deadlines are kept: a timeout fires within 1/50 s after its deadline."""


class Timed(Protocol):
    def total_timed_out(self) -> None: ...


class Deadlines:
    """Calls ``total_timed_out()`` on each member whose deadline passed before it was removed."""

    __slots__ = ("loop", "due", "ticks", "timer", "armed")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.due: dict[int, set[Timed]] = {}
        """Members by the tick their deadline falls in (a tick left empty is deleted)."""
        self.ticks: list[int] = []
        """A heap of the ticks in :attr:`due`, and of some since deleted (popped as they come up)."""
        self.timer: asyncio.TimerHandle | None = None
        self.armed = 0
        """The tick :attr:`timer` fires at."""

    def add(self, member: Timed, deadline: float) -> int:
        """Time ``member`` out once ``deadline`` (loop time) has passed, unless it is
        :meth:`remove` d first with the tick this returns."""
        tick = int(deadline * TICKS_PER_SECOND) + 1  # (rounded up: never early)
        members = self.due.get(tick)
        if members is None:  # (the first member of its tick)
            members = self.due[tick] = set()
            ticks = self.ticks
            while ticks and ticks[0] not in self.due:
                heappop(ticks)
            if len(ticks) >= 2 * len(self.due) + 64:
                # emptied ticks held behind a live one (a slow exchange at the front): rebuilt from
                # the live ticks (a sorted list is a heap), so the heap stays bounded by them
                ticks[:] = sorted(self.due)
            else:
                heappush(ticks, tick)
            if self.timer is None or tick < self.armed:
                self._arm(tick)
        members.add(member)
        return tick

    def remove(self, member: Timed, tick: int) -> None:
        """Forget ``member`` (its exchange ended); nothing if it is not there."""
        members = self.due.get(tick)
        if members is not None:
            members.discard(member)
            if not members:
                del self.due[tick]

    def close(self) -> None:
        """Forget every member and the timer."""
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.due.clear()
        self.ticks.clear()

    def _arm(self, tick: int) -> None:
        if self.timer is not None:
            self.timer.cancel()
        self.armed = tick
        self.timer = self.loop.call_at(tick / TICKS_PER_SECOND, self._fire)

    def _fire(self) -> None:
        self.timer = None
        now = self.loop.time()
        ticks, due = self.ticks, self.due
        try:
            while ticks:
                tick = ticks[0]
                members = due.get(tick)
                if members is not None and tick / TICKS_PER_SECOND > now:
                    break  # the earliest tick that holds a member is still to come
                heappop(ticks)
                # (taken from the live set one at a time: a member one of them removes is not timed out)
                while members:
                    try:
                        members.pop().total_timed_out()
                    except Exception as exc:  # (one member's failure must not stop the others)
                        self.loop.call_exception_handler({"message": "a deadline's timeout failed",
                                                          "exception": exc})
                if members is not None and due.get(tick) is members:
                    del due[tick]
        finally:  # (armed again whatever happened: the later deadlines still fire)
            if ticks and self.timer is None:
                self._arm(ticks[0])

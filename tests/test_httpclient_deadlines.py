"""The lean client's total deadlines on one timer (sidecar.httpclient.deadlines): a member is timed
out after its deadline, never before, unless removed first; one timer serves them all."""

from __future__ import annotations

import asyncio

from sidecar.httpclient.deadlines import TICKS_PER_SECOND, Deadlines

TICK = 1 / TICKS_PER_SECOND


class Member:
    """Records when it was timed out (loop time); ``fails`` makes its callback raise."""

    def __init__(self, loop: asyncio.AbstractEventLoop, fails: bool = False) -> None:
        self.loop = loop
        self.fails = fails
        self.timed_out_at: list[float] = []

    def total_timed_out(self) -> None:
        self.timed_out_at.append(self.loop.time())
        if self.fails:
            raise RuntimeError("a member's own failure")


async def wait_for_timeouts(*members: Member, within: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    until = loop.time() + within
    while not all(m.timed_out_at for m in members) and loop.time() < until:
        await asyncio.sleep(TICK / 2)


async def test_a_member_is_timed_out_once_its_deadline_passed_never_before():
    loop = asyncio.get_running_loop()
    deadlines = Deadlines(loop)
    members = [Member(loop) for _ in range(3)]
    due = [loop.time() + delay for delay in (0.05, 0.05, 0.12)]
    for member, deadline in zip(members, due):
        deadlines.add(member, deadline)
    await wait_for_timeouts(*members)
    for member, deadline in zip(members, due):
        assert len(member.timed_out_at) == 1 and member.timed_out_at[0] >= deadline
    assert deadlines.timer is None and not deadlines.due and not deadlines.ticks  # nothing left armed


async def test_a_removed_member_is_never_timed_out():
    loop = asyncio.get_running_loop()
    deadlines = Deadlines(loop)
    kept, removed = Member(loop), Member(loop)
    deadline = loop.time() + 0.05
    deadlines.add(kept, deadline)
    deadlines.remove(removed, deadlines.add(removed, deadline))
    deadlines.remove(removed, 10**9)  # (a tick it is not in: nothing)
    await wait_for_timeouts(kept)
    await asyncio.sleep(3 * TICK)
    assert len(kept.timed_out_at) == 1 and removed.timed_out_at == []


async def test_an_earlier_deadline_added_later_moves_the_timer_forward():
    loop = asyncio.get_running_loop()
    deadlines = Deadlines(loop)
    late, early = Member(loop), Member(loop)
    late_deadline = loop.time() + 1.0  # (far enough apart for a loaded machine)
    deadlines.add(late, late_deadline)
    armed_for_late = deadlines.armed
    deadlines.add(early, loop.time() + 0.05)
    assert deadlines.armed < armed_for_late
    await wait_for_timeouts(early)
    assert early.timed_out_at and late.timed_out_at == []  # the late one waits for its own tick
    await wait_for_timeouts(late)
    assert late.timed_out_at[0] >= late_deadline


async def test_ticks_emptied_by_removals_do_not_pile_up():
    """Exchanges that end before their deadline (nearly all) leave their ticks empty: a new tick
    pops those before it, so the heap stays as small as the ticks still holding an exchange."""
    loop = asyncio.get_running_loop()
    deadlines = Deadlines(loop)
    start = loop.time() + 60
    for i in range(1000):
        member = Member(loop)
        deadlines.remove(member, deadlines.add(member, start + i * TICK))
    assert len(deadlines.ticks) == 1 and not deadlines.due
    deadlines.close()
    assert deadlines.timer is None


async def test_a_slow_exchange_at_the_front_does_not_let_emptied_ticks_pile_up():
    """One exchange in flight long before the others (a hung upstream) holds the front of the
    heap: the ticks emptied behind it are dropped when the heap grows past twice the live ones."""
    loop = asyncio.get_running_loop()
    deadlines = Deadlines(loop)
    slow = Member(loop)
    deadlines.add(slow, loop.time() + 60)
    for i in range(5000):
        member = Member(loop)
        deadlines.remove(member, deadlines.add(member, loop.time() + 120 + i * TICK))
    assert len(deadlines.due) == 1 and len(deadlines.ticks) <= 2 * len(deadlines.due) + 64
    deadlines.close()


async def test_a_member_removed_by_another_ones_timeout_is_not_timed_out():
    loop = asyncio.get_running_loop()
    deadlines = Deadlines(loop)
    first, second = Member(loop), Member(loop)
    deadline = loop.time() + 0.05
    ticks = {}

    def remove_the_other(member: Member, other: Member) -> None:
        member.timed_out_at.append(loop.time())
        deadlines.remove(other, ticks[other])

    first.total_timed_out = lambda: remove_the_other(first, second)  # type: ignore[method-assign]
    second.total_timed_out = lambda: remove_the_other(second, first)  # type: ignore[method-assign]
    ticks[first] = deadlines.add(first, deadline)
    ticks[second] = deadlines.add(second, deadline)
    until = loop.time() + 5
    while not (first.timed_out_at or second.timed_out_at) and loop.time() < until:
        await asyncio.sleep(TICK / 2)
    await asyncio.sleep(3 * TICK)  # (time for a wrong second timeout to show)
    assert len(first.timed_out_at) + len(second.timed_out_at) == 1  # the one timed out first ended the other
    assert not deadlines.due


async def test_a_failing_member_does_not_stop_the_others():
    loop = asyncio.get_running_loop()
    errors: list[dict] = []
    loop.set_exception_handler(lambda _loop, context: errors.append(context))
    try:
        deadlines = Deadlines(loop)
        failing, same_tick, later = Member(loop, fails=True), Member(loop), Member(loop)
        deadline = loop.time() + 0.05
        deadlines.add(failing, deadline)
        deadlines.add(same_tick, deadline)
        deadlines.add(later, deadline + 0.1)
        await wait_for_timeouts(failing, same_tick, later)
        assert failing.timed_out_at and same_tick.timed_out_at and later.timed_out_at
        assert [type(e.get("exception")) for e in errors] == [RuntimeError]
    finally:
        loop.set_exception_handler(None)

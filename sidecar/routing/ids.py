"""Call ids: time-ordered UUIDs (version 7, RFC 9562), made for a few hundred instructions.

Time-ordered because the spend log indexes them: random (version 4) ids land all over the
index, and each insert cost 82 µs instead of 13 once the table held 400,000 rows, a few minutes
of traffic (``bench/spendlog_rows.py``). Ids need to be unique, not unguessable.

The layout is RFC 9562's: the Unix time in milliseconds (48 bits), the version, 12 random bits,
the variant, then 62 bits that are random at each new millisecond and go up by one for each
further id in it (the RFC's "monotonic random" method 2: ids of one process sort in the order
they were made). So everything but the last 12 hex digits is worked out once per millisecond; a
uuid4-style id made from scratch each time cost about 11,500 instructions (callgrind), this
about a tenth of that. The random bits come from a private generator seeded by the OS (no
system call per id), seeded again in a forked worker, so workers never repeat each other's ids.
"""

from __future__ import annotations

import os
import random
import time

__all__ = ["call_id"]

_TAIL_BITS = 47
"""The last 48 bits start below 2**47 each millisecond: 2**47 ids fit before they would carry."""


class _IdState:
    __slots__ = ("bits", "ms", "head", "tail")

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.bits = random.Random().getrandbits
        self.ms = -1
        self.head = ""
        self.tail = 0


_state = _IdState()
os.register_at_fork(after_in_child=_state.reset)  # (a forked worker must not repeat its parent's ids)


def call_id() -> str:
    """A new call id: a version 7 UUID as text (``8-4-4-4-12`` lower-case hex digits)."""
    state = _state
    ms = time.time_ns() // 1_000_000
    if ms == state.ms:
        state.tail += 1
        return state.head + "%012x" % state.tail
    r = state.bits(_TAIL_BITS + 26)  # the tail's start, 12 bits after the version, 14 after the variant
    state.ms, state.tail = ms, r & ((1 << _TAIL_BITS) - 1)
    state.head = "%08x-%04x-7%03x-%04x-" % (ms >> 16, ms & 0xFFFF, r >> _TAIL_BITS & 0xFFF,
                                             0x8000 | r >> (_TAIL_BITS + 12) & 0x3FFF)
    return state.head + "%012x" % state.tail

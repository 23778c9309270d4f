"""Call ids: version 7 UUIDs, unique and in the order they were made, never repeated by a forked worker."""

from __future__ import annotations

import os
import time
import uuid

from sidecar.routing import ids
from sidecar.routing.ids import call_id


def test_ids_are_version_7_unique_ordered_and_carry_the_time():
    before = time.time()
    made = [call_id() for _ in range(20_000)]  # (many share a millisecond: the tail goes up by one)
    assert len(set(made)) == len(made) and made == sorted(made)
    parsed = [uuid.UUID(i) for i in made]
    assert {u.version for u in parsed} == {7} and {u.variant for u in parsed} == {uuid.RFC_4122}
    assert all(str(u) == i for u, i in zip(parsed, made))  # (the canonical lower-case form)
    assert before - 0.01 <= int(made[0].replace("-", "")[:12], 16) / 1000 <= time.time() + 0.01


def test_a_forked_worker_starts_afresh():
    parent = call_id()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its generator was reset and reseeded at the fork
        try:
            os.write(write, f"{ids._state.ms} {call_id()}".encode())
        finally:
            os._exit(0)
    os.close(write)
    reset_ms, child = os.read(read, 100).decode().split()
    os.waitpid(pid, 0)
    os.close(read)
    assert reset_ms == "-1"
    assert child != parent and child[14:23] != parent[14:23]  # (fresh random bits after the time)

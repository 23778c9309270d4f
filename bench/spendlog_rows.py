"""The spend log's cost per row as its table grows, with random and with time-ordered call ids.

Every request writes one spend log row, and the table keeps a unique index on ``request_id``. The
load points of ``make bench`` start from an empty file, so they cannot show what the index costs
once the table holds a few minutes of traffic: this does. For each kind of id it fills a fresh
file with ``--rows`` rows, then times ``--probe`` more inserts, 100 per transaction in WAL mode
(as the spend log writes them: ``sidecar_spendlog.store``), with the real row layout and ids
made by the sidecar's own ``call_id`` (version 7) against ``uuid.uuid4`` (what they were before).

    .venv/bin/python bench/spendlog_rows.py [--rows 400000] [--probe 20000]
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from sidecar_spendlog import store

from sidecar.routing.router import call_id

SLICE = store.WRITE_SLICE


def row(request_id: str) -> tuple:
    now = round(time.time() * 1000)
    return (request_id, now, now + 5, None, "chat", 0, "bench-chat", "bench-chat", "dep-1", "openai",
            "gpt-4o-mini", 12, 9, 21, 0, 0, 1e-05, "success", 200, None, None, 1, 0, None, None)


def insert(conn: sqlite3.Connection, rows: list[tuple]) -> None:
    for start in range(0, len(rows), SLICE):
        conn.execute("BEGIN IMMEDIATE")
        store.insert_slice(conn, rows[start:start + SLICE])
        conn.execute("COMMIT")


def measure(path: Path, make_id: Callable[[], str], rows: int, probe: int) -> float:
    """µs per inserted row once the table holds ``rows`` rows."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    for migration in store.MIGRATIONS:
        conn.executescript(migration)
    for _ in range(0, rows, 10_000):
        insert(conn, [row(make_id()) for _ in range(10_000)])
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    batch = [row(make_id()) for _ in range(probe)]
    started = time.perf_counter()
    insert(conn, batch)
    elapsed = time.perf_counter() - started
    conn.close()
    return elapsed / probe * 1e6


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=400_000, help="rows in the table before the timed inserts")
    p.add_argument("--probe", type=int, default=20_000, help="rows inserted and timed")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for name, make_id in (("version 4 (random)", lambda: str(uuid.uuid4())), ("version 7 (time-ordered)", call_id)):
            for rows in (0, args.rows):
                us = measure(Path(tmp) / f"{name[:9].replace(' ', '')}-{rows}.db", make_id, rows, args.probe)
                print(f"| {name} | {rows:,} | {us:.1f} µs |", flush=True)


if __name__ == "__main__":
    main()

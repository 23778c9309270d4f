"""The ``spend_logs`` table in the sidecar's SQLite file: its migrations, batched writes, retention.

One row per request: the final :class:`sidecar.CallEvent` (the attempt whose answer or error the
client got). Rows wait in memory and are written by one background task (every
:data:`FLUSH_SECONDS`, or at once when :data:`BATCH_ROWS` wait), in WAL mode so several
``--workers`` processes can write the same file. At shutdown what waits is written. Rows older
than the retention are deleted at start-up and then every hour, in chunks.

Where rows are written: in the event loop's own thread, :data:`WRITE_SLICE` rows at a time in a
few multi-row INSERTs (:func:`insert_slice`), :data:`TRANSACTION_SLICES` slices per transaction,
with the loop free between slices (the write lock held meanwhile), on a plain
``sqlite3`` connection that never waits for a lock (``busy_timeout=0``). Writing them in
aiosqlite's thread cost 2-3x more CPU per request than the insert itself: ``sqlite3`` lets the
GIL go around every row's step, so each row traded the GIL with the loop's thread (chat c=64
against the spend log off: +200 µs per request that way, about +75 µs this way; medians of
alternating pairs).
When another connection holds the write lock (another worker, the retention clean-up), the rest
of the batch goes to aiosqlite's thread, which waits for the lock (``busy_timeout``) off the loop.
The loop's connection never checkpoints (a checkpoint syncs the file): aiosqlite's thread runs
a passive checkpoint every :data:`CHECKPOINT_ROWS` rows, holding no GIL while it copies pages.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import logging
import sqlite3
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import aiosqlite
import msgspec
from aiohttp import web

from sidecar import CallEvent

log = logging.getLogger("sidecar.spendlog")

FLUSH_SECONDS = 0.5
"""How long a row may wait in memory before its batch is written."""
BATCH_ROWS = 500
"""A batch this big is written at once."""
MAX_PENDING_ROWS = 50_000
"""Rows kept in memory while the database cannot be written (locked, full disk); beyond, dropped."""
CLEANUP_SECONDS = 3600.0
"""How often rows older than the retention are deleted (and once at start-up)."""
DELETE_CHUNK = 5_000
"""Rows deleted per transaction, so other writers are never held up for long."""
BUSY_TIMEOUT_MS = 5_000
WRITE_SLICE = 64
"""Rows per transaction written in the loop's thread (about 1 ms of it); a power of two, so a full
slice is one INSERT (fewer where SQLite binds fewer values: :attr:`SpendLog._slice`)."""
SLICE_GAP = 0.002
"""Seconds the loop is left to serve requests between two slices: long enough for a request to go
all the way through (with only a turn of the loop between slices, a request's steps each waited
for the next slice: +5 ms at p99, chat c=1)."""
TRANSACTION_SLICES = 8
"""Slices per transaction in the loop's thread, the loop left free between them (the write lock
held meanwhile): each commit writes the table's and indexes' last pages to the WAL again, and
took 29 ``pwrite`` and 6 ``fcntl`` calls per 64-row transaction (``strace -c`` under chat c=64);
bigger transactions write each page fewer times."""
CHECKPOINT_ROWS = 5_000
"""Rows written between two checkpoints of the WAL into the database file."""
_LOG_EVERY = 60.0

MIGRATIONS: list[str] = [
    # 1: the spend log
    """
    CREATE TABLE spend_logs (
        request_id TEXT NOT NULL UNIQUE,
        start_ms INTEGER NOT NULL,
        end_ms INTEGER NOT NULL,
        first_ms INTEGER,
        capability TEXT NOT NULL,
        stream INTEGER NOT NULL,
        requested_group TEXT NOT NULL,
        model_group TEXT NOT NULL,
        deployment_id TEXT,
        provider TEXT,
        model TEXT,
        prompt_tokens INTEGER NOT NULL,
        completion_tokens INTEGER NOT NULL,
        total_tokens INTEGER NOT NULL,
        cached_tokens INTEGER NOT NULL,
        reasoning_tokens INTEGER NOT NULL,
        spend REAL,
        status TEXT NOT NULL,
        status_code INTEGER NOT NULL,
        error_kind TEXT,
        error_message TEXT,
        attempts INTEGER NOT NULL,
        fallback INTEGER NOT NULL,
        user TEXT,
        metadata BLOB
    );
    CREATE INDEX spend_logs_start ON spend_logs (start_ms);
    CREATE INDEX spend_logs_model_group ON spend_logs (model_group, start_ms);
    CREATE INDEX spend_logs_user ON spend_logs (user, start_ms);
    """,
    # 2: cheaper rows (every request writes one): no index on model_group, which no query can use
    # (the `model` filter ORs three columns; the summary scans a time range), and the user index
    # only over rows that name a user (``user = ?`` implies it, so lookups still use it)
    """
    DROP INDEX IF EXISTS spend_logs_model_group;
    DROP INDEX IF EXISTS spend_logs_user;
    CREATE INDEX spend_logs_user ON spend_logs (user, start_ms) WHERE user IS NOT NULL;
    """,
]

COLUMNS = ("request_id", "start_ms", "end_ms", "first_ms", "capability", "stream",
           "requested_group", "model_group", "deployment_id", "provider", "model", "prompt_tokens",
           "completion_tokens", "total_tokens", "cached_tokens", "reasoning_tokens", "spend", "status",
           "status_code", "error_kind", "error_message", "attempts", "fallback", "user", "metadata")
"""The table's columns, in the order of a row tuple (:func:`row_of`)."""
_ROW = f"({', '.join('?' * len(COLUMNS))})"
_INSERT = f"INSERT OR IGNORE INTO spend_logs ({', '.join(COLUMNS)}) VALUES {_ROW}"


@functools.lru_cache(maxsize=16)
def insert_rows(count: int) -> str:
    """One INSERT of ``count`` rows (``executemany`` ran and reset its statement once per row, a
    fifth of a row's insert: callgrind, 50-row slices, 46,400 -> 38,500 instructions a row)."""
    return f"{_INSERT},{','.join([_ROW] * (count - 1))}" if count > 1 else _INSERT


def insert_sizes(count: int) -> list[int]:
    """``count`` rows as INSERTs of powers of two (37 -> 32, 4, 1): a handful of statements for
    SQLite to compile and cache, where a statement per row count would compile one per flush."""
    return [1 << bit for bit in range(count.bit_length() - 1, -1, -1) if count >> bit & 1]


def insert_slice(conn: sqlite3.Connection, rows: Sequence[tuple[Any, ...]]) -> None:
    """Insert ``rows`` (at most what one statement may bind: :attr:`SpendLog._slice`) in the
    caller's transaction, in order, with multi-row INSERTs of :func:`insert_sizes`."""
    at = 0
    for count in insert_sizes(len(rows)):
        conn.execute(insert_rows(count), list(itertools.chain.from_iterable(rows[at:at + count])))
        at += count


_encode = msgspec.json.Encoder(enc_hook=str).encode  # (a pre-call hook may have put any object there)

# Python's sqlite3 "adapts" every bound value that is not an int, float, str or bytearray, None
# included: a registry lookup, then two failed attribute lookups per NULL. A typical row binds five
# NULLs, and that was a fifth of its insert (callgrind: 55,000 -> 44,500 instructions a row). With
# an adapter registered for None (``{}.get``: a C function that returns None) it is one dictionary
# lookup. The same NULL is bound either way; the registry is process-wide, and this entry changes
# nothing for other users of sqlite3 in the process.
sqlite3.register_adapter(type(None), {}.get)


def row_of(event: CallEvent) -> tuple[Any, ...]:
    """The table row of a request's final event (cost only when it was served and priced). Times
    are Unix milliseconds: what ``/spend/logs`` shows is exactly what its filters compare."""
    start = event.start_time
    ttft = event.time_to_first_token
    return (
        event.call_id, round(start * 1000), round((start + event.duration) * 1000),
        round((start + ttft) * 1000) if ttft is not None else None, event.capability, int(event.stream),
        event.requested_group, event.group, event.deployment_id, event.provider, event.model,
        event.prompt_tokens, event.completion_tokens, event.total_tokens, event.cached_tokens,
        event.reasoning_tokens, event.cost if event.ok else None, "success" if event.ok else "failure",
        event.status, event.error_kind, event.error_message, event.attempt, int(event.fallback),
        event.user, _metadata(event.metadata),
    )


def _metadata(metadata: dict[str, Any] | None) -> bytes | None:
    if not metadata:
        return None
    try:
        return _encode(metadata)
    except Exception:  # (a hook's object whose str() fails...): a row without metadata, not a lost batch
        return None


class SpendLog:
    """One aiosqlite connection of this process to the spend log, and the rows waiting for it."""

    def __init__(self, conn: aiosqlite.Connection, path: str, retention: float, recording: bool = True,
                 writer: sqlite3.Connection | None = None) -> None:
        self.conn = conn
        self.writer = writer
        """The loop thread's connection for rows (None for ``:memory:``: rows go through ``conn``)."""
        self.path = path
        self.retention = retention
        """Seconds a row is kept; 0 keeps rows for ever."""
        self.recording = recording
        self.dropped = 0
        self.written = 0
        self._rows: list[tuple[Any, ...]] = []
        """The rows of final events, waiting to be written (a row of plain values: the garbage
        collector stops tracking it, where a held event would be scanned until it is written)."""
        self._wake = asyncio.Event()
        self._closing = False
        self._task: asyncio.Task | None = None
        self._logged = 0.0
        self._unchecked = 0  # rows written since the last checkpoint
        self._slice = WRITE_SLICE
        """Rows per transaction here: fewer if this SQLite binds fewer than a slice's values."""
        if writer is not None:
            self._slice = max(1, min(WRITE_SLICE, writer.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) // len(COLUMNS)))

    @classmethod
    async def open(cls, path: str, retention: float, recording: bool = True) -> SpendLog:
        """Connect to ``path`` (WAL, busy timeout) and bring the table up to date."""
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        conn = await aiosqlite.connect(path, isolation_level=None)
        try:
            await conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            await conn.execute("PRAGMA journal_mode=WAL")
            await conn.execute("PRAGMA synchronous=NORMAL")  # in WAL: a commit survives a crash of the process
            await migrate(conn)
            writer = _writer(path) if recording and path != ":memory:" else None
        except BaseException:
            await conn.close()
            raise
        return cls(conn, path, retention, recording, writer)

    def start(self) -> None:
        """Start the writer (and the retention clean-up) in the background. The writer owns the
        connection: it writes what waits and closes it when :meth:`close` stops it, and also when
        it is cancelled without that (another plugin's start-up failed after this one's, so the
        app's cleanup never runs): an open connection's thread would keep the process alive."""
        self._task = asyncio.ensure_future(self._run())

    def add(self, events: list[CallEvent]) -> None:
        """Queue the rows of the requests' final events among ``events`` (never blocks, never raises)."""
        if not self.recording or self._closing:
            return
        rows = [row_of(event) for event in events if event.final]
        room = MAX_PENDING_ROWS - len(self._rows)
        if len(rows) > room:
            self._drop(len(rows) - max(room, 0))
            rows = rows[:max(room, 0)]
        self._rows += rows
        if len(self._rows) >= BATCH_ROWS:
            self._wake.set()

    async def close(self) -> None:
        """Write what waits, stop the writer, close the connection."""
        self._closing = True
        self._wake.set()
        if self._task is None:
            await self._finish()
        else:
            with contextlib.suppress(Exception):
                await self._task

    async def _run(self) -> None:
        next_cleanup = 0.0  # at start-up, then every CLEANUP_SECONDS
        try:
            while not self._closing:
                try:
                    if self.retention and time.time() >= next_cleanup:
                        next_cleanup = time.time() + CLEANUP_SECONDS
                        await self.delete_expired()
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(FLUSH_SECONDS):
                            await self._wake.wait()
                    self._wake.clear()
                    await self.flush()
                except Exception as exc:  # never let the writer die: the next turn tries again
                    self._warn("spend log writer: %s: %s", type(exc).__name__, exc)
                    await asyncio.sleep(FLUSH_SECONDS)
        finally:
            await self._finish()

    async def _finish(self) -> None:
        self._closing = True
        try:
            await self.flush()
        finally:
            if self.writer is not None:
                self.writer.close()
            await self.conn.close()

    async def flush(self) -> int:
        """Write the waiting rows (:meth:`_write_here`, and what a lock held elsewhere leaves in one
        transaction in aiosqlite's thread) and say how many; on failure keep them for the next try."""
        rows, self._rows = self._rows, []
        if not rows:
            return 0
        done = 0
        try:
            if self.writer is not None:
                done = await self._write_here(rows)
            if done < len(rows):
                await self._transaction(_INSERT, rows[done:])
        except BaseException as exc:  # a failure, or the writer cancelled meanwhile: they wait on
            self.written += done
            self._rows = rows[done:] + self._rows
            excess = len(self._rows) - MAX_PENDING_ROWS
            if excess > 0:
                del self._rows[:excess]
                self._drop(excess)
            if not isinstance(exc, sqlite3.Error):
                raise
            self._warn("cannot write the spend log to %s (%d rows waiting): %s", self.path, len(self._rows), exc)
            return 0
        self.written += len(rows)
        self._unchecked += len(rows)
        if self._unchecked >= CHECKPOINT_ROWS:
            self._unchecked = 0
            with contextlib.suppress(sqlite3.Error):
                await self.conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
        return len(rows)

    async def _write_here(self, rows: list[tuple[Any, ...]]) -> int:
        """Write ``rows`` in this thread, :data:`WRITE_SLICE` at a time and
        :data:`TRANSACTION_SLICES` slices per transaction, and say how many: it stops at the
        first transaction whose lock another connection holds."""
        writer = self.writer
        assert writer is not None
        size = self._slice
        per_transaction = size * TRANSACTION_SLICES
        for start in range(0, len(rows), per_transaction):
            if start:
                await asyncio.sleep(SLICE_GAP)  # the loop serves requests between slices
            try:
                writer.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError:  # locked (busy): aiosqlite's thread waits for it instead
                return start
            try:
                for at in range(start, min(start + per_transaction, len(rows)), size):
                    if at != start:
                        await asyncio.sleep(SLICE_GAP)
                    insert_slice(writer, rows[at:at + size])
                writer.execute("COMMIT")
            except BaseException:  # (a failure, or cancelled between slices: nothing of it stays)
                with contextlib.suppress(sqlite3.Error):
                    writer.execute("ROLLBACK")
                raise
        return len(rows)

    async def delete_expired(self, now: float | None = None) -> int:
        """Delete rows older than the retention, :data:`DELETE_CHUNK` per transaction (none when
        the retention is 0: rows are kept for ever)."""
        if not self.retention:
            return 0
        cutoff = round(((time.time() if now is None else now) - self.retention) * 1000)
        deleted = 0
        try:
            while True:
                count = await self._transaction(
                    "DELETE FROM spend_logs WHERE rowid IN "
                    "(SELECT rowid FROM spend_logs WHERE start_ms < ? LIMIT ?)", [(cutoff, DELETE_CHUNK)])
                deleted += count
                if count < DELETE_CHUNK:
                    break
        except sqlite3.Error as exc:
            self._warn("cannot delete old spend log rows from %s: %s", self.path, exc)
        if deleted:
            log.info("spend log: deleted %d rows older than the retention", deleted)
        return deleted

    async def select(self, sql: str, args: Sequence[Any]) -> list[tuple[Any, ...]]:
        async with self.conn.execute(sql, args) as cur:
            return list(await cur.fetchall())

    async def _transaction(self, sql: str, rows: Iterable[tuple[Any, ...]]) -> int:
        await self.conn.execute("BEGIN IMMEDIATE")
        try:
            cur = await self.conn.executemany(sql, rows)
            count = cur.rowcount
            await self.conn.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                await self.conn.execute("ROLLBACK")
            raise
        return count

    def _drop(self, count: int) -> None:
        self.dropped += count
        self._warn("spend log: %d rows dropped so far (the database is not keeping up)", self.dropped)

    def _warn(self, message: str, *args: Any) -> None:
        now = time.monotonic()
        if now - self._logged >= _LOG_EVERY:
            self._logged = now
            log.warning(message, *args)


def _writer(path: str) -> sqlite3.Connection:
    """The loop thread's connection for rows: it never waits for a lock, never checkpoints."""
    writer = sqlite3.connect(path, isolation_level=None)
    try:
        writer.execute("PRAGMA busy_timeout=0")
        writer.execute("PRAGMA synchronous=NORMAL")  # (per connection; WAL is the file's, set already)
        writer.execute("PRAGMA wal_autocheckpoint=0")
    except BaseException:
        writer.close()
        raise
    return writer


async def migrate(conn: aiosqlite.Connection) -> int:
    """Create or upgrade the table (its own version row: the core's ``user_version`` is not ours)."""
    await conn.execute("BEGIN IMMEDIATE")  # one worker migrates; the others wait, then find it done
    try:
        await conn.execute("CREATE TABLE IF NOT EXISTS spendlog_schema (version INTEGER NOT NULL)")
        async with conn.execute("SELECT version FROM spendlog_schema") as cur:
            found = await cur.fetchone()
        version = found[0] if found else 0
        if version > len(MIGRATIONS):
            raise sqlite3.DatabaseError(f"the spend log's schema version {version} is newer than this "
                                        f"sidecar-spendlog knows ({len(MIGRATIONS)}); upgrade it")
        for sql in MIGRATIONS[version:]:
            for statement in filter(str.strip, sql.split(";")):
                await conn.execute(statement)
        if version < len(MIGRATIONS):
            await conn.execute("DELETE FROM spendlog_schema")
            await conn.execute("INSERT INTO spendlog_schema (version) VALUES (?)", (len(MIGRATIONS),))
        await conn.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(sqlite3.Error):
            await conn.execute("ROLLBACK")
        raise
    return len(MIGRATIONS)


SPEND_LOG = web.AppKey("sidecar_spendlog", SpendLog)
"""Where the app keeps this process's :class:`SpendLog`."""

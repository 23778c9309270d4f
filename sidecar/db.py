"""SQLite persistence (aiosqlite, WAL, versioned migrations).

A write returns only after its transaction is committed with ``synchronous=FULL``, so a
deployment acknowledged with a 200 survives a ``kill -9`` right after.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path
from typing import Any

import aiosqlite
import msgspec

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode

MIGRATIONS: list[str] = [
    # 1: deployments added over the API
    """
    CREATE TABLE deployments (
        id TEXT PRIMARY KEY,
        model_name TEXT NOT NULL,
        litellm_params BLOB NOT NULL,
        model_info BLOB NOT NULL,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL
    );
    """,
    # 2: model lists fetched from providers by `sidecar sync --models`
    """
    CREATE TABLE synced_models (
        provider TEXT NOT NULL,
        model TEXT NOT NULL,
        info BLOB NOT NULL,
        synced_at REAL NOT NULL,
        PRIMARY KEY (provider, model)
    );
    """,
]


class Database:
    """One aiosqlite connection; every write is its own committed transaction."""

    def __init__(self, conn: aiosqlite.Connection, path: str) -> None:
        self.conn = conn
        self.path = path
        self._write_lock = asyncio.Lock()  # one connection: transactions must not interleave

    @classmethod
    async def open(cls, path: str) -> Database:
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        conn = await aiosqlite.connect(path, isolation_level=None)
        await conn.execute("PRAGMA journal_mode=WAL")
        await conn.execute("PRAGMA synchronous=FULL")
        await conn.execute("PRAGMA busy_timeout=5000")
        db = cls(conn, path)
        try:
            await db.migrate()
        except BaseException:
            await conn.close()
            raise
        return db

    async def close(self) -> None:
        await self.conn.close()

    async def migrate(self) -> int:
        """Apply the migrations this file has not had yet; returns the schema version."""
        async with self.conn.execute("PRAGMA user_version") as cur:
            (version,) = await cur.fetchone()  # type: ignore[misc]
        if version > len(MIGRATIONS):
            raise sqlite3.DatabaseError(f"schema version {version} is newer than this llm-sidecar knows "
                                        f"({len(MIGRATIONS)}); upgrade llm-sidecar or use another database")
        for number, sql in enumerate(MIGRATIONS[version:], start=version + 1):
            await self.conn.execute("BEGIN IMMEDIATE")
            try:
                await _run_script(self.conn, sql)
                await self.conn.execute(f"PRAGMA user_version={number}")
                await self.conn.execute("COMMIT")
            except BaseException:
                await self.conn.execute("ROLLBACK")
                raise
        return len(MIGRATIONS)

    async def data_version(self) -> int:
        """SQLite's ``data_version``: it changes when another connection commits."""
        async with self.conn.execute("PRAGMA data_version") as cur:
            (version,) = await cur.fetchone()  # type: ignore[misc]
        return version

    # ---- deployments

    async def list_deployments(self) -> list[dict[str, Any]]:
        async with self.conn.execute(
            "SELECT id, model_name, litellm_params, model_info FROM deployments ORDER BY created_at, id"
        ) as cur:
            rows = await cur.fetchall()
        return [
            {"id": r[0], "model_name": r[1], "litellm_params": _decode(r[2]), "model_info": _decode(r[3])}
            for r in rows
        ]

    async def insert_deployment(self, id: str, model_name: str, params: dict, info: dict) -> None:
        now = time.time()
        await self._write(
            "INSERT INTO deployments (id, model_name, litellm_params, model_info, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (id, model_name, _encode(params), _encode(info), now, now),
        )

    async def update_deployment(self, id: str, model_name: str, params: dict, info: dict) -> None:
        await self._write(
            "UPDATE deployments SET model_name=?, litellm_params=?, model_info=?, updated_at=? WHERE id=?",
            (model_name, _encode(params), _encode(info), time.time(), id),
        )

    async def delete_deployment(self, id: str) -> None:
        await self._write("DELETE FROM deployments WHERE id=?", (id,))

    # ---- synced catalog

    async def replace_synced_models(self, provider: str, models: dict[str, dict]) -> None:
        now = time.time()
        await self._transaction([
            ("DELETE FROM synced_models WHERE provider=?", [(provider,)]),
            ("INSERT INTO synced_models (provider, model, info, synced_at) VALUES (?, ?, ?, ?)",
             [(provider, name, _encode(info), now) for name, info in models.items()]),
        ])

    async def synced_models(self) -> dict[str, dict[str, dict]]:
        async with self.conn.execute("SELECT provider, model, info FROM synced_models ORDER BY provider, model") as cur:
            rows = await cur.fetchall()
        out: dict[str, dict[str, dict]] = {}
        for provider, model, info in rows:
            out.setdefault(provider, {})[model] = _decode(info)
        return out

    async def _write(self, sql: str, args: tuple) -> None:
        await self._transaction([(sql, [args])])

    async def _transaction(self, steps: list[tuple[str, list[tuple]]]) -> None:
        """Run ``steps`` in one transaction; returns once it is committed (durably)."""
        async with self._write_lock:
            await self.conn.execute("BEGIN IMMEDIATE")
            try:
                for sql, rows in steps:
                    await self.conn.executemany(sql, rows)
                await self.conn.execute("COMMIT")
            except BaseException:
                await self.conn.execute("ROLLBACK")
                raise


async def _run_script(conn: aiosqlite.Connection, sql: str) -> None:
    for statement in filter(str.strip, sql.split(";")):
        await conn.execute(statement)

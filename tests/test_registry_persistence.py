"""Registry persistence: restarts on the same database, concurrent adds, a kill -9 right
after a 200, migrations; and deployment ids."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import yaml

from registry_helpers import AUTH, add, cfg, chat_body, error_of, free_port, info_rows, start_upstream

# ---------------------------------------------------------------- persistence


async def test_restart_keeps_added_models_with_their_ids(make_client, tmp_path):
    config = cfg(tmp_path)
    first = await make_client(config)
    added = [await add(first, {"model_name": f"persist-{i}", "litellm_params": {"model": f"mock/p{i}"},
                               "model_info": {"input_cost_per_token": i * 1e-6}}) for i in range(3)]
    patched = await first.patch(f"/model/{added[0]['model_info']['id']}/update", headers=AUTH,
                                json={"model_info": {"description": "patched"}})
    assert patched.status == 200
    deleted = await first.post("/model/delete", headers=AUTH, json={"id": added[2]["model_info"]["id"]})
    assert deleted.status == 200
    before = await info_rows(first)
    await first.close()

    second = await make_client(config)
    after = await info_rows(second)
    assert after == before
    assert [(r["model_name"], r["model_info"]["db_model"]) for r in after] == [
        ("config-mock", False), ("persist-0", True), ("persist-1", True)]
    assert after[1]["model_info"]["description"] == "patched"
    assert after[2]["model_info"]["input_cost_per_token"] == 1e-6
    resp = await second.post("/chat/completions", json=chat_body("persist-1"), headers=AUTH)
    assert resp.status == 200 and resp.headers["x-litellm-model-id"] == added[1]["model_info"]["id"]


async def test_fifty_concurrent_adds_all_stored(make_client, tmp_path):
    config = cfg(tmp_path)
    client = await make_client(config)

    async def one(i: int) -> tuple[int, dict]:
        resp = await client.post("/model/new", headers=AUTH, json={
            "model_name": f"c-{i}", "litellm_params": {"model": f"mock/c{i}", "api_key": f"sk-concurrent-{i:04d}"}})
        return resp.status, await resp.json()

    results = await asyncio.gather(*(one(i) for i in range(50)))
    assert [status for status, _ in results] == [200] * 50
    ids = {body["model_info"]["id"] for _, body in results}
    assert len(ids) == 50
    rows = await info_rows(client)
    assert {r["model_info"]["id"] for r in rows if r["model_info"]["db_model"]} == ids
    assert {r["model_name"] for r in rows} == {"config-mock"} | {f"c-{i}" for i in range(50)}
    await client.close()

    again = await make_client(config)
    rows = await info_rows(again)
    assert {r["model_info"]["id"] for r in rows if r["model_info"]["db_model"]} == ids
    resp = await again.post("/chat/completions", json=chat_body("c-49"), headers=AUTH)
    assert resp.status == 200


async def test_concurrent_adds_of_one_id_store_one(make_client, tmp_path):
    client = await make_client(cfg(tmp_path))
    body = {"model_name": "dup", "litellm_params": {"model": "mock/dup"}, "model_info": {"id": "same"}}
    statuses = await asyncio.gather(*(client.post("/model/new", headers=AUTH, json=body) for _ in range(10)))
    codes = sorted(r.status for r in statuses)
    assert codes == [200] + [409] * 9
    assert [r["model_info"]["id"] for r in await info_rows(client)].count("same") == 1


async def _wait_ready(session: aiohttp.ClientSession, base: str, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"sidecar exited with {proc.returncode}: {proc.stderr.read().decode()}"
        try:
            async with session.get(base + "/health/readiness") as resp:
                if resp.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.05)
    raise AssertionError("sidecar did not become ready within 30 s")


def _spawn(config_file: Path, port: int) -> subprocess.Popen:
    exe = Path(sys.executable).parent / "sidecar"
    env = {k: v for k, v in os.environ.items() if k not in ("SIDECAR_DATABASE_URL", "SIDECAR_CONFIG")}
    return subprocess.Popen([str(exe), "serve", "--config", str(config_file), "--host", "127.0.0.1",
                             "--port", str(port), "--log-level", "WARNING"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=10)
    if proc.stderr:
        proc.stderr.close()


async def test_kill_9_right_after_200_loses_nothing(tmp_path):
    config_file = tmp_path / "sidecar.yaml"
    config_file.write_text(yaml.safe_dump(cfg(tmp_path, db="killed.db")))
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        port = free_port()
        proc = _spawn(config_file, port)
        try:
            base = f"http://127.0.0.1:{port}"
            await _wait_ready(session, base, proc)
            async with session.post(base + "/model/new", headers=AUTH, json={
                    "model_name": "survivor", "litellm_params": {"model": "mock/survivor"},
                    "model_info": {"description": "acknowledged, then SIGKILL"}}) as resp:
                assert resp.status == 200, await resp.text()
                body = await resp.json()
            async with session.post(base + "/model/new", headers=AUTH, json={
                    "model_name": "patched-survivor", "litellm_params": {"model": "mock/p"}}) as resp:
                assert resp.status == 200, await resp.text()
                patched_id = (await resp.json())["model_info"]["id"]
            async with session.patch(f"{base}/model/{patched_id}/update", headers=AUTH, json={
                    "model_info": {"description": "patched, then SIGKILL"}}) as resp:
                status = resp.status
                os.kill(proc.pid, signal.SIGKILL)  # on the 200, before anything else
            assert status == 200
            assert proc.wait(timeout=10) == -signal.SIGKILL
        finally:
            _stop(proc)

        port = free_port()
        proc = _spawn(config_file, port)
        try:
            base = f"http://127.0.0.1:{port}"
            await _wait_ready(session, base, proc)
            async with session.get(base + "/model/info", headers=AUTH) as resp:
                rows = (await resp.json())["data"]
        finally:
            _stop(proc)
    survivors = [r for r in rows if r["model_name"] == "survivor"]
    assert len(survivors) == 1
    assert survivors[0]["model_info"]["id"] == body["model_info"]["id"]
    assert survivors[0]["model_info"]["description"] == "acknowledged, then SIGKILL"
    patched = [r for r in rows if r["model_info"]["id"] == patched_id]
    assert [r["model_info"]["description"] for r in patched] == ["patched, then SIGKILL"]


# ---------------------------------------------------------------- ids


async def test_config_ids_are_stable_sha256_and_model_info_id_wins(make_client, tmp_path):
    models = [
        {"model_name": "a", "litellm_params": {"model": "mock/a", "api_key": "os.environ/REGISTRY_TEST_KEY"}},
        {"model_name": "a", "litellm_params": {"model": "mock/a2"}},
        {"model_name": "b", "litellm_params": {"model": "mock/b"}, "model_info": {"id": "chosen-id"}},
    ]
    os.environ["REGISTRY_TEST_KEY"] = "sk-from-env-1"
    try:
        first = await make_client(cfg(tmp_path, *models, db="one.db"))
        ids1 = [r["model_info"]["id"] for r in await info_rows(first)]
        os.environ["REGISTRY_TEST_KEY"] = "sk-from-env-2"  # rotating the env value keeps the id
        second = await make_client(cfg(tmp_path, *models, db="two.db"))
        ids2 = [r["model_info"]["id"] for r in await info_rows(second)]
    finally:
        del os.environ["REGISTRY_TEST_KEY"]
    assert ids1 == ids2
    assert ids1[2] == "chosen-id"
    assert len(set(ids1)) == 3
    for dep_id in ids1[:2]:
        assert len(dep_id) == 64 and int(dep_id, 16) >= 0
    assert all(r["model_info"]["db_model"] is False for r in await info_rows(second))


async def test_model_id_header_and_litellm_model_id_filter(make_client, tmp_path):
    models = [
        {"model_name": "pair", "litellm_params": {"model": "mock/p1"}},
        {"model_name": "pair", "litellm_params": {"model": "mock/p2"}},
    ]
    client = await make_client(cfg(tmp_path, *models))
    rows = await info_rows(client)
    by_id = {r["model_info"]["id"]: r for r in rows}
    seen = set()
    for _ in range(64):  # simple-shuffle picks at random: ask until both have served (1 in 2**63 to miss)
        if seen == set(by_id):
            break
        resp = await client.post("/v1/chat/completions", json=chat_body("pair"), headers=AUTH)
        assert resp.status == 200
        dep_id = resp.headers["x-litellm-model-id"]
        assert dep_id in by_id
        seen.add(dep_id)
        assert (await resp.json())["model"] == by_id[dep_id]["litellm_params"]["model"].split("/", 1)[1]
    assert seen == set(by_id)  # both deployments served, each under its own id
    for dep_id, row in by_id.items():
        for path in ("/model/info", "/v1/model/info"):
            resp = await client.get(path, headers=AUTH, params={"litellm_model_id": dep_id})
            assert resp.status == 200
            assert (await resp.json())["data"] == [row]
    err = await error_of(await client.get("/model/info", headers=AUTH, params={"litellm_model_id": "zzz"}), 404)
    assert "zzz" in err["message"]


def test_config_id_is_sha256_of_name_and_params():
    """The documented hash: sha256 of the canonical JSON of [model_name, litellm_params as written]."""
    from sidecar.registry import config_deployment_id

    params = {"model": "mock/x", "b": 1, "a": "os.environ/K"}
    expected = hashlib.sha256(json.dumps(["x", params], sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    assert config_deployment_id("x", params) == expected
    assert config_deployment_id("x", dict(reversed(params.items()))) == expected


async def test_concurrent_patches_merge_and_delete_wins_over_a_late_update(make_client, tmp_path):
    config = cfg(tmp_path)
    client = await make_client(config)
    added = await add(client, {"model_name": "racy", "litellm_params": {"model": "mock/r", "a": 1}})
    dep_id = added["model_info"]["id"]
    patches = [client.patch(f"/model/{dep_id}/update", headers=AUTH, json={"litellm_params": {f"k{i}": i}})
               for i in range(10)]
    assert [r.status for r in await asyncio.gather(*patches)] == [200] * 10
    expected = {"model": "mock/r", "a": 1, **{f"k{i}": i for i in range(10)}}
    assert (await info_rows(client, litellm_model_id=dep_id))[0]["litellm_params"] == expected

    # a delete and an update racing: whatever the order, memory and database agree
    delete = client.post("/model/delete", headers=AUTH, json={"id": dep_id})
    patch = client.patch(f"/model/{dep_id}/update", headers=AUTH, json={"model_name": "racy-2"})
    deleted, patched = await asyncio.gather(delete, patch)
    assert deleted.status == 200
    assert patched.status in (200, 404), await patched.text()
    live = [r["model_info"]["id"] for r in await info_rows(client)]
    await client.close()
    stored = [r["model_info"]["id"] for r in await info_rows(await make_client(config))]
    assert live == stored
    assert dep_id not in live


async def test_in_flight_request_finishes_on_the_deployment_it_started_with(make_client, tmp_path, aiohttp_server):
    up = await start_upstream(aiohttp_server)
    up.gate = asyncio.Event()
    client = await make_client(cfg(tmp_path))
    added = await add(client, {"model_name": "moving", "litellm_params": {
        "model": "openai/gpt-4o-mini", "api_base": up.base_url, "api_key": "sk-before-0001"}})
    dep_id = added["model_info"]["id"]
    in_flight = asyncio.ensure_future(client.post("/chat/completions", json=chat_body("moving"), headers=AUTH))
    await asyncio.wait_for(up.arrived.wait(), 10)
    # while it is upstream, the deployment is repointed to mock and then deleted
    resp = await client.post("/model/update", headers=AUTH, json={
        "model_info": {"id": dep_id}, "litellm_params": {"model": "mock/elsewhere"}})
    assert resp.status == 200
    resp = await client.post("/chat/completions", json=chat_body("moving", "next"), headers=AUTH)
    assert (await resp.json())["choices"][0]["message"]["content"] == "Mock reply to: next"  # the next request
    assert (await client.post("/model/delete", headers=AUTH, json={"id": dep_id})).status == 200
    up.gate.set()
    resp = await asyncio.wait_for(in_flight, 10)
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["choices"][0]["message"]["content"] == "hi there"
    assert resp.headers["x-litellm-model-id"] == dep_id
    assert len(up.chats) == 1


async def test_environment_references_are_stored_and_resolved(make_client, tmp_path, aiohttp_server, monkeypatch):
    up = await start_upstream(aiohttp_server)
    monkeypatch.setenv("REGISTRY_UPSTREAM_KEY", "sk-from-environment-42")
    config = cfg(tmp_path)
    client = await make_client(config)
    added = await add(client, {"model_name": "env", "litellm_params": {
        "model": "openai/gpt-4o-mini", "api_base": up.base_url, "api_key": "os.environ/REGISTRY_UPSTREAM_KEY"}})
    resp = await client.post("/chat/completions", json=chat_body("env"), headers=AUTH)
    assert resp.status == 200 and up.auth_headers[-1] == "Bearer sk-from-environment-42"
    await client.close()
    # the reference is what is stored: a rotated variable is used after a restart
    monkeypatch.setenv("REGISTRY_UPSTREAM_KEY", "sk-rotated-environment-43")
    client = await make_client(config)
    resp = await client.post("/chat/completions", json=chat_body("env"), headers=AUTH)
    assert resp.status == 200 and up.auth_headers[-1] == "Bearer sk-rotated-environment-43"
    assert resp.headers["x-litellm-model-id"] == added["model_info"]["id"]
    err = await error_of(await client.post("/model/new", headers=AUTH, json={
        "model_name": "unset", "litellm_params": {"model": "mock/u", "api_key": "os.environ/REGISTRY_NOT_SET_VAR"}}),
        400, "REGISTRY_NOT_SET_VAR")
    assert err["param"] == "litellm_params"


async def test_a_stored_deployment_of_an_uninstalled_plugin_is_skipped(make_client, tmp_path):
    import sidecar_mock

    from sidecar.plugins import get_plugin_manager

    config = cfg(tmp_path)
    client = await make_client(config)
    await add(client, {"model_name": "echoing", "litellm_params": {"model": "echo/e"}, "model_info": {"id": "e1"}})
    await add(client, {"model_name": "mocking", "litellm_params": {"model": "mock/m"}, "model_info": {"id": "m1"}})
    await client.close()
    pm = get_plugin_manager(load_entrypoints=False)
    pm.register(sidecar_mock)  # echo's plugin is gone
    client = await make_client(config, pm=pm)
    assert [r["model_info"]["id"] for r in await info_rows(client)][1:] == ["m1"]
    ready = await client.get("/health/readiness")
    assert ready.status == 200
    # its id stays taken in the database
    await error_of(await client.post("/model/new", headers=AUTH, json={
        "model_name": "again", "litellm_params": {"model": "mock/a"}, "model_info": {"id": "e1"}}), 409, "e1")


async def test_migrations_upgrade_an_old_database_and_keep_its_rows(tmp_path):
    import aiosqlite

    from sidecar.db import MIGRATIONS, Database

    path = str(tmp_path / "old.db")
    async with aiosqlite.connect(path) as conn:  # a file made by the first schema version
        await conn.executescript(MIGRATIONS[0] + ";PRAGMA user_version=1;")
        await conn.execute("INSERT INTO deployments VALUES ('old-id', 'old', ?, ?, 1, 1)",
                           (b'{"model":"mock/old"}', b'{"note":"from v1"}'))
        await conn.commit()
    db = await Database.open(path)
    try:
        assert await db.migrate() == len(MIGRATIONS)
        async with db.conn.execute("PRAGMA user_version") as cur:
            assert (await cur.fetchone())[0] == len(MIGRATIONS)
        async with db.conn.execute("PRAGMA journal_mode") as cur:
            assert (await cur.fetchone())[0] == "wal"
        assert await db.list_deployments() == [
            {"id": "old-id", "model_name": "old", "litellm_params": {"model": "mock/old"},
             "model_info": {"note": "from v1"}}]
        await db.replace_synced_models("openai", {"m": {"mode": "chat"}})
        assert await db.synced_models() == {"openai": {"m": {"mode": "chat"}}}
    finally:
        await db.close()


async def test_a_database_from_a_newer_version_is_refused_not_damaged(tmp_path):
    import sqlite3

    import aiosqlite
    import pytest

    from sidecar.db import MIGRATIONS, Database

    path = str(tmp_path / "newer.db")
    async with aiosqlite.connect(path) as conn:
        await conn.execute(f"PRAGMA user_version={len(MIGRATIONS) + 1}")
        await conn.commit()
    with pytest.raises(sqlite3.DatabaseError, match="newer than this llm-sidecar knows"):
        await Database.open(path)
    async with aiosqlite.connect(path) as conn, conn.execute("PRAGMA user_version") as cur:
        assert (await cur.fetchone())[0] == len(MIGRATIONS) + 1

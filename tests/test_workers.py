"""``sidecar serve --workers N``: processes sharing one port and one database, kept in step.

In-process tests run two apps on one SQLite file, as two workers would; subprocess tests run the
real ``sidecar serve --workers 2`` and talk to it over fresh connections, which the kernel
spreads over the workers.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import openai_helpers
import pytest
from conftest import MOCK_MODELS
from gateway_helpers import Server, assert_error, run_sidecar, until, write_config

from sidecar import keys, sync, workers
from sidecar.app import create_app
from sidecar.db import Database

KEY = "sk-workers"
CHAT = {"messages": [{"role": "user", "content": "hi"}]}
NEW = {"model_name": "added", "litellm_params": {"model": "mock/mock-gpt"}}
AUTH = {"Authorization": f"Bearer {KEY}"}


# ---------------------------------------------------------------- two apps, one database


async def two_workers(aiohttp_client, make_config):
    config = make_config({"model_list": MOCK_MODELS})
    return (await aiohttp_client(create_app(config, workers=2)),
            await aiohttp_client(create_app(config, workers=2)))


async def test_a_model_added_through_one_worker_is_served_by_the_other_at_once(aiohttp_client, make_config):
    a, b = await two_workers(aiohttp_client, make_config)
    resp = await a.post("/model/new", json=NEW)
    assert resp.status == 200, await resp.text()
    added = (await resp.json())["model_info"]["id"]
    # b did not know the name: it looks at the database before answering 404
    resp = await b.post("/v1/chat/completions", json={"model": "added", **CHAT})
    assert resp.status == 200, await resp.text()
    assert resp.headers["x-litellm-model-id"] == added
    # reads look first too
    resp = await b.get("/model/info")
    assert added in [row["model_info"]["id"] for row in (await resp.json())["data"]]
    resp = await b.get("/model_group/info")
    assert "added" in [group["model_group"] for group in (await resp.json())["data"]]


async def test_changes_through_another_worker_are_seen_by_reads_and_edits(aiohttp_client, make_config):
    a, b = await two_workers(aiohttp_client, make_config)
    added = (await (await a.post("/model/new", json=NEW)).json())["model_info"]["id"]
    # b edits a deployment it has never seen: it reloads before reading it
    resp = await b.patch(f"/model/{added}/update", json={"model_info": {"team": "x"}})
    assert resp.status == 200, await resp.text()
    resp = await a.get("/v1/model/info", params={"litellm_model_id": added})
    assert (await resp.json())["data"][0]["model_info"]["team"] == "x"
    resp = await a.post("/model/delete", json={"id": added})
    assert resp.status == 200, await resp.text()
    resp = await b.get("/v1/models")
    assert "added" not in [m["id"] for m in (await resp.json())["data"]]
    await assert_error(await b.post("/v1/chat/completions", json={"model": "added", **CHAT}), 404,
                       code="model_not_found")


async def test_a_worker_picks_up_changes_in_the_background(aiohttp_client, make_config, monkeypatch):
    monkeypatch.setattr(sync, "POLL_SECONDS", 0.05)
    a, b = await two_workers(aiohttp_client, make_config)
    added = (await (await a.post("/model/new", json=NEW)).json())["model_info"]["id"]
    registry = b.app[keys.REGISTRY]
    await until(lambda: registry.get(added) is not None)
    assert registry.get(added).model_name == "added"
    await a.post("/model/delete", json={"id": added})
    await until(lambda: registry.get(added) is None)


async def info_of(client, name: str = "mock-gpt") -> dict:
    rows = (await (await client.get("/model/info")).json())["data"]
    return next(r for r in rows if r["model_name"] == name)["model_info"]


async def test_synced_models_another_process_stored_reach_the_info_answers(aiohttp_client, make_config):
    a, b = await two_workers(aiohttp_client, make_config)
    assert (await info_of(b)).get("max_input_tokens") != 4242  # (its info is now cached)
    db = await Database.open(b.app[keys.CONFIG].database_path)  # as `sidecar sync --models` does
    await db.replace_synced_models("mock", {"mock-gpt": {"input_cost_per_token": 1e-6, "max_input_tokens": 4242}})
    await db.close()
    assert (await info_of(b))["max_input_tokens"] == 4242


async def test_a_reload_that_failed_is_tried_again(aiohttp_client, make_config, monkeypatch):
    a, b = await two_workers(aiohttp_client, make_config)
    assert (await a.post("/model/new", json=NEW)).status == 200
    real, calls = sync.load_stored_deployments, []

    async def locked_once(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise sqlite3.OperationalError("database is locked")
        return await real(*args, **kwargs)

    monkeypatch.setattr(sync, "load_stored_deployments", locked_once)
    with pytest.raises(sqlite3.OperationalError):
        await sync.refresh(b.app)  # (the poll logs it and tries again a second later)
    assert await sync.refresh(b.app) is True
    assert (await b.post("/v1/chat/completions", json={"model": "added", **CHAT})).status == 200


def slow_reload(monkeypatch, client) -> tuple[asyncio.Event, asyncio.Event]:
    """Hold ``client``'s reloads at their read of the database: returns (entered, release)."""
    db = client.app[keys.DATABASE]
    real = db.list_deployments
    entered, release = asyncio.Event(), asyncio.Event()

    async def slow():
        entered.set()
        await release.wait()
        return await real()

    monkeypatch.setattr(db, "list_deployments", slow)
    return entered, release


async def test_a_client_leaving_does_not_cut_a_reload_short(aiohttp_client, make_config, monkeypatch):
    a, b = await two_workers(aiohttp_client, make_config)
    entered, release = slow_reload(monkeypatch, b)
    assert (await a.post("/model/new", json=NEW)).status == 200
    left = asyncio.ensure_future(sync.refresh(b.app))  # the refresh of a GET whose client leaves
    await asyncio.wait_for(entered.wait(), 5)
    left.cancel()
    release.set()
    await until(lambda: bool(b.app[keys.REGISTRY].group("added")))  # the reload went on without its client
    assert (await b.post("/v1/chat/completions", json={"model": "added", **CHAT})).status == 200


async def test_an_unknown_name_is_served_when_a_reload_in_progress_brings_it(aiohttp_client, make_config,
                                                                             monkeypatch):
    a, b = await two_workers(aiohttp_client, make_config)
    entered, release = slow_reload(monkeypatch, b)
    assert (await a.post("/model/new", json=NEW)).status == 200
    poll = asyncio.ensure_future(sync.refresh(b.app))  # the background poll, mid-reload
    await asyncio.wait_for(entered.wait(), 5)
    asyncio.get_running_loop().call_later(0.2, release.set)  # (the request below waits for this reload)
    resp = await b.post("/v1/chat/completions", json={"model": "added", **CHAT})
    await poll
    assert resp.status == 200, await resp.text()


async def test_an_upstream_404_is_not_sent_twice(aiohttp_client, make_config, openai_fake):
    config = make_config({"model_list": [
        {"model_name": "up/*", "litellm_params": {"model": "openai/*", "api_base": openai_fake.base_url,
                                                   "api_key": openai_helpers.KEY}}]})
    a = await aiohttp_client(create_app(config, workers=2))
    b = await aiohttp_client(create_app(config, workers=2))
    assert (await b.post("/model/new", json=NEW)).status == 200  # a has a change to load
    before = len(openai_fake.received)
    resp = await a.post("/v1/chat/completions", json={"model": "up/error-404", **CHAT})
    assert resp.status == 404
    assert len(openai_fake.received) - before == 1


async def test_a_single_worker_does_not_look_at_the_database_per_request(make_client):
    client = await make_client()
    assert sync.fresh_registry not in client.app.middlewares
    await assert_error(await client.post("/v1/chat/completions", json={"model": "nope", **CHAT}), 404)


# ---------------------------------------------------------------- the real `sidecar serve --workers 2`


def config(tmp_path: Path) -> Path:
    return write_config(tmp_path / "workers.yaml", {
        "model_list": MOCK_MODELS,
        "general_settings": {"master_key": KEY, "database_url": f"sqlite:///{tmp_path / 'shared.db'}"},
    })


def call(server: Server, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
    """One request on a fresh connection (so the kernel may give it to either worker)."""
    req = urllib.request.Request(server.url + path, method=method, headers={**AUTH, "Content-Type": "application/json"},
                                 data=json.dumps(body).encode() if body is not None else None)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def workers_of(server: Server) -> list[int]:
    pid = server.proc.pid
    return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def both_workers(server: Server) -> list[int]:
    """The two workers' pids, once both are forked (readiness means one answered)."""
    return wait_for(lambda: len(w := workers_of(server)) == 2 and w)


def wait_for(predicate, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("timed out")


def test_two_workers_serve_one_port_and_share_changes(tmp_path):
    with Server(config(tmp_path), tmp_path, extra_args=("--workers", "2")) as server:
        server.wait_ready()  # (one worker answering; the other may still be starting)
        both_workers(server)
        assert "2 workers" in server.output()
        status, row = call(server, "POST", "/model/new", NEW)
        assert status == 200, row
        added = row["model_info"]["id"]
        for _ in range(12):  # fresh connections land on both workers
            status, answer = call(server, "POST", "/v1/chat/completions", {"model": "added", **CHAT})
            assert status == 200, answer
            status, info = call(server, "GET", f"/v1/model/info?litellm_model_id={added}")
            assert status == 200 and info["data"][0]["model_name"] == "added", info


def test_concurrent_edits_through_different_workers_lose_nothing(tmp_path):
    with Server(config(tmp_path), tmp_path, extra_args=("--workers", "2")) as server:
        server.wait_ready()
        added = call(server, "POST", "/model/new", NEW)[1]["model_info"]["id"]
        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(
                lambda i: call(server, "PATCH", f"/model/{added}/update", {"model_info": {f"k{i}": i}}), range(16)))
        assert all(status == 200 for status, _ in results), results
        info = call(server, "GET", f"/v1/model/info?litellm_model_id={added}")[1]["data"][0]["model_info"]
        assert {k: info.get(k) for k in (f"k{i}" for i in range(16))} == {f"k{i}": i for i in range(16)}


def test_a_worker_that_dies_is_replaced_and_sigterm_stops_them_all(tmp_path):
    with Server(config(tmp_path), tmp_path, extra_args=("--workers", "2")) as server:
        server.wait_ready()
        first, second = both_workers(server)
        os.kill(first, signal.SIGKILL)
        replaced = wait_for(lambda: (w := workers_of(server)) and len(w) == 2 and first not in w and w)
        assert second in replaced
        for _ in range(6):
            assert call(server, "POST", "/v1/chat/completions", {"model": "mock-gpt", **CHAT})[0] == 200
        server.proc.send_signal(signal.SIGTERM)
        assert server.proc.wait(timeout=15) == 0
        for pid in replaced:
            assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()
        assert "starting another" in server.output()


SIGNAL_WHILE_STARTING = """
import os, signal, sys, time
from sidecar import workers
slots = workers.bind("127.0.0.1", 0, 3)
where, parent, calls = sys.argv[1], os.getpid(), []

def signal_at_second_call(real):
    def wrapper(*args):
        if os.getpid() == parent:
            calls.append(1)
            if len(calls) == 2:  # SIGTERM lands while the parent is still starting workers
                os.kill(parent, signal.SIGTERM)
        return real(*args)
    return wrapper

if where == "fork":
    os.fork = signal_at_second_call(os.fork)
else:  # just before the signals are blocked for the second fork
    real_mask = signal.pthread_sigmask
    signal.pthread_sigmask = lambda how, sigs: (signal_at_second_call(real_mask) if how == signal.SIG_BLOCK
                                                 else real_mask)(how, sigs)
def run_worker(socks):
    time.sleep(30)  # stands for the server: runs until SIGTERM
    return 0
started = time.monotonic()
code = workers.supervise(slots, run_worker)
print(code, round(time.monotonic() - started, 1))
"""


@pytest.mark.parametrize("where", ["fork", "block"])
def test_a_stop_signal_while_workers_start_stops_them_all(where):
    out = subprocess.run([sys.executable, "-c", SIGNAL_WHILE_STARTING, where], capture_output=True, text=True,
                         timeout=25)
    code, seconds = out.stdout.split()
    assert code == "0", out.stderr
    assert float(seconds) < 10, out.stderr  # no worker was left running, unsignalled


@pytest.mark.parametrize(("host", "expected"),
                         [("", "0.0.0.0"), ("localhost", "127.0.0.1"), ("127.0.0.1", "127.0.0.1")])
def test_each_worker_listens_on_every_address_the_host_names_on_one_port(host, expected):
    slots = workers.bind(host, 0, 2)
    try:
        assert len(slots) == 2 and len(slots[0]) == len(slots[1]) >= 1
        names = [sock.getsockname() for socks in slots for sock in socks]
        assert expected in {name[0] for name in names}
        assert len({name[1] for name in names}) == 1  # (port 0: all join the first one's port)
    finally:
        for sock in (sock for socks in slots for sock in socks):
            sock.close()


def test_workers_need_a_database_file(tmp_path):
    cfg = write_config(tmp_path / "memory.yaml", {"model_list": MOCK_MODELS,
                                                  "general_settings": {"database_url": "sqlite:///:memory:"}})
    out = run_sidecar("serve", "--config", str(cfg), "--port", "0", "--workers", "2", timeout=30)
    assert out.returncode == 2
    assert "database file" in out.stderr and "Traceback" not in out.stderr


def test_workers_also_come_from_litellms_flag_and_the_environment(monkeypatch):
    from sidecar.cli import build_parser

    assert build_parser().parse_args(["serve"]).workers == 1
    assert build_parser().parse_args(["serve", "--num_workers", "3"]).workers == 3
    monkeypatch.setenv("SIDECAR_WORKERS", "4")
    assert build_parser().parse_args(["serve"]).workers == 4
    assert build_parser().parse_args(["serve", "--workers", "2"]).workers == 2


def test_workers_must_be_a_positive_number():
    out = run_sidecar("serve", "--workers", "0")
    assert out.returncode == 2 and "at least 1" in out.stderr
    out = run_sidecar("serve", "--workers", "two")
    assert out.returncode == 2 and "whole number" in out.stderr

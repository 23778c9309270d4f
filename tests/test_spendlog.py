"""The spend log plugin (plugins/spendlog), over HTTP with the fake OpenAI upstream: one row per
request matching the answer's usage and cost, failures, a restart, ``GET /spend/logs`` filters and
errors, the master key, retention, ``sidecar spend`` and ``--workers 2`` writing one file."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import aiosqlite
import pytest
import sidecar_spendlog
from gateway_helpers import Server, assert_error, write_config
from openai_helpers import KEY, post, stream, user
from sidecar_spendlog import api as spend_api
from sidecar_spendlog import store
from test_router_failures import group
from test_workers import call, config as workers_config

from sidecar import CallEvent, hookimpl
from sidecar.cli import main as sidecar_main
from sidecar.config import ConfigError, parse_config
from sidecar.plugins import get_plugin_manager

CHAT = "/v1/chat/completions"
SPEND = "/spend/logs"
MASTER = "sk-spend-master"
AUTH = {"Authorization": f"Bearer {MASTER}"}
PRICES = {"input_cost_per_token": 1e-06, "output_cost_per_token": 2e-06}
DAY = 86_400
LITELLM_FIELDS = {
    "request_id", "call_type", "api_key", "spend", "total_tokens", "prompt_tokens", "completion_tokens",
    "startTime", "endTime", "request_duration_ms", "completionStartTime", "model", "model_id", "model_group",
    "custom_llm_provider", "api_base", "user", "end_user", "metadata", "request_tags", "cache_hit", "cache_key",
    "team_id", "organization_id", "status",
}
"""The columns of LiteLLM's ``LiteLLM_SpendLogs`` a row carries (its schema.prisma)."""


def priced(name: str, *models: str, base: str) -> list[dict[str, Any]]:
    """A group whose deployments have prices (so the cost header is not 0), ids ``<group>-<model>``."""
    entries = group(name, *models, base=base)
    for entry, model in zip(entries, models):
        entry["model_info"].update(PRICES, id=f"{name}-{model}")
    return entries


def spend_config(model_list: list[dict[str, Any]], **general: Any) -> dict[str, Any]:
    return {"model_list": model_list, "general_settings": general}


async def query(client, **params: Any) -> tuple[int, Any]:
    resp = await client.get(SPEND, params=params, headers=AUTH)
    return resp.status, await resp.json()


async def spend_rows(client, expected: int, **params: Any) -> list[dict[str, Any]]:
    """``/spend/logs`` once it holds ``expected`` rows (rows are written within about half a second)."""
    deadline = time.monotonic() + 10
    while True:
        status, rows = await query(client, **params)
        assert status == 200, rows
        if len(rows) == expected or time.monotonic() > deadline:
            assert len(rows) == expected, rows
            return rows
        await asyncio.sleep(0.05)


def moment(text: str) -> datetime:
    return datetime.fromisoformat(text)


def assert_row(row: dict[str, Any], usage: dict[str, Any], *, group: str, deployment: str) -> None:
    assert LITELLM_FIELDS <= set(row), LITELLM_FIELDS - set(row)
    assert {k: row[k] for k in ("prompt_tokens", "completion_tokens", "total_tokens")} == {
        k: usage[k] for k in ("prompt_tokens", "completion_tokens", "total_tokens")}
    assert (row["model_group"], row["requested_model_group"], row["model_id"]) == (group, group, deployment)
    assert (row["custom_llm_provider"], row["model"], row["call_type"]) == ("openai", "good", "acompletion")
    assert (row["status"], row["status_code"], row["error_information"]) == ("success", 200, None)
    assert row["api_key"] == "" and row["api_base"] == ""
    assert moment(row["startTime"]) <= moment(row["completionStartTime"]) <= moment(row["endTime"])
    assert row["startTime"].endswith("Z") and row["endTime"].endswith("Z")


def age(db: Path, request_id: str, seconds: float) -> None:
    """Make a row ``seconds`` older, as if it had been written then."""
    with sqlite3.connect(db) as conn:
        changed = conn.execute("UPDATE spend_logs SET start_ms = start_ms - ?, end_ms = end_ms - ? "
                               "WHERE request_id = ?", (seconds * 1000, seconds * 1000, request_id)).rowcount
    assert changed == 1


# ---------------------------------------------------------------- what a row holds


async def test_rows_match_the_answers_usage_and_cost_plain_and_streamed(make_client, openai_fake):
    client = await make_client(spend_config(priced("g", "good", base=openai_fake.base_url)))
    status, body, headers = await post(client, CHAT, {
        "model": "g", "messages": user("hi there"), "user": "alice",
        "metadata": {"tags": ["team:a", 7], "job": "nightly"}})
    assert status == 200, body
    resp, chunks = await stream(client, {"model": "g", "messages": user("hello"), "user": "bob",
                                         "stream_options": {"include_usage": True}})
    newest, oldest = await spend_rows(client, 2)
    assert oldest["request_id"] == headers["x-litellm-call-id"]
    assert_row(oldest, body["usage"], group="g", deployment="g-good")
    assert oldest["spend"] == float(headers["x-litellm-response-cost"]) > 0
    assert (oldest["user"], oldest["end_user"], oldest["stream"], oldest["attempts"]) == ("alice", "alice", False, 1)
    assert oldest["metadata"] == {"tags": ["team:a", 7], "job": "nightly"} and oldest["request_tags"] == ["team:a"]

    usage = chunks[-1]["usage"]
    assert newest["request_id"] == resp.headers["x-litellm-call-id"]
    assert_row(newest, usage, group="g", deployment="g-good")
    assert newest["spend"] == pytest.approx(usage["prompt_tokens"] * PRICES["input_cost_per_token"]
                                            + usage["completion_tokens"] * PRICES["output_cost_per_token"])
    assert newest["stream"] and newest["user"] == "bob" and newest["metadata"] == {}
    text = await (await client.get(SPEND, headers=AUTH)).text()
    assert KEY not in text and "127.0.0.1" not in text  # no credential, no api_base


async def test_one_row_per_request_with_failures_retries_and_unknown_models(make_client, openai_fake):
    openai_fake.script["bad"] = ["error-500"]
    retried = priced("g", "bad", "good", base=openai_fake.base_url)
    retried[0]["litellm_params"]["order"] = 1  # tried first, fails, then dep-good serves
    retried[1]["litellm_params"]["order"] = 2
    limited = group("down", "error-429", base=openai_fake.base_url, num_retries=0)
    client = await make_client(spend_config(retried + limited))
    _, body, ok = await post(client, CHAT, {"model": "g", "messages": user("hi")})
    status, _, failed = await post(client, CHAT, {"model": "down", "messages": user("hi")})
    assert status == 429
    status, _, unknown = await post(client, CHAT, {"model": "nope", "messages": user("hi")})
    assert status == 404
    rows = {row["request_id"]: row for row in await spend_rows(client, 3)}  # one per request, not per attempt

    served = rows[ok["x-litellm-call-id"]]
    assert (served["status"], served["attempts"], served["model_id"]) == ("success", 2, "g-good")
    assert served["spend"] == float(ok["x-litellm-response-cost"])
    assert served["total_tokens"] == body["usage"]["total_tokens"]

    refused = rows[failed["x-litellm-call-id"]]
    assert (refused["status"], refused["status_code"], refused["model_id"]) == ("failure", 429, "dep-error-429")
    assert (refused["spend"], refused["total_tokens"]) == (0.0, 0)  # nothing billed
    info = refused["error_information"]
    assert (info["error_code"], info["error_class"], info["error_kind"], info["llm_provider"]) == (
        "429", "RateLimitError", "rate_limit", "openai")
    assert info["error_message"] and KEY not in info["error_message"]

    missing = rows[unknown["x-litellm-call-id"]]
    assert (missing["model_group"], missing["model_id"], missing["status_code"]) == ("nope", "", 404)
    assert missing["error_information"]["error_class"] == "NotFoundError"


async def test_rows_waiting_at_shutdown_are_written_and_survive_a_restart(make_client, openai_fake, monkeypatch):
    monkeypatch.setattr(store, "FLUSH_SECONDS", 60.0)  # nothing is written before the shutdown
    data = spend_config(priced("g", "good", base=openai_fake.base_url))
    first = await make_client(data)
    ids = {(await post(first, CHAT, {"model": "g", "messages": user(f"hi {i}")}))[2]["x-litellm-call-id"]
           for i in range(3)}
    await first.close()
    second = await make_client(data)
    status, rows = await query(second)  # no wait: they are in the file already
    assert status == 200 and {row["request_id"] for row in rows} == ids


async def test_disable_spend_logs_writes_nothing(make_client, openai_fake):
    model_list = priced("g", "good", base=openai_fake.base_url)
    first = await make_client(spend_config(model_list, disable_spend_logs=True))
    assert (await post(first, CHAT, {"model": "g", "messages": user("hi")}))[0] == 200
    await first.close()
    second = await make_client(spend_config(model_list))
    assert await query(second) == (200, [])


class Team:
    def __str__(self) -> str:
        return "team-7"


class TeamTagger:
    """A pre-call hook that puts an object (not JSON) into the body's metadata."""

    @hookimpl
    def sidecar_pre_call(self, call) -> None:
        call.body["metadata"] = {"team": Team()}


async def test_metadata_a_hook_made_unencodable_is_kept_as_text(make_client, openai_fake):
    pm = get_plugin_manager()
    pm.register(TeamTagger())
    client = await make_client(spend_config(priced("g", "good", base=openai_fake.base_url)), pm=pm)
    assert (await post(client, CHAT, {"model": "g", "messages": user("hi")}))[0] == 200
    (row,) = await spend_rows(client, 1)
    assert row["metadata"] == {"team": "team-7"}


class Broken:
    def __str__(self) -> str:
        raise RuntimeError("no text for this one")


class BrokenTagger:
    """A pre-call hook that puts an object no encoder can write into the body's metadata."""

    @hookimpl
    def sidecar_pre_call(self, call) -> None:
        call.body["metadata"] = {"team": Broken()} if call.body.get("user") == "broken" else None


async def test_metadata_nothing_can_encode_costs_only_its_own_rows_metadata(make_client, openai_fake):
    """A turn's events are queued together: one bad event must not lose the others' rows."""
    pm = get_plugin_manager()
    pm.register(BrokenTagger())
    client = await make_client(spend_config(priced("g", "good", base=openai_fake.base_url)), pm=pm)
    answers = await asyncio.gather(*(post(client, CHAT, {"model": "g", "messages": user("hi"), "user": who})
                                     for who in ("ok-1", "broken", "ok-2")))
    assert [status for status, _, _ in answers] == [200, 200, 200]
    rows = await spend_rows(client, 3)
    assert sorted(row["user"] for row in rows) == ["broken", "ok-1", "ok-2"]
    assert all(row["metadata"] == {} for row in rows)  # (a row without metadata shows {})


# ---------------------------------------------------------------- GET /spend/logs


@pytest.fixture
async def three_rows(make_client, openai_fake):
    """Requests a/alice, a/bob, b/alice (in that order) and their rows, newest first."""
    client = await make_client(spend_config(priced("a", "good", base=openai_fake.base_url)
                                            + priced("b", "good", base=openai_fake.base_url)))
    for model, who in (("a", "alice"), ("a", "bob"), ("b", "alice")):
        assert (await post(client, CHAT, {"model": model, "messages": user("hi"), "user": who}))[0] == 200
        await asyncio.sleep(0.005)  # (rows keep milliseconds: the time filters below need three apart)
    return client, await spend_rows(client, 3)


def ids(rows: list[dict[str, Any]]) -> list[str]:
    return [row["request_id"] for row in rows]


async def test_filters_by_model_user_request_id_and_page(three_rows):
    client, rows = three_rows
    b_alice, a_bob, a_alice = rows
    expected = {
        (("model", "a"),): [a_bob, a_alice],
        (("model", "good"),): rows,  # the upstream model matches too
        (("user", "alice"),): [b_alice, a_alice],
        (("user_id", "bob"),): [a_bob],  # LiteLLM's name of the filter
        (("model", "a"), ("user", "alice")): [a_alice],
        (("request_id", a_bob["request_id"]),): [a_bob],
        (("model", "nope"),): [],
        (("limit", "1"),): [b_alice],
        (("limit", "1"), ("offset", "1")): [a_bob],
    }
    for params, want in expected.items():
        status, got = await query(client, **dict(params))
        assert status == 200 and ids(got) == ids(want), params


async def test_filters_by_dates_and_times(three_rows):
    client, rows = three_rows
    b_alice, a_bob, a_alice = rows
    today = date.fromisoformat(a_alice["startTime"][:10])
    yesterday, tomorrow = (today - timedelta(days=1)).isoformat(), (today + timedelta(days=1)).isoformat()
    in_paris = moment(a_bob["startTime"]).astimezone(timezone(timedelta(hours=2))).isoformat()
    expected = {
        (("start_date", today.isoformat()),): rows,
        (("end_date", today.isoformat()),): rows,  # the whole day
        (("start_date", today.isoformat()), ("end_date", today.isoformat())): rows,
        (("start_date", tomorrow),): [],
        (("end_date", yesterday),): [],
        (("start_date", a_bob["startTime"]),): [b_alice, a_bob],  # an ISO time, as the rows give it
        (("end_date", a_bob["startTime"]),): [a_bob, a_alice],
        (("start_date", a_bob["startTime"].rstrip("Z")),): [b_alice, a_bob],  # no offset: UTC
        (("start_date", in_paris),): [b_alice, a_bob],  # the same instant at +02:00
    }
    for params, want in expected.items():
        status, got = await query(client, **dict(params))
        assert status == 200 and ids(got) == ids(want), params


@pytest.mark.parametrize(("params", "param"), [
    ({"start_date": "2025-13-01"}, "start_date"),
    ({"start_date": "last week"}, "start_date"),
    ({"end_date": "2025-02-30"}, "end_date"),
    ({"start_date": "2025-02-02", "end_date": "2025-02-01"}, "end_date"),
    ({"limit": "0"}, "limit"),
    ({"limit": "ten"}, "limit"),
    ({"limit": "10001"}, "limit"),
    ({"offset": "-1"}, "offset"),
    ({"summarize": "true"}, "summarize"),
])
async def test_bad_filters_are_400_naming_the_param(make_client, params, param):
    client = await make_client(spend_config([]))
    await assert_error(await client.get(SPEND, params=params, headers=AUTH), 400, param=param, code="invalid_value")


async def test_the_master_key_is_required(make_client):
    client = await make_client(spend_config([], master_key=MASTER))
    await assert_error(await client.get(SPEND), 401)
    await assert_error(await client.get(SPEND, headers={"Authorization": "Bearer sk-wrong"}), 401)
    assert await query(client) == (200, [])


# ---------------------------------------------------------------- retention


@pytest.mark.parametrize(("general", "kept"), [
    ({}, {"new", "10 days"}),  # 30 days by default
    ({"spend_log_retention": "7d"}, {"new"}),
    ({"maximum_spend_logs_retention_period": "7d"}, {"new"}),  # LiteLLM's name
    ({"spend_log_retention": "60d", "maximum_spend_logs_retention_period": "7d"}, {"new", "10 days", "40 days"}),
    ({"spend_log_retention": 0}, {"new", "10 days", "40 days"}),  # for ever
])
async def test_retention_deletes_old_rows_at_start_up(make_client, openai_fake, tmp_path, general, kept):
    model_list = priced("g", "good", base=openai_fake.base_url)
    first = await make_client(spend_config(model_list))
    made = {name: (await post(first, CHAT, {"model": "g", "messages": user("hi")}))[2]["x-litellm-call-id"]
            for name in ("new", "10 days", "40 days")}
    await spend_rows(first, 3)
    await first.close()
    age(tmp_path / "sidecar.db", made["10 days"], 10 * DAY)
    age(tmp_path / "sidecar.db", made["40 days"], 40 * DAY)
    second = await make_client(spend_config(model_list, **general))
    await spend_rows(second, len(kept))
    assert await second.app[store.SPEND_LOG].delete_expired() == 0  # nothing more to delete
    assert set(ids((await query(second))[1])) == {made[name] for name in kept}


async def test_old_rows_are_deleted_periodically_while_serving(make_client, openai_fake, tmp_path, monkeypatch):
    monkeypatch.setattr(store, "CLEANUP_SECONDS", 0.05)
    client = await make_client(spend_config(priced("g", "good", base=openai_fake.base_url), spend_log_retention="1h"))
    old = (await post(client, CHAT, {"model": "g", "messages": user("hi")}))[2]["x-litellm-call-id"]
    new = (await post(client, CHAT, {"model": "g", "messages": user("hi")}))[2]["x-litellm-call-id"]
    await spend_rows(client, 2)
    age(tmp_path / "sidecar.db", old, 2 * 3600)
    assert ids(await spend_rows(client, 1)) == [new]


@pytest.mark.parametrize(("value", "seconds"), [
    (None, 30 * DAY), ("30d", 30 * DAY), ("12h", 12 * 3600), ("60m", 3600), ("3600s", 3600), ("2w", 14 * DAY),
    ("1mo", 30 * DAY), ("90", 90), (90, 90), (0, 0),
])
def test_retention_takes_litellms_durations(value, seconds):
    assert sidecar_spendlog.retention_seconds(value) == seconds


@pytest.mark.parametrize("key", ["spend_log_retention", "maximum_spend_logs_retention_period"])
@pytest.mark.parametrize("value", ["30 days", "d30", -1, 1.5])
def test_a_bad_retention_stops_start_up_naming_its_path(key, value):
    with pytest.raises(ConfigError, match=rf"\$\.general_settings\.{key}"):
        parse_config({"model_list": [], "general_settings": {key: value}})


# ---------------------------------------------------------------- sidecar spend


def spend_table(capsys, *args: str) -> tuple[int, list[list[str]]]:
    """``sidecar spend ARGS`` in-process: its exit status and its lines split into columns."""
    status = sidecar_main(["spend", *args])
    return status, [line.split() for line in capsys.readouterr().out.splitlines()]


async def test_sidecar_spend_prints_totals_per_group_and_day(make_client, openai_fake, tmp_path, capsys):
    data = spend_config(priced("a", "good", base=openai_fake.base_url) + priced("b", "good", base=openai_fake.base_url)
                        + group("down", "error-429", base=openai_fake.base_url, num_retries=0),
                        database_url=f"sqlite:///{tmp_path / 'sidecar.db'}")
    client = await make_client(data)
    answers = {}
    for name, model in (("a1", "a"), ("a2", "a"), ("b1", "b"), ("down", "down")):
        status, body, headers = await post(client, CHAT, {"model": model, "messages": user(f"hi {name}")})
        answers[name] = (body.get("usage", {}), float(headers.get("x-litellm-response-cost", 0)), headers)
    rows = await spend_rows(client, 4)
    await client.close()
    age(tmp_path / "sidecar.db", answers["a2"][2]["x-litellm-call-id"], DAY)  # a2 was yesterday
    today = date.fromisoformat(rows[0]["startTime"][:10])
    yesterday = (today - timedelta(days=1)).isoformat()
    config = write_config(tmp_path / "sidecar.yaml", data)

    def line(day: str, group_name: str, *names: str, failed: int = 0) -> list[str]:
        usages = [answers[n][0] for n in names]
        return [day, group_name, str(len(names)), str(failed),
                *(str(sum(u.get(k, 0) for u in usages))
                  for k in ("prompt_tokens", "completion_tokens", "total_tokens")),
                f"{sum(answers[n][1] for n in names):.6f}"]

    status, table = spend_table(capsys, "--config", str(config))
    assert status == 0
    assert table == [
        ["DAY", "GROUP", "REQUESTS", "FAILED", "PROMPT", "COMPLETION", "TOKENS", "COST_USD"],
        line(yesterday, "a", "a2"),
        line(today.isoformat(), "a", "a1"),
        line(today.isoformat(), "b", "b1"),
        line(today.isoformat(), "down", "down", failed=1),
        line("total", "a", "a1", "a2"),
        line("total", "b", "b1"),
        line("total", "down", "down", failed=1),
        line("total", "(all)", "a1", "a2", "b1", "down", failed=1),
    ]
    assert float(table[-1][-1]) > 0
    status, table = spend_table(capsys, "--config", str(config), "--start-date", today.isoformat())
    assert status == 0 and table[1:] == [line(today.isoformat(), "a", "a1"), line(today.isoformat(), "b", "b1"),
                                         line(today.isoformat(), "down", "down", failed=1),
                                         line("total", "a", "a1"), line("total", "b", "b1"),
                                         line("total", "down", "down", failed=1),
                                         line("total", "(all)", "a1", "b1", "down", failed=1)]
    status, table = spend_table(capsys, "--config", str(config), "--end-date", yesterday)
    assert status == 0 and table[1:] == [line(yesterday, "a", "a2"), line("total", "a", "a2"),
                                         line("total", "(all)", "a2")]


def test_sidecar_spend_without_a_spend_log_or_with_bad_dates(tmp_path, capsys):
    config = write_config(tmp_path / "c.yaml", {"model_list": [],
                                                 "general_settings": {"database_url": f"sqlite:///{tmp_path}/none.db"}})
    assert sidecar_main(["spend", "--config", str(config)]) == 1
    assert "no spend log in" in capsys.readouterr().err
    reversed_dates = ["--start-date", "2025-02-02", "--end-date", "2025-02-01"]
    assert sidecar_main(["spend", "--config", str(config), *reversed_dates]) == 2
    with pytest.raises(SystemExit) as exited:
        sidecar_main(["spend", "--config", str(config), "--start-date", "yesterday"])
    assert exited.value.code == 2
    assert sidecar_main(["spend", "--config", str(tmp_path / "missing.yaml")]) == 2


# ---------------------------------------------------------------- two workers, one file


def test_two_workers_write_one_spend_log(tmp_path):
    config = workers_config(tmp_path)
    with Server(config, tmp_path, extra_args=("--workers", "2")) as server:
        server.wait_ready()
        for i in range(12):  # fresh connections land on both workers
            assert call(server, "POST", CHAT, {"model": "mock-gpt", "messages": user(f"hi {i}"), "user": "w"})[0] == 200
        deadline = time.monotonic() + 10
        while len(rows := call(server, "GET", f"{SPEND}?user=w")[1]) < 12 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(rows) == 12 and {row["status"] for row in rows} == {"success"}
        for i in range(6):  # these may still wait in a worker's memory when it is stopped
            body = {"model": "mock-gpt", "messages": user(f"bye {i}"), "user": "w"}
            assert call(server, "POST", CHAT, body)[0] == 200
        server.proc.send_signal(signal.SIGTERM)
        assert server.proc.wait(timeout=15) == 0
    with sqlite3.connect(tmp_path / "shared.db") as conn:
        assert conn.execute("SELECT COUNT(*) FROM spend_logs WHERE user = 'w'").fetchone() == (18,)



async def test_a_version_1_spend_log_is_upgraded_and_lookups_by_user_and_request_id_use_indexes(tmp_path):
    """Migration 2 keeps the rows, drops the index no query could use and indexes only the rows
    that name a user; the filters of ``/spend/logs`` still search by index, not by a scan."""
    path = str(tmp_path / "spend.db")
    async with aiosqlite.connect(path, isolation_level=None) as conn:  # a spend log as version 1 left it
        for statement in filter(str.strip, store.MIGRATIONS[0].split(";")):
            await conn.execute(statement)
        await conn.execute("CREATE TABLE spendlog_schema (version INTEGER NOT NULL)")
        await conn.execute("INSERT INTO spendlog_schema (version) VALUES (1)")
        row = ["id-1", 1000, 2000, None, "chat", 0, "g", "g", "dep", "openai", "m", 1, 2, 3, 0, 0, 0.5,
               "success", 200, None, None, 1, 0, "alice", None]
        await conn.execute(store._INSERT, row)
    async with aiosqlite.connect(path, isolation_level=None) as conn:
        assert await store.migrate(conn) == len(store.MIGRATIONS) == 2
        async with conn.execute("SELECT name FROM sqlite_master WHERE type = 'index' ORDER BY name") as cur:
            assert [r[0] for r in await cur.fetchall()] == ["spend_logs_start", "spend_logs_user",
                                                            "sqlite_autoindex_spend_logs_1"]
        async with conn.execute("SELECT request_id, user FROM spend_logs") as cur:
            assert await cur.fetchall() == [("id-1", "alice")]
        for where, args, index in (("user = ?", ("alice",), "spend_logs_user"),
                                   ("request_id = ?", ("id-1",), "sqlite_autoindex_spend_logs_1"),
                                   ("start_ms >= ? AND start_ms < ?", (0, 5000), "spend_logs_start")):
            async with conn.execute(f"EXPLAIN QUERY PLAN {spend_api._SELECT} WHERE {where}", args) as cur:
                plan = " ".join(str(r[-1]) for r in await cur.fetchall())
            assert f"USING INDEX {index}" in plan, (where, plan)


# ---------------------------------------------------------------- where rows are written


def events(prefix: str, count: int) -> list[CallEvent]:
    return [CallEvent(call_id=f"{prefix}-{i}", requested_group="g", group="g", capability="chat",
                      deployment_id="dep", provider="openai", model="m", start_time=time.time())
            for i in range(count)]


def count_rows(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT COUNT(*) FROM spend_logs").fetchone()[0]


async def test_rows_are_written_in_slices_wait_for_a_lock_held_elsewhere_and_reach_the_file(tmp_path, monkeypatch):
    """The loop's connection writes ``WRITE_SLICE`` rows per transaction; when another connection
    holds the write lock, the rows wait in aiosqlite's thread (not the loop) until it is free; a
    checkpoint puts them in the database file itself (not only the WAL)."""
    monkeypatch.setattr(store, "CHECKPOINT_ROWS", 300)
    path = tmp_path / "spend.db"
    spend_log = await store.SpendLog.open(str(path), 0)
    try:
        assert spend_log.writer is not None
        spend_log.add(events("a", 250))
        assert await spend_log.flush() == 250 and count_rows(path) == 250

        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # (another worker writing)
        spend_log.add(events("b", 60))
        flushing = asyncio.ensure_future(spend_log.flush())
        ticks = 0
        while not flushing.done() and ticks < 20:  # the loop keeps turning meanwhile
            await asyncio.sleep(0.01)
            ticks += 1
        assert not flushing.done() and ticks == 20
        other.execute("COMMIT")
        other.close()
        assert await asyncio.wait_for(flushing, 5) == 60
        assert spend_log.written == 310 and spend_log.dropped == 0
        copy = tmp_path / "copy.db"
        copy.write_bytes(path.read_bytes())  # the file without its WAL: what the checkpoint put there
        assert count_rows(copy) == count_rows(path) == 310
    finally:
        await spend_log.close()


async def test_a_slice_is_one_insert_of_its_rows_each_kept_as_given(tmp_path):
    """A slice's rows go in a few multi-row INSERTs (7 rows: 4, 2 and 1), each row as executemany
    left it (NULLs, metadata, a repeated id ignored); a slice never binds more values than the
    SQLite in use allows."""
    path = tmp_path / "spend.db"
    spend_log = await store.SpendLog.open(str(path), 0)
    try:
        assert spend_log._slice == min(store.WRITE_SLICE, sqlite3.connect(":memory:").getlimit(
            sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) // len(store.COLUMNS))
        batch = events("s", 7)
        batch[2].metadata, batch[3].user, batch[4].time_to_first_token = {"tags": ["x"]}, "bob", 0.25
        batch[5].call_id = batch[6].call_id  # (written twice: the second row is ignored)
        spend_log.add(batch)
        assert await spend_log.flush() == 7
        async with aiosqlite.connect(path) as conn:
            async with conn.execute(f"{spend_api._SELECT} ORDER BY rowid") as cur:
                rows = list(await cur.fetchall())
        assert [r[0] for r in rows] == ["s-0", "s-1", "s-2", "s-3", "s-4", "s-6"]
        assert rows == [store.row_of(e) for e in batch[:5]] + [store.row_of(batch[5])]
    finally:
        await spend_log.close()
    assert store.insert_sizes(7) == [4, 2, 1] and store.insert_sizes(64) == [64] and store.insert_sizes(37) == [32, 4, 1]
    assert store.insert_rows(1) == store._INSERT
    assert store.insert_rows(4).count("?") == 4 * len(store.COLUMNS)


async def test_a_transaction_holds_several_slices_with_the_loop_free_between(tmp_path, monkeypatch):
    """:data:`store.TRANSACTION_SLICES` slices commit together (each commit writes the last pages
    again); cancelled between two slices, the transaction leaves nothing and its rows wait on."""
    monkeypatch.setattr(store, "TRANSACTION_SLICES", 2)
    path = tmp_path / "spend.db"
    spend_log = await store.SpendLog.open(str(path), 0)
    try:
        assert spend_log.writer is not None
        spend_log.writer.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 3 * len(store.COLUMNS) + 1)
        limited = store.SpendLog(spend_log.conn, spend_log.path, 0, True, spend_log.writer)  # (3-row slices)
        limited.add(events("c", 14))
        flushing = asyncio.ensure_future(limited.flush())
        await asyncio.sleep(0)  # (the first slice is in, the loop free before the second)
        assert not flushing.done()
        flushing.cancel()
        with pytest.raises(asyncio.CancelledError):
            await flushing
        assert count_rows(path) == 0 and len(limited._rows) == 14
        statements: list[str] = []
        spend_log.writer.set_trace_callback(statements.append)
        assert await limited.flush() == 14
        spend_log.writer.set_trace_callback(None)
        assert statements.count("COMMIT") == 3 and count_rows(path) == 14  # 6 + 6 + 2 rows
    finally:
        await spend_log.close()


async def test_a_sqlite_that_binds_few_values_gets_smaller_slices(tmp_path):
    """Where SQLite allows fewer bound values than a full slice holds, slices shrink to fit."""
    path = tmp_path / "spend.db"
    spend_log = await store.SpendLog.open(str(path), 0)
    try:
        assert spend_log.writer is not None
        spend_log.writer.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 3 * len(store.COLUMNS) + 1)
        limited = store.SpendLog(spend_log.conn, spend_log.path, 0, True, spend_log.writer)
        assert limited._slice == 3
        limited.add(events("l", 7))
        assert await limited.flush() == 7 and count_rows(path) == 7
    finally:
        await spend_log.close()

"""A LiteLLM config works as it is: keys not acted on are one warning, typos of keys that are
acted on stop start-up, bare model names get the catalog's provider, litellm_settings' logging
and router keys (retries, fallbacks, drop_params) take effect on their own, $SIDECAR_DATABASE_URL
wins, and /routes and /health/readiness answer as LiteLLM's."""

from __future__ import annotations

import asyncio
import json
import logging
import re

import pytest
from gateway_helpers import Server, assert_error, write_config
from openai_helpers import KEY, assert_envelope, dep, post, user
from openai_spec import assert_valid
from test_router_extras import QUICK_429, without_retries_setting
from test_router_limits import chat, member

from sidecar import __version__, keys, logs
from sidecar.app import create_app
from sidecar.compat import near_miss
from sidecar.config import ROUTING_STRATEGY_ARGS, GeneralSettings, ConfigError, parse_config
from sidecar.provider import supported_params
from sidecar.routing.policy import RouterPolicy
from sidecar.routes import ROUTES, served_paths

MOCK = {"model_name": "m", "litellm_params": {"model": "mock/m"}}


def test_keys_not_acted_on_are_accepted_with_one_warning_naming_them():
    config = parse_config({
        "model_list": [
            {**MOCK, "model_info": {"base_model": "gpt-4o", "description": "shown", "mode": "chat"},
             "litellm_credential_name": "x"},
            {**MOCK, "model_info": {"base_model": "gpt-4o"}},
            {"model_name": "m", "litellm_params": {"model": "mock/m", "tags": ["free"], "max_retries": 3,
                                                   "num_retries": 1, "temperature": 0.2}},
        ],
        "sandbox_tools": [{"sandbox_tool_name": "e2b"}],
        "policies": {"p": {}},
        "general_settings": {"disable_prisma_schema_update": True, "coordination_redis": {"host": "h"},
                             "otel": True, "custom_team_metadata_validate": "m.f", "master_key": "sk-x"},
        "router_settings": {"enable_tag_filtering": True, "num_retries": 2, "polling_interval": 5,
                            "routing_strategy_args": {"ttl": 120, "lowest_latency_buffer": 0.5,
                                                      "allowed_fails_window": 60}},
        "litellm_settings": {"callbacks": ["prometheus"], "success_callback": ["langfuse"], "cache": True,
                             "proxy_budget_rescheduler_min_time": 60, "drop_params": True,
                             "require_auth_for_metrics_endpoint": True},
    }, source="lite.yaml")
    [warning] = config.warnings
    expected = ["sandbox_tools", "policies", "general_settings.disable_prisma_schema_update",
                "general_settings.coordination_redis", "general_settings.otel",
                "general_settings.custom_team_metadata_validate", "router_settings.enable_tag_filtering",
                "router_settings.polling_interval", "router_settings.routing_strategy_args.allowed_fails_window",
                "litellm_settings.cache", "litellm_settings.proxy_budget_rescheduler_min_time",
                "model_list[*].litellm_credential_name", "model_list[*].model_info.base_model",
                "model_list[*].litellm_params.tags", "model_list[*].litellm_params.max_retries"]
    assert sorted(config.ignored_keys) == sorted(expected)
    for path in expected:
        assert path in warning
    assert warning.count("model_info.base_model") == 1, "named once, however many deployments have it"
    for acted in ("master_key", "num_retries", "drop_params", "description", "model_info.mode", "temperature",
                  *(f"routing_strategy_args.{arg}" for arg in ROUTING_STRATEGY_ARGS)):
        assert f".{acted}," not in warning and not warning.endswith(f".{acted}")
    assert (config.general.master_key, config.router.num_retries, config.router.drop_params) == ("sk-x", 2, True)
    args = config.router.routing_strategy_args
    policy = RouterPolicy.from_settings(config.router)  # the routing_strategy_args it reads, acted on
    assert (policy.ttl, policy.latency_buffer) == (args["ttl"], args["lowest_latency_buffer"])
    assert config.model_list[0].model_info["base_model"] == "gpt-4o", "model_info keys are kept (shown by info)"
    assert config.callbacks == ["prometheus", "langfuse"]  # served by the plugins of those names
    assert config.litellm_settings == {"require_auth_for_metrics_endpoint": True}  # (the prometheus plugin's)


@pytest.mark.parametrize(("data", "path", "typo", "meant"), [
    ({"general_setings": {}}, "$.general_setings", "general_setings", "general_settings"),
    ({"general_settings": {"master_kye": "x"}}, "$.general_settings", "master_kye", "master_key"),
    ({"router_settings": {"num_retires": 2}}, "$.router_settings", "num_retires", "num_retries"),
    ({"litellm_settings": {"num_retires": 2}}, "$.litellm_settings", "num_retires", "num_retries"),
    ({"litellm_settings": {"set_verbos": True}}, "$.litellm_settings", "set_verbos", "set_verbose"),
    ({"model_list": [{**MOCK, "model_info": {"max_input_token": 5}}]}, "$.model_list[0].model_info",
     "max_input_token", "max_input_tokens"),
    ({"model_list": [{"model_name": "m", "litellm_params": {"model": "mock/m", "num_retires": 1}}]},
     "$.model_list[0].litellm_params.num_retires", "num_retires", "num_retries"),
    ({"model_list": [{"model_name": "m", "litellm_params": {"model": "mock/m", "api_bse": "http://x"}}]},
     "$.model_list[0].litellm_params.api_bse", "api_bse", "api_base"),
    ({"model_list": [{"model_name": "m", "litellm_params": {"model": "mock/m", "timout": 3}}]},
     "$.model_list[0].litellm_params.timout", "timout", "timeout"),
])
def test_a_near_miss_of_a_key_acted_on_stops_start_up(data, path, typo, meant):
    with pytest.raises(ConfigError) as info:
        parse_config({"model_list": [MOCK], **data}, source="bad.yaml")
    message = str(info.value)
    assert message.startswith(f"bad.yaml: {path}: ") and "\n" not in message
    assert f"{typo!r} (did you mean {meant!r}?)" in message


async def test_a_near_miss_in_litellm_params_over_the_api_is_a_400_naming_it(make_client):
    client = await make_client({"model_list": [MOCK]})
    resp = await client.post("/model/new", json={"model_name": "n",
                                                 "litellm_params": {"model": "mock/n", "num_retires": 1}})
    assert resp.status == 400, await resp.text()
    error = (await resp.json())["error"]
    assert "did you mean 'num_retries'" in error["message"] and "num_retires" in error["param"]


@pytest.mark.parametrize(("key", "acted"), [
    ("callbacks", ("fallbacks",)),  # litellm_settings
    ("max_response_size_mb", GeneralSettings.__struct_fields__),
    ("supports_video_input", ("supports_audio_input",)),
    ("input_cost_per_token_flex", ("input_cost_per_token",)),
    ("output_dbu_cost_per_token", ("output_cost_per_token",)),
    ("max_retries", ("num_retries",)),
    ("redis_url", ("redis_host",)),
])
def test_real_litellm_keys_are_not_near_misses(key, acted):
    assert near_miss(key, acted) is None


@pytest.mark.parametrize(("litellm_settings", "path"), [
    ({"set_verbose": "loud"}, "$.litellm_settings.set_verbose"),
    ({"json_logs": [True]}, "$.litellm_settings.json_logs"),
    ({"num_retries": "many"}, "$.litellm_settings.num_retries"),
    ({"request_timeout": -1}, "$.litellm_settings.request_timeout"),
    ({"require_auth_for_metrics_endpoint": "sometimes"}, "$.litellm_settings.require_auth_for_metrics_endpoint"),
])
def test_a_wrong_value_of_a_key_acted_on_names_its_path(litellm_settings, path):
    with pytest.raises(ConfigError) as info:
        parse_config({"model_list": [MOCK], "litellm_settings": litellm_settings}, source="bad.yaml")
    assert str(info.value).startswith(f"bad.yaml: {path}: ")


# ---------------------------------------------------------------- litellm_settings: router keys alone


@pytest.mark.parametrize("num_retries", [1, 3])
@pytest.mark.parametrize("recovers", [True, False], ids=["recovers", "falls-back"])
async def test_litellm_settings_retries_then_fallbacks_act_without_router_settings(make_client, openai_fake,
                                                                                  num_retries, recovers):
    """litellm_settings' num_retries and fallbacks, with no router_settings at all: a failing
    upstream is tried num_retries more times, then the group's fallback answers."""
    base = openai_fake.base_url
    client = await make_client({
        "model_list": [without_retries_setting(member("g", "primary", base)),
                       without_retries_setting(member("backup", "spare", base))],
        "litellm_settings": {"num_retries": num_retries, "fallbacks": [{"g": ["backup"]}]},
    })
    openai_fake.script["primary"] = [QUICK_429] * num_retries + ["ok"] if recovers else [QUICK_429]
    status, body, headers = await chat(client, "g")
    assert status == 200, body
    assert_valid(body, "CreateChatCompletionResponse")
    served = "g" if recovers else "backup"
    assert (headers["x-litellm-model-group"], headers["x-litellm-attempted-retries"],
            headers["x-litellm-max-retries"], headers["x-litellm-attempted-fallbacks"]) == (
        served, str(num_retries), str(num_retries), "0" if recovers else "1")
    assert openai_fake.hits("primary") == num_retries + 1
    assert openai_fake.hits("spare") == (0 if recovers else 1)


@pytest.mark.parametrize("drop_params", [True, False, None], ids=["true", "false", "unset"])
async def test_litellm_settings_drop_params_alone_drops_what_the_provider_does_not_take(make_client, openai_fake,
                                                                                       drop_params):
    param, value = "modalities", ["text"]
    config = {"model_list": [dep("groq", "groq/llama-3.1-8b-instant", openai_fake.base_url)]}
    if drop_params is not None:
        config["litellm_settings"] = {"drop_params": drop_params}
    client = await make_client(config)
    [deployment] = client.app[keys.REGISTRY]
    assert param not in supported_params(deployment.provider, deployment.upstream_model(), "chat")
    status, body, _ = await post(client, "/v1/chat/completions",
                                 {"model": "groq", "messages": user("hi"), "temperature": 0.2, param: value})
    if drop_params:
        assert status == 200, body
        assert_valid(body, "CreateChatCompletionResponse")
        assert param not in openai_fake.last.body and openai_fake.last.body["temperature"] == 0.2
    else:
        assert status == 400, body
        error = assert_envelope(body)
        assert error["param"] == param and repr(param) in error["message"] and "drop_params" in error["message"]
        assert openai_fake.received == []


def test_an_entry_without_litellm_params_serves_its_model_name():
    config = parse_config({"model_list": [{"model_name": "gpt-3.5-turbo"}]})
    assert config.model_list[0].litellm_params == {"model": "gpt-3.5-turbo"}
    assert any("has no litellm_params" in w for w in config.warnings)
    [dep] = create_app(config)[keys.REGISTRY]
    assert (dep.provider.name, dep.upstream_model()) == ("openai", "gpt-3.5-turbo")


# ---------------------------------------------------------------- provider inference


async def test_bare_model_names_get_the_catalogs_provider(make_client, openai_fake):
    params = {"api_base": openai_fake.base_url, "api_key": KEY}
    client = await make_client({"model_list": [
        {"model_name": "chat", "litellm_params": {"model": "gpt-3.5-turbo", **params}},
        {"model_name": "emb", "litellm_params": {"model": "text-embedding-ada-002", **params}},
    ]})
    resp = await client.post("/v1/chat/completions", json={"model": "chat", "messages": user("hi")})
    assert resp.status == 200, await resp.text()
    assert_valid(await resp.json(), "CreateChatCompletionResponse")
    assert openai_fake.last.body["model"] == "gpt-3.5-turbo"
    resp = await client.post("/v1/embeddings", json={"model": "emb", "input": "hi"})
    assert resp.status == 200
    assert openai_fake.last.body["model"] == "text-embedding-ada-002"
    info = await (await client.get("/v1/model/info")).json()
    rows = {row["model_name"]: row for row in info["data"]}
    assert rows["chat"]["litellm_params"]["model"] == "gpt-3.5-turbo", "shown as written"
    assert rows["chat"]["model_info"]["litellm_provider"] == "openai"
    assert rows["emb"]["model_info"]["mode"] == "embedding"


@pytest.mark.parametrize(("model", "status", "code", "words"), [
    ("gpt-4o-mini", 200, "openai", ()),  # (for a 200: the provider inferred)
    ("claude-sonnet-4-5", 200, "anthropic", ()),
    ("jamba-1.5-large", 400, "unknown_provider", ("'ai21'", "no installed plugin provides")),
    ("my-own-model", 400, "invalid_model", ("prefix",)),
])
async def test_model_new_infers_the_provider_too(make_client, model, status, code, words):
    client = await make_client()
    resp = await client.post("/model/new", json={"model_name": "added", "litellm_params": {
        "model": model, "api_base": "http://127.0.0.1:9/v1"}})
    if status == 200:
        assert resp.status == 200, await resp.text()
        assert (await resp.json())["model_info"]["litellm_provider"] == code
    else:
        await assert_error(resp, status, param="litellm_params.model", code=code, mentions=words)


# ---------------------------------------------------------------- database URL


def test_sidecar_database_url_wins_over_a_non_sqlite_url_in_the_file(monkeypatch, tmp_path):
    data = {"model_list": [MOCK], "general_settings": {"database_url": "postgresql://u:p@db:5432/litellm"}}
    monkeypatch.setenv("SIDECAR_DATABASE_URL", f"sqlite:///{tmp_path}/env.db")
    assert parse_config(data).database_path == f"{tmp_path}/env.db"
    monkeypatch.delenv("SIDECAR_DATABASE_URL")
    with pytest.raises(ConfigError, match=r"database_url: only sqlite.*'postgresql'.*SIDECAR_DATABASE_URL"):
        parse_config(data)


# ---------------------------------------------------------------- litellm_settings: logging


@pytest.fixture
def saved_logging():
    own, root = logging.getLogger(logs.OWN_LOGGER), logging.getLogger()
    level, handlers = own.level, root.handlers[:]
    formatters = [h.formatter for h in handlers]
    yield
    own.setLevel(level)
    for handler, formatter in zip(handlers, formatters):
        handler.setFormatter(formatter)
    root.handlers[:] = handlers


@pytest.mark.parametrize(("set_verbose", "level_given", "expected"), [
    (True, False, logging.DEBUG), (True, True, logging.WARNING), (False, False, logging.WARNING)])
def test_set_verbose_means_debug_unless_a_level_was_given(saved_logging, set_verbose, level_given, expected):
    logging.getLogger(logs.OWN_LOGGER).setLevel(logging.WARNING)
    config = parse_config({"model_list": [MOCK], "litellm_settings": {"set_verbose": set_verbose}})
    logs.follow_config(config, level_given=level_given, format_given=False)
    assert logging.getLogger(logs.OWN_LOGGER).level == expected


def test_json_formatter_writes_one_object_per_line():
    record = logging.LogRecord("sidecar", logging.WARNING, __file__, 1, "two\nlines %s", ("here",), None)
    line = logs.JsonFormatter().format(record)
    assert "\n" not in line
    entry = json.loads(line)
    assert set(entry) == {"time", "level", "logger", "message"}
    assert (entry["level"], entry["logger"], entry["message"]) == ("WARNING", "sidecar", "two\nlines here")
    assert entry["time"].endswith("Z")


@pytest.mark.parametrize(("json_logs", "args", "expect_json"), [
    (True, (), True), (True, ("--log-format", "text"), False), (False, ("--log-format", "json"), True)])
async def test_serve_logs_json_lines_when_asked(tmp_path, json_logs, args, expect_json):
    config = write_config(tmp_path / "c.yaml", {
        "model_list": [MOCK], "litellm_settings": {"json_logs": json_logs},
        "general_settings": {"database_url": f"sqlite:///{tmp_path}/sidecar.db"}})
    with Server(config, tmp_path, extra_args=args) as server:
        await asyncio.to_thread(server.wait_ready)
        lines = [line for line in server.output().splitlines() if line.strip()]
    serving = [line for line in lines if "llm-sidecar serving" in line]
    assert serving, lines
    if expect_json:
        entries = [json.loads(line) for line in lines]
        assert all(set(e) >= {"time", "level", "logger", "message"} for e in entries)
        assert any(e["level"] == "WARNING" and "master_key" in e["message"] for e in entries)
    else:
        assert not serving[0].startswith("{") and " INFO sidecar: " in serving[0]


# ---------------------------------------------------------------- /routes and readiness


async def test_routes_lists_every_route_of_the_table(make_client):
    client = await make_client({"model_list": [MOCK], "general_settings": {"master_key": KEY}})
    await assert_error(await client.get("/routes"), 401)
    resp = await client.get("/routes", headers={"Authorization": f"Bearer {KEY}"})
    assert resp.status == 200
    rows = (await resp.json())["routes"]
    assert all(set(row) == {"path", "methods", "name"} for row in rows)
    listed = {(method, row["path"]) for row in rows for method in row["methods"]}
    for route in ROUTES:
        for _, path in served_paths(route):
            assert (route.method, re.sub(r"\{(\w+):[^}]*\}", r"{\1}", path)) in listed
    by_path = {row["path"]: row for row in rows}
    assert by_path["/v1/chat/completions"] == {"path": "/v1/chat/completions", "methods": ["POST"],
                                               "name": "chat_completions"}
    assert len(by_path) == len(rows), "one row per path"


async def test_readiness_answers_litellms_fields(make_client):
    body = await (await (await make_client()).get("/health/readiness")).json()
    assert body["status"] == "connected" and body["db"] == "connected"
    assert body["cache"] is None and body["success_callbacks"] == []
    assert body["litellm_version"] == f"llm-sidecar {__version__}" and body["version"] == __version__
    assert body["deployments"] == 3 and body["plugins"] >= 1

"""The router's extras over HTTP: batch completions, ``user_config``, ``allowed_api_base_hosts``,
``GET /health``, and LiteLLM's own documented ``router_settings`` example."""

from __future__ import annotations

import asyncio

import msgspec
import pytest
import yaml
from fake_upstreams import OpenAIFake, start
from gateway_helpers import assert_error
from openai_helpers import KEY, assert_envelope, post, user
from openai_spec import assert_valid
from test_router_limits import CHAT, chat, member

from sidecar import keys

MASTER = "sk-master-extras"
USER_KEY = "sk-user-config-key-123456"


def without_retries_setting(entry: dict) -> dict:
    """``entry`` leaving retries to the router's settings."""
    del entry["litellm_params"]["num_retries"]
    return entry


class Gate(asyncio.Event):
    """A fake's gate that notes a request left waiting on it being cancelled (its client went)."""

    def __init__(self) -> None:
        super().__init__()
        self.cancelled = asyncio.Event()

    async def wait(self) -> bool:
        try:
            return await super().wait()
        except asyncio.CancelledError:
            self.cancelled.set()
            raise


# ---------------------------------------------------------------- batch completions


async def test_a_batch_answers_a_list_in_order_with_a_failed_members_error(make_client, openai_fake):
    base = openai_fake.base_url
    client = await make_client({"model_list": [member("a", "first", base), member("b", "second", base),
                                               member("bad", "error-500", base)]})
    status, body, headers = await chat(client, "a, bad,b")
    assert status == 200, body
    assert headers["x-litellm-model-group"] == "a,bad,b"
    ok_a, failed, ok_b = body
    for answer, upstream in ((ok_a, "first"), (ok_b, "second")):
        assert_valid(answer, "CreateChatCompletionResponse")
        assert answer["model"] == upstream
    assert assert_envelope(failed)["type"] == "upstream_error"


async def test_fastest_response_answers_the_first_and_cancels_the_others(make_client, openai_fake):
    base = openai_fake.base_url
    client = await make_client({"model_list": [member("slow", "held", base), member("fast", "quick", base)]})
    openai_fake.script["held"] = ["hold"]
    gate = openai_fake.gates["held"] = Gate()
    status, body, headers = await chat(client, "slow,fast", fastest_response=True)
    assert status == 200, body
    assert_valid(body, "CreateChatCompletionResponse")
    assert (body["model"], headers["x-litellm-model-group"]) == ("quick", "fast")
    assert openai_fake.hits("held") == 1
    await asyncio.wait_for(gate.cancelled.wait(), 5)  # the slow member's upstream request was dropped
    assert client.app[keys.ROUTER].state.in_flight("dep-held") == 0


async def test_a_batch_cannot_be_streamed(make_client, openai_fake):
    client = await make_client({"model_list": [member("a", "first", openai_fake.base_url),
                                               member("b", "second", openai_fake.base_url)]})
    status, body, _ = await chat(client, "a,b", stream=True)
    assert status == 400, body
    assert assert_envelope(body)["param"] == "stream"
    assert openai_fake.received == []


# ---------------------------------------------------------------- user_config


async def test_user_config_is_refused_unless_the_operator_allows_client_credentials(make_client, openai_fake):
    client = await make_client({"model_list": [member("g", "a", openai_fake.base_url)]})
    status, body, _ = await chat(client, "u", user_config={"model_list": []})
    assert status == 400, body
    err = assert_envelope(body)
    assert (err["code"], err["param"]) == ("client_side_credentials_not_allowed", "user_config")


@pytest.fixture
async def user_fake(aiohttp_server):
    """A second upstream, only reachable with the key a client's user_config carries."""
    return await start(aiohttp_server, OpenAIFake(api_key=USER_KEY))


def user_config(base: str, *entries: tuple[str, str], **settings) -> dict:
    return {"model_list": [{"model_name": name, "litellm_params": {"model": f"openai/{upstream}", "api_base": base,
                                                                   "api_key": USER_KEY}}
                           for name, upstream in entries], **settings}


@pytest.fixture
async def open_client(make_client, openai_fake):
    return await make_client({"model_list": [member("g", "a", openai_fake.base_url)],
                              "general_settings": {"allow_client_side_credentials": True}})


async def test_user_config_routes_with_its_own_credentials_and_fallbacks(open_client, user_fake):
    config = user_config(user_fake.base_url, ("u", "error-500"), ("backup", "spare"),
                         fallbacks=[{"u": ["backup"]}], num_retries=0)
    status, body, headers = await chat(open_client, "u", user_config=config)
    assert status == 200, body
    assert_valid(body, "CreateChatCompletionResponse")
    assert (headers["x-litellm-model-group"], headers["x-litellm-attempted-fallbacks"]) == ("backup", "1")
    assert [r.body["model"] for r in user_fake.received] == ["error-500", "spare"]
    assert {r.headers["Authorization"] for r in user_fake.received} == {f"Bearer {USER_KEY}"}
    assert "user_config" not in user_fake.last.body


async def test_routers_from_user_config_are_built_once_per_config(open_client, user_fake):
    routers = open_client.app[keys.USER_ROUTERS].routers
    config = user_config(user_fake.base_url, ("u", "one"))
    for _ in range(2):
        assert (await chat(open_client, "u", user_config=config))[0] == 200
    assert len(routers) == 1
    assert (await chat(open_client, "u", user_config=user_config(user_fake.base_url, ("u", "two"))))[0] == 200
    assert len(routers) == 2


async def test_routers_from_user_config_are_a_bounded_lru(open_client, user_fake):
    cache = open_client.app[keys.USER_ROUTERS]
    cache.size = 2
    configs = [user_config(user_fake.base_url, ("u", name)) for name in ("one", "two", "three")]
    for config in (configs[0], configs[1], configs[0], configs[2]):  # "one" used again: "two" is the oldest
        assert (await chat(open_client, "u", user_config=config))[0] == 200
    assert len(cache.routers) == 2
    kept = {dep.litellm_params["model"] for router in cache.routers.values() for dep in router.registry}
    assert kept == {"openai/one", "openai/three"}


@pytest.mark.parametrize(("settings", "params", "param", "named"), [
    ({"routing_strategy": "fastest"}, {}, "user_config.routing_strategy", "fastest"),
    ({"retries": 3}, {}, "user_config", "retries"),
    ({}, {"timeout": "soon"}, "user_config.model_list[0].litellm_params.timeout", "timeout"),
    ({}, {"api_key": "os.environ/OPENAI_API_KEY"}, "user_config.model_list[0].litellm_params.api_key", "os.environ/"),
    ({}, {"model": "nowhere/x"}, "user_config", "nowhere"),
    ({}, {"tags": ["free"]}, "user_config", "litellm_params.tags"),
], ids=["bad-value", "unknown-key", "bad-param", "env-reference", "unknown-provider", "key-not-acted-on"])
async def test_a_bad_user_config_is_a_400_naming_the_field(open_client, user_fake, settings, params, param, named):
    config = user_config(user_fake.base_url, ("u", "one"), **settings)
    config["model_list"][0]["litellm_params"].update(params)
    status, body, _ = await chat(open_client, "u", user_config=config)
    assert status == 400, body
    err = assert_envelope(body)
    assert (err["code"], err["param"]) == ("invalid_user_config", param) and named in err["message"], err
    assert user_fake.received == []


@pytest.mark.parametrize("where", ["body", "user_config"])
@pytest.mark.parametrize("host", ["allowed", "elsewhere", "by-name"])
async def test_allowed_api_base_hosts_limits_where_a_client_may_send_the_sidecar(make_client, openai_fake, user_fake,
                                                                                where, host):
    client = await make_client({"model_list": [member("g", "a", openai_fake.base_url)], "general_settings": {
        "allow_client_side_credentials": True, "allowed_api_base_hosts": ["127.0.0.1:*", "*.example.org"]}})
    base = {"allowed": user_fake.base_url, "elsewhere": "http://169.254.169.254/v1",
            "by-name": user_fake.base_url.replace("127.0.0.1", "localhost")}[host]
    if where == "body":
        status, body, _ = await chat(client, "g", api_base=base, api_key=USER_KEY)
    else:
        status, body, _ = await chat(client, "u", user_config=user_config(base, ("u", "one")))
    if host == "allowed":
        assert status == 200, body
        assert user_fake.last.headers["Authorization"] == f"Bearer {USER_KEY}"
    else:
        assert status == 400, body
        err = assert_envelope(body)
        param = "api_base" if where == "body" else "user_config.model_list.litellm_params.api_base"
        assert (err["code"], err["param"]) == ("api_base_not_allowed", param), err
        assert user_fake.received == [] and openai_fake.received == []


# ---------------------------------------------------------------- GET /health


def health_config(base: str, **general) -> dict:
    nested = member("g", "nested", base, order=2, extra_body={"api_key": "sk-nested-secret-0987"})
    return {"model_list": [member("g", "first", base, order=2), member("g", "second", base, order=1), nested],
            "general_settings": general, "router_settings": {"allowed_fails": 0, "cooldown_time": 30}}


async def get_health(client, query: str = "") -> tuple[dict, str]:
    resp = await client.get(f"/health{query}")
    text = await resp.text()
    assert resp.status == 200, text
    return msgspec.json.decode(text), text


def assert_health_shape(health: dict, base: str) -> dict[str, dict]:
    """LiteLLM's shape, no credential or address anywhere; the entries by deployment id."""
    assert set(health) == {"healthy_endpoints", "unhealthy_endpoints", "healthy_count", "unhealthy_count"}
    assert health["healthy_count"] == len(health["healthy_endpoints"])
    assert health["unhealthy_count"] == len(health["unhealthy_endpoints"])
    entries = health["healthy_endpoints"] + health["unhealthy_endpoints"]
    text = msgspec.json.encode(health).decode()
    for secret in (KEY, "sk-nested-secret-0987", base.split("//")[1].split("/")[0]):
        assert secret not in text
    assert all({"api_key", "api_base"}.isdisjoint(e["litellm_params"]) for e in entries), entries
    return {e["model_id"]: e for e in entries}


async def test_health_needs_the_master_key(make_client, openai_fake):
    client = await make_client(health_config(openai_fake.base_url, master_key=MASTER))
    assert (await client.get("/health")).status == 401
    assert (await client.get("/health", headers={"Authorization": "Bearer sk-wrong"})).status == 401
    resp = await client.get("/health", headers={"Authorization": f"Bearer {MASTER}"})
    assert resp.status == 200 and (await resp.json())["healthy_count"] == 3


async def test_health_shows_a_cooled_down_deployment_as_unhealthy(make_client, openai_fake):
    base = openai_fake.base_url
    client = await make_client(health_config(base))
    health, _ = await get_health(client)
    assert health["unhealthy_count"] == 0 and health["healthy_count"] == 3
    openai_fake.script["second"] = ["error-500"]
    assert (await chat(client, "g"))[0] == 502  # the lowest order fails once: cooled down 30 s
    assert openai_fake.hits("second") == 1
    health, _ = await get_health(client)
    entries = assert_health_shape(health, base)
    assert [e["model_id"] for e in health["unhealthy_endpoints"]] == ["dep-second"]
    second = entries["dep-second"]
    assert second["last_error"] == "server" and 25 < second["cooldown_seconds_left"] <= 30, second
    assert entries["dep-first"]["healthy"] and entries["dep-first"]["model_name"] == "g"


async def test_health_probe_makes_one_real_call_per_deployment(make_client, openai_fake):
    base = openai_fake.base_url
    client = await make_client(health_config(base))
    openai_fake.script.update(first=["error-401"], second=["error-500"])
    health, text = await get_health(client, "?probe=true")
    await assert_error(await client.get("/health", params={"probe": "please"}), 400, param="probe")
    entries = assert_health_shape(health, base)
    assert {e["model_id"]: e["error_kind"] for e in health["unhealthy_endpoints"]} == {
        "dep-first": "auth", "dep-second": "server"}
    assert "Incorrect API key" in entries["dep-first"]["error"]  # (the key it echoes is masked)
    assert [e["model_id"] for e in health["healthy_endpoints"]] == ["dep-nested"]
    assert entries["dep-nested"]["latency_ms"] >= 0
    assert [openai_fake.hits(m) for m in ("first", "second", "nested")] == [1, 1, 1]
    assert openai_fake.last.body["max_tokens"] == 1


# ---------------------------------------------------------------- LiteLLM's documented example

LITELLM_EXAMPLE = """
router_settings:
  routing_strategy: simple-shuffle
  num_retries: 2
  allowed_fails: 3
  cooldown_time: 30
  fallbacks: [{"gpt-3.5-turbo": ["gpt-4"]}]
  context_window_fallbacks: [{"gpt-3.5-turbo": ["gpt-3.5-turbo-large"]}]
litellm_settings: {num_retries: 3, request_timeout: 10, fallbacks: [{"x": ["y"]}]}
"""
QUICK_429 = {"status": 429, "headers": {"retry-after-ms": "1"}}  # retried at once


@pytest.fixture
async def litellm_example(make_client, openai_fake):
    base = openai_fake.base_url
    config = yaml.safe_load(LITELLM_EXAMPLE)
    config["model_list"] = [without_retries_setting(member(group, upstream, base)) for group, upstream in (
        ("gpt-3.5-turbo", "turbo"), ("gpt-4", "four"), ("gpt-3.5-turbo-large", "large"), ("x", "ex"), ("y", "why"))]
    return await make_client(config)


async def test_litellms_example_settings_load_router_settings_over_litellm_settings(litellm_example):
    policy = litellm_example.app[keys.ROUTER].policy
    assert (policy.strategy, policy.num_retries, policy.allowed_fails, policy.cooldown_time, policy.timeout) == (
        "simple-shuffle", 2, 3, 30.0, 10.0)
    assert policy.fallbacks == {"gpt-3.5-turbo": ["gpt-4"]}
    assert policy.context_window_fallbacks == {"gpt-3.5-turbo": ["gpt-3.5-turbo-large"]}


@pytest.mark.parametrize(("group", "script", "status", "served", "retries", "fallbacks"), [
    ("gpt-3.5-turbo", [QUICK_429, QUICK_429, "ok"], 200, "gpt-3.5-turbo", 2, 0),  # num_retries 2, not 3
    ("gpt-3.5-turbo", [QUICK_429], 200, "gpt-4", 2, 1),  # then its fallback
    ("gpt-3.5-turbo", ["error-context"], 200, "gpt-3.5-turbo-large", 0, 1),  # context_window_fallbacks
    ("x", ["error-401"], 401, "x", 0, 0),  # litellm_settings' fallbacks are replaced by router_settings'
], ids=["retries", "fallbacks", "context-window-fallbacks", "replaced-fallbacks"])
async def test_litellms_example_settings_act(litellm_example, openai_fake, group, script, status, served, retries,
                                             fallbacks):
    upstream = {"gpt-3.5-turbo": "turbo", "x": "ex"}[group]
    openai_fake.script[upstream] = script
    resp = await litellm_example.post(CHAT, json={"model": group, "messages": user("hi")})
    assert resp.status == status, await resp.text()
    headers = resp.headers
    assert (headers["x-litellm-model-group"], headers["x-litellm-attempted-retries"],
            headers["x-litellm-attempted-fallbacks"], headers["x-litellm-max-retries"]) == (
        served, str(retries), str(fallbacks), "2")
    if status == 200:
        assert headers["x-litellm-timeout"] == "10"  # litellm_settings.request_timeout
    assert openai_fake.hits(upstream) == retries + 1
    assert openai_fake.hits("why") == 0


async def test_litellms_example_cooldown_settings_act_on_a_group_of_two(make_client, openai_fake):
    """allowed_fails: 3 and cooldown_time: 30 of the example: the fourth failure within a minute
    cools the deployment for 30 s, and the group's other deployment serves meanwhile."""
    base = openai_fake.base_url
    config = yaml.safe_load(LITELLM_EXAMPLE)
    config["model_list"] = [without_retries_setting(member("gpt-3.5-turbo", "turbo", base, order=1)),
                            without_retries_setting(member("gpt-3.5-turbo", "turbo-two", base, order=2))]
    client = await make_client(config)
    openai_fake.script["turbo"] = ["error-500"]
    for n in range(5):
        status, body, headers = await chat(client, "gpt-3.5-turbo")
        assert status == 200 and headers["x-litellm-model-id"] == "dep-turbo-two", body
        assert headers["x-litellm-attempted-retries"] == ("1" if n < 4 else "0")  # cooled after the 4th
    assert openai_fake.hits("turbo") == 4
    health, _ = await get_health(client)
    [cooled] = health["unhealthy_endpoints"]
    assert cooled["model_id"] == "dep-turbo" and 25 < cooled["cooldown_seconds_left"] <= 30, cooled


async def test_health_probe_embeds_one_word_for_an_embedding_deployment(make_client, openai_fake):
    embedder = member("e", "text-embedding-3-small", openai_fake.base_url)
    embedder["model_info"]["mode"] = "embedding"
    client = await make_client({"model_list": [embedder]})
    health, _ = await get_health(client, "?probe=true")
    assert [e["model_id"] for e in health["healthy_endpoints"]] == ["dep-text-embedding-3-small"]
    [probe] = openai_fake.received
    assert probe.path.endswith("/embeddings") and probe.body["model"] == "text-embedding-3-small"
    assert isinstance(probe.body["input"], (str, list)) and len(str(probe.body["input"]).split()) == 1

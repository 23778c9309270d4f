"""The router when upstreams fail: retries, cooldowns, fallbacks, timeouts and streams, over HTTP
against the OpenAI fake (whose log says which deployment was tried how often)."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import pytest
from fake_upstreams import refused_base_url
from openai_helpers import assert_envelope, dep, post, stream, user
from openai_spec import assert_valid

from sidecar import keys
from sidecar.routing import router as router_module

CHAT = "/v1/chat/completions"


def group(name: str, *models: str, base: str, **params: Any) -> list[dict[str, Any]]:
    """Deployments of one group, one per upstream model (ids ``dep-<model>``), router retries on."""
    entries = []
    for model in models:
        entry = dep(name, f"openai/{model}", base, **params)
        if "num_retries" not in params:
            del entry["litellm_params"]["num_retries"]
        entry["model_info"]["id"] = f"dep-{model}"
        entries.append(entry)
    return entries


def served_by(headers: Any) -> str:
    return headers["x-litellm-model-id"]


async def chat(client, model: str, **extra: Any) -> tuple[int, Any, Any]:
    return await post(client, CHAT, {"model": model, "messages": user("hi"), **extra})


def assert_router_headers(headers: Any, *, group: str, retries: int, fallbacks: int = 0) -> None:
    assert uuid.UUID(headers["x-litellm-call-id"]).version == 7
    assert headers["x-litellm-model-group"] == group
    assert headers["x-litellm-attempted-retries"] == str(retries)
    assert headers["x-litellm-attempted-fallbacks"] == str(fallbacks)
    assert int(headers["x-litellm-max-retries"]) >= 0
    assert float(headers["x-litellm-response-duration-ms"]) >= float(headers["x-litellm-overhead-duration-ms"]) >= 0


# ---------------------------------------------------------------- retries


async def test_a_failed_attempt_is_retried_at_once_on_another_deployment(make_client, openai_fake):
    openai_fake.script["bad"] = ["error-500"]
    entries = group("g", "bad", "good", base=openai_fake.base_url)
    entries[0]["litellm_params"]["order"] = 1  # tried first while it is not cooling down
    entries[1]["litellm_params"]["order"] = 2
    client = await make_client({"model_list": entries})
    for n in range(6):
        started = time.monotonic()
        status, body, headers = await chat(client, "g")
        assert status == 200, body
        assert_valid(body, "CreateChatCompletionResponse")
        assert served_by(headers) == "dep-good"
        assert time.monotonic() - started < 0.4  # no backoff: another deployment was free
        assert_router_headers(headers, group="g", retries=1 if n == 0 else 0)
    assert openai_fake.hits("bad") == 1  # then cooled down: skipped


async def test_call_ids_are_unique_and_ordered_by_time(make_client, openai_fake):
    """Version 7 UUIDs: a later call's id sorts after an earlier one's (the spend log's index
    on them then grows at its end), and the id's first 48 bits are the call's Unix milliseconds."""
    client = await make_client({"model_list": group("g", "good", base=openai_fake.base_url)})
    ids = []
    for _ in range(3):
        before = time.time()
        ids.append((await chat(client, "g"))[2]["x-litellm-call-id"])
        assert abs(int(ids[-1].replace("-", "")[:12], 16) / 1000 - before) < 1
        await asyncio.sleep(0.002)
    assert ids == sorted(ids) and len(set(ids)) == 3
    assert {uuid.UUID(i).version for i in ids} == {7}


async def test_200_concurrent_requests_with_one_dead_deployment_all_succeed(make_client, openai_fake):
    """From 16 connections at once: only requests already in flight when the first failure
    comes back can reach the dead deployment; after it, it is cooled down and skipped."""
    openai_fake.script["dead"] = ["error-500"]
    client = await make_client({"model_list": group("g", "dead", "alive", base=openai_fake.base_url)})
    slots = asyncio.Semaphore(16)

    async def one() -> tuple[int, Any, Any]:
        async with slots:
            return await chat(client, "g")

    results = await asyncio.gather(*(one() for _ in range(200)))
    assert [status for status, _, _ in results] == [200] * 200
    assert {served_by(headers) for _, _, headers in results} == {"dep-alive"}
    assert openai_fake.hits("dead") <= 16, openai_fake.hits("dead")


async def test_a_single_deployment_is_retried_with_backoff_then_fails_naming_the_attempts(make_client, openai_fake):
    client = await make_client({"model_list": group("g", "error-500", base=openai_fake.base_url, num_retries=2)})
    started = time.monotonic()
    status, body, headers = await chat(client, "g")
    assert status == 502
    error = assert_envelope(body)
    assert "after 3 attempts: g x3" in error["message"]
    assert openai_fake.hits("error-500") == 3
    assert 0.5 * 0.75 + 1.0 * 0.75 <= time.monotonic() - started < 5  # 0.5 s, then 1 s, with jitter
    assert_router_headers(headers, group="g", retries=2)  # an error answer's headers too
    assert served_by(headers) == "dep-error-500"  # (the last deployment tried)


@pytest.mark.parametrize("header", [{"retry-after": "0.3"}, {"retry-after-ms": "300"}], ids=["s", "ms"])
async def test_a_429_is_retried_after_its_retry_after(make_client, openai_fake, header):
    openai_fake.script["limited"] = [{"status": 429, "headers": header}, "ok"]
    client = await make_client({"model_list": group("g", "limited", base=openai_fake.base_url)})
    started = time.monotonic()
    status, body, headers = await chat(client, "g")
    assert status == 200, body
    assert 0.3 <= time.monotonic() - started < 3
    assert headers["x-litellm-attempted-retries"] == "1"


@pytest.mark.parametrize("models", [("limited",), ("limited", "limited-too")], ids=["one", "two"])
async def test_a_retry_after_past_60_s_ends_the_groups_retries_at_once(make_client, openai_fake, models):
    """Past 60 s, no wait: the client (or the fallbacks) get the 429 and its Retry-After now, not
    a minute later from an upstream that said it would still refuse; in a group of two, once
    both are cooling down for longer than that."""
    for model in models:
        openai_fake.script[model] = [{"status": 429, "headers": {"retry-after": "120"}}]
    client = await make_client({"model_list": group("g", *models, base=openai_fake.base_url)})
    started = time.monotonic()
    status, body, headers = await chat(client, "g")
    assert status == 429 and time.monotonic() - started < 3, body
    assert [openai_fake.hits(m) for m in models] == [1] * len(models)
    assert headers["Retry-After"] == "120"


async def test_backoff_doubles_up_to_its_cap(make_client, openai_fake, monkeypatch):
    """Backoff without Retry-After: 0.5 s doubling, capped (8 s; 0.6 s here)."""
    monkeypatch.setattr(router_module, "BACKOFF_MAX", 0.6)
    client = await make_client({"model_list": group("g", "error-500", base=openai_fake.base_url)})
    started = time.monotonic()
    status, _, headers = await chat(client, "g", num_retries=3)
    elapsed = time.monotonic() - started
    assert status == 502 and openai_fake.hits("error-500") == 4
    assert (0.5 + 0.6 + 0.6) * 0.75 <= elapsed < (0.5 + 1 + 2) * 0.75  # capped: less than 0.5, 1, 2
    assert headers["x-litellm-attempted-retries"] == "3"


@pytest.mark.parametrize("model", ["error-400", "error-404", "error-context"])
async def test_client_errors_are_not_retried(make_client, openai_fake, model):
    client = await make_client({"model_list": group("g", model, base=openai_fake.base_url)})
    status, body, headers = await chat(client, "g")
    assert status in (400, 404)
    assert_envelope(body)
    assert openai_fake.hits(model) == 1
    assert headers["x-litellm-attempted-retries"] == "0"


async def test_retry_policy_sets_retries_per_kind(make_client, openai_fake):
    client = await make_client({
        "model_list": group("bad", "error-400", base=openai_fake.base_url)
        + group("limited", "error-429", base=openai_fake.base_url),
        "router_settings": {"retry_policy": {"BadRequestErrorRetries": 1, "RateLimitErrorRetries": 0}},
    })
    assert (await chat(client, "bad"))[0] == 400
    assert openai_fake.hits("error-400") == 2
    assert (await chat(client, "limited"))[0] == 429
    assert openai_fake.hits("error-429") == 1


async def test_request_num_retries_wins(make_client, openai_fake):
    client = await make_client({"model_list": group("g", "error-500", base=openai_fake.base_url)})
    status, _, headers = await chat(client, "g", num_retries=0)
    assert status == 502 and openai_fake.hits("error-500") == 1
    assert headers["x-litellm-max-retries"] == "0"
    assert "num_retries" not in openai_fake.last.body


# ---------------------------------------------------------------- cooldowns


async def test_a_failing_deployment_cools_down_then_comes_back(make_client, openai_fake):
    openai_fake.script["flaky"] = ["error-500", "ok"]
    client = await make_client({"model_list": group("g", "flaky", "steady", base=openai_fake.base_url),
                                "router_settings": {"cooldown_time": 0.5, "routing_strategy": "least-busy"}})
    await chat(client, "g")
    while openai_fake.hits("flaky") == 0:  # least-busy picks at random between idle equals
        await chat(client, "g")
    cooled_at = time.monotonic()
    while time.monotonic() - cooled_at < 0.4:
        assert served_by((await chat(client, "g"))[2]) == "dep-steady"
    await asyncio.sleep(0.2)
    seen = {served_by((await chat(client, "g"))[2]) for _ in range(30)}
    assert seen == {"dep-flaky", "dep-steady"}


async def test_a_cooldown_is_lengthened_by_a_later_retry_after_never_shortened(make_client, openai_fake):
    openai_fake.script["a"] = [{"hold": True, "status": 429, "headers": {"retry-after": "30"}}, {"status": 500}]
    openai_fake.gates["a"] = asyncio.Event()
    entries = group("g", "a", "b", base=openai_fake.base_url)
    entries[0]["litellm_params"]["order"] = 1
    entries[1]["litellm_params"]["order"] = 2
    client = await make_client({"model_list": entries, "router_settings": {"cooldown_time": 1, "allowed_fails": 0,
                                                                           "num_retries": 0}})
    held = asyncio.ensure_future(chat(client, "g"))
    while openai_fake.hits("a") < 1:
        await asyncio.sleep(0.01)
    assert (await chat(client, "g"))[0] == 502  # the 500: a 1 s cooldown
    openai_fake.gates["a"].set()
    assert (await held)[0] == 429  # then the held request's 429 with Retry-After: 30
    health = await (await client.get("/health")).json()
    (a,) = [e for e in health["unhealthy_endpoints"] if e["model_id"] == "dep-a"]
    assert a["cooldown_seconds_left"] > 25 and a["last_error"] == "rate_limit"
    assert not client.server.app[keys.ROUTER].state.cool("dep-a", time.monotonic() + 1)  # never shortened
    await asyncio.sleep(1.1)
    assert served_by((await chat(client, "g"))[2]) == "dep-b"


@pytest.mark.parametrize(("settings", "fails_before_cooling"), [
    ({"allowed_fails": 2}, 3),
    ({"allowed_fails_policy": {"InternalServerErrorAllowedFails": 0}}, 1),
    ({"allowed_fails": 0, "disable_cooldowns": True}, None),
])
async def test_allowed_fails(make_client, openai_fake, settings, fails_before_cooling):
    entries = group("g", "error-500", "ok-one", base=openai_fake.base_url, num_retries=0)
    entries[0]["litellm_params"]["order"] = 1
    entries[1]["litellm_params"]["order"] = 2
    client = await make_client({"model_list": entries, "router_settings": settings})
    for _ in range(4):
        await chat(client, "g")
    expected = 4 if fails_before_cooling is None else fails_before_cooling
    assert openai_fake.hits("error-500") == expected


# ---------------------------------------------------------------- fallbacks


async def test_fallbacks_after_the_groups_retries(make_client, openai_fake):
    client = await make_client({
        "model_list": group("main", "error-503", base=openai_fake.base_url, num_retries=0)
        + group("backup", "good", base=openai_fake.base_url),
        "router_settings": {"fallbacks": [{"main": ["missing", "backup"]}]},
    })
    status, body, headers = await chat(client, "main")
    assert status == 200, body
    assert served_by(headers) == "dep-good"
    assert_router_headers(headers, group="backup", retries=0, fallbacks=2)
    assert openai_fake.last.body["model"] == "good"


@pytest.mark.parametrize("target", ["backup", "dep-good"], ids=["group", "deployment-id"])
async def test_fallbacks_in_the_body(make_client, openai_fake, target):
    client = await make_client({"model_list": group("main", "error-500", base=openai_fake.base_url, num_retries=0)
                                + group("backup", "good", base=openai_fake.base_url)})
    status, _, headers = await chat(client, "main", fallbacks=[target])
    assert status == 200 and served_by(headers) == "dep-good"
    assert "fallbacks" not in openai_fake.last.body
    status, body, _ = await chat(client, "main", fallbacks=["nowhere"])
    assert status == 400 and assert_envelope(body)["param"] == "fallbacks" and "nowhere" in body["error"]["message"]


async def test_max_fallbacks_bounds_the_fallbacks_tried(make_client, openai_fake):
    base = openai_fake.base_url
    client = await make_client({
        "model_list": group("main", "error-500", base=base, num_retries=0) + group("b1", "error-503", base=base)
        + group("b2", "error-429", base=base) + group("b3", "good", base=base),
        "router_settings": {"fallbacks": [{"main": ["b1", "b2", "b3"]}], "max_fallbacks": 2, "num_retries": 0},
    })
    status, body, headers = await chat(client, "main")
    assert status == 429, body  # b2's: the last tried
    assert headers["x-litellm-attempted-fallbacks"] == "2"
    assert openai_fake.hits("good") == 0


async def test_a_failed_fallback_attempt_cools_its_deployment(make_client, openai_fake):
    base = openai_fake.base_url
    client = await make_client({
        "model_list": group("main", "error-500", base=base, num_retries=0)
        + group("backup", "bad", base=base, order=1) + group("backup", "good", base=base, order=2),
        "router_settings": {"fallbacks": [{"main": ["backup"]}], "allowed_fails": 0},
    })
    openai_fake.script["bad"] = ["error-500"]
    for _ in range(2):
        status, body, headers = await chat(client, "main")
        assert status == 200 and served_by(headers) == "dep-good", body
    assert openai_fake.hits("bad") == 1  # its failure during a fallback cooled it down


async def test_a_deployments_cooldown_time_wins_over_retry_after(make_client, openai_fake):
    base = openai_fake.base_url
    client = await make_client({"model_list": group("g", "limited", base=base, order=1, cooldown_time=0.3)
                                + group("g", "good", base=base, order=2)})
    openai_fake.script["limited"] = [{"status": 429, "headers": {"retry-after": "30"}}, "ok"]
    status, body, headers = await chat(client, "g")
    assert status == 200 and served_by(headers) == "dep-good", body
    await asyncio.sleep(0.4)  # the deployment's 0.3 s, not the upstream's 30 s
    status, body, headers = await chat(client, "g")
    assert status == 200 and served_by(headers) == "dep-limited", body


async def test_disable_fallbacks_and_default_fallbacks(make_client, openai_fake):
    client = await make_client({
        "model_list": group("main", "error-500", base=openai_fake.base_url, num_retries=0)
        + group("backup", "good", base=openai_fake.base_url),
        "router_settings": {"default_fallbacks": ["backup"]},
    })
    assert served_by((await chat(client, "main"))[2]) == "dep-good"
    status, body, _ = await chat(client, "main", disable_fallbacks=True)
    assert status == 502 and "after" not in assert_envelope(body)["message"]


@pytest.mark.parametrize(("model", "key"), [("error-context", "context_window_fallbacks"),
                                            ("error-policy", "content_policy_fallbacks")])
async def test_kind_specific_fallbacks(make_client, openai_fake, model, key):
    entries = group("small", model, base=openai_fake.base_url) + group("big", "good", base=openai_fake.base_url)
    client = await make_client({"model_list": entries, "router_settings": {key: [{"small": ["big"]}]}})
    status, _, headers = await chat(client, "small")
    assert status == 200 and served_by(headers) == "dep-good"
    # the generic list does not serve these kinds: the client sees the upstream's 400
    client = await make_client({"model_list": entries, "router_settings": {"fallbacks": [{"small": ["big"]}]}})
    status, body, _ = await chat(client, "small")
    assert status == 400 and assert_envelope(body)["code"] in ("context_length_exceeded", "content_policy_violation")


@pytest.mark.parametrize(("flag", "kind_list"), [
    ("mock_testing_fallbacks", "fallbacks"),
    ("mock_testing_context_window_fallbacks", "context_window_fallbacks"),
    ("mock_testing_content_policy_fallbacks", "content_policy_fallbacks"),
])
async def test_mock_testing_fallbacks(make_client, openai_fake, flag, kind_list):
    client = await make_client({
        "model_list": group("main", "main-model", base=openai_fake.base_url)
        + group("backup", "good", base=openai_fake.base_url),
        "router_settings": {kind_list: [{"main": ["backup"]}]},
    })
    status, _, headers = await chat(client, "main", **{flag: True})
    assert status == 200 and served_by(headers) == "dep-good"
    assert openai_fake.hits("main-model") == 0


# ---------------------------------------------------------------- timeouts


async def test_a_deployment_timeout_is_a_retried_timeout(make_client, openai_fake):
    entries = group("g", "slow", base=openai_fake.base_url, timeout=0.2, num_retries=1)
    client = await make_client({"model_list": entries, "router_settings": {"timeout": 30}})
    started = time.monotonic()
    status, body, headers = await chat(client, "g")
    assert status == 504 and assert_envelope(body)["type"] == "timeout_error"
    assert time.monotonic() - started < 3  # the deployment's 0.2 s twice (and backoff), not the router's 30 s
    assert openai_fake.hits("slow") == 2


async def test_a_timeout_cools_the_deployment_down(make_client, openai_fake):
    entries = group("g", "slow", base=openai_fake.base_url, timeout=0.2, order=1) + group(
        "g", "good", base=openai_fake.base_url, order=2)
    client = await make_client({"model_list": entries, "router_settings": {"allowed_fails": 0}})
    for _ in range(2):
        status, body, headers = await chat(client, "g")
        assert status == 200 and served_by(headers) == "dep-good", body
    assert openai_fake.hits("slow") == 1  # cooling down after its timeout: not tried again


@pytest.mark.parametrize(("params", "router"), [
    ({"stream_timeout": 0.2, "timeout": 30}, {}),  # the deployment's stream_timeout, not its timeout
    ({"stream_timeout": 0.2}, {"stream_timeout": 30, "timeout": 30}),  # the deployment's over the router's
    ({}, {"stream_timeout": 0.2, "timeout": 30}),  # the router's stream_timeout over its timeout
], ids=["deployment-stream-timeout", "over-router", "router-stream-timeout"])
async def test_stream_timeout_bounds_a_stream_before_its_first_chunk(make_client, openai_fake, params, router):
    client = await make_client({"model_list": group("g", "slow", base=openai_fake.base_url, num_retries=0,
                                                    **params), "router_settings": router})
    started = time.monotonic()
    resp = await client.post(CHAT, json={"model": "g", "messages": user("hi"), "stream": True})
    assert resp.status == 504, await resp.text()
    assert time.monotonic() - started < 3
    assert assert_envelope(await resp.json())["type"] == "timeout_error"


@pytest.mark.parametrize("how", ["body", "header"])
async def test_the_clients_timeout_bounds_retries_and_fallbacks(make_client, openai_fake, how):
    openai_fake.script["slow-too"] = ["slow"]
    client = await make_client({
        "model_list": group("main", "slow", base=openai_fake.base_url, num_retries=3)
        + group("backup", "slow-too", base=openai_fake.base_url),
        "router_settings": {"fallbacks": [{"main": ["backup"]}], "timeout": 30},
    })
    started = time.monotonic()
    body = {"model": "main", "messages": user("hi")}
    if how == "body":
        body["timeout"] = 0.6
        resp = await client.post(CHAT, json=body)
    else:
        resp = await client.post(CHAT, json=body, headers={"x-litellm-timeout": "0.6"})
    elapsed = time.monotonic() - started
    assert resp.status == 408, await resp.text()
    assert elapsed < 0.6 + 0.5, elapsed
    assert resp.headers["x-litellm-timeout"] == "0.6"
    assert_router_headers(resp.headers, group="main", retries=int(resp.headers["x-litellm-attempted-retries"]),
                          fallbacks=int(resp.headers["x-litellm-attempted-fallbacks"]))
    assert "timeout" not in openai_fake.last.body


async def test_the_timeout_that_applied_is_a_header(make_client, openai_fake):
    client = await make_client({"model_list": group("g", "good", base=openai_fake.base_url),
                                "router_settings": {"timeout": 42}})
    assert (await chat(client, "g"))[2]["x-litellm-timeout"] == "42"
    assert (await chat(client, "g", timeout=7))[2]["x-litellm-timeout"] == "7"


# ---------------------------------------------------------------- streams


@pytest.mark.parametrize("failure", ["error-first", "error-500", "refused", "cut-first"])
async def test_a_stream_failing_before_its_first_chunk_is_retried_elsewhere(make_client, openai_fake, failure):
    first = group("g", failure, base=openai_fake.base_url)
    if failure == "refused":
        first[0]["litellm_params"]["api_base"] = refused_base_url()
    first[0]["litellm_params"]["order"] = 1
    client = await make_client({"model_list": first + group("g", "good", base=openai_fake.base_url, order=2)})
    resp, events = await stream(client, {"model": "g", "messages": user("one two")})
    assert resp.headers["x-litellm-model-id"] == "dep-good"
    assert resp.headers["x-litellm-attempted-retries"] == "1"
    assert uuid.UUID(resp.headers["x-litellm-call-id"]).version == 7
    for event in events:
        assert_valid(event, "CreateChatCompletionStreamResponse")


async def test_a_stream_cut_after_its_first_chunk_is_not_retried(make_client, openai_fake):
    entries = group("g", "cut", "good", base=openai_fake.base_url)
    entries[0]["litellm_params"]["order"] = 1
    entries[1]["litellm_params"]["order"] = 2
    client = await make_client({"model_list": entries})
    resp, events = await stream(client, {"model": "g", "messages": user("one two three four")})
    assert resp.headers["x-litellm-model-id"] == "dep-cut"
    *chunks, last = events
    assert chunks and assert_envelope(last)["code"] == "upstream_disconnected"
    assert openai_fake.hits("cut") == 1 and openai_fake.hits("good") == 0


async def test_a_stream_falls_back_when_its_group_is_exhausted(make_client, openai_fake):
    client = await make_client({
        "model_list": group("main", "error-first", base=openai_fake.base_url, num_retries=0)
        + group("backup", "good", base=openai_fake.base_url),
        "router_settings": {"fallbacks": [{"main": ["backup"]}]},
    })
    resp, events = await stream(client, {"model": "main", "messages": user("hello there")})
    assert resp.headers["x-litellm-attempted-fallbacks"] == "1"
    assert "".join(e["choices"][0]["delta"].get("content") or "" for e in events if e["choices"])


async def test_router_keys_never_go_upstream(make_client, openai_fake):
    client = await make_client({"model_list": group("g", "good", base=openai_fake.base_url)})
    status, _, _ = await chat(client, "g", num_retries=1, timeout=30, fallbacks=[], disable_fallbacks=False)
    assert status == 200
    assert not {"num_retries", "timeout", "fallbacks", "disable_fallbacks"} & set(openai_fake.last.body)


@pytest.mark.parametrize(("key", "value"), [("num_retries", -1), ("timeout", 0), ("fallbacks", "backup"),
                                            ("disable_fallbacks", "yes")])
async def test_bad_router_keys_are_400_naming_them(make_client, openai_fake, key, value):
    client = await make_client({"model_list": group("g", "good", base=openai_fake.base_url)})
    status, body, _ = await chat(client, "g", **{key: value})
    assert status == 400 and assert_envelope(body)["param"] == key

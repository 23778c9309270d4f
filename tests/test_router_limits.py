"""The router's limits (rpm, tpm, max_parallel_requests) and routing strategies, over HTTP.

Deployments of one group point at distinct upstream model names on one fake OpenAI, so
``fake.hits(name)`` and the ``x-litellm-model-id`` header say which deployment served.
"""

from __future__ import annotations

import asyncio
import collections
import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from conftest import MOCK_MODELS
from gateway_helpers import Server, until, write_config
from openai_helpers import assert_envelope, dep, post, user
from openai_spec import assert_valid

CHAT = "/v1/chat/completions"


def member(group: str, upstream: str, base: str, **params) -> dict:
    """A deployment of ``group`` (several may share it), id ``dep-<upstream>``, upstream ``openai/<upstream>``."""
    entry = dep(group, f"openai/{upstream}", base, **params)
    entry["model_info"] = {"id": f"dep-{upstream}"}
    return entry


async def chat(client, model: str = "g", text: str = "hi", **extra) -> tuple[int, dict, dict]:
    return await post(client, CHAT, {"model": model, "messages": user(text), **extra})


async def served_by(client, model: str = "g", text: str = "hi") -> str:
    """The id of the deployment that answered a successful chat (checked against OpenAI's spec)."""
    status, body, headers = await chat(client, model, text)
    assert status == 200, body
    assert_valid(body, "CreateChatCompletionResponse")
    return headers["x-litellm-model-id"]


def assert_no_deployment_free(status: int, body: dict, headers, group: str) -> None:
    assert status == 429, body
    err = assert_envelope(body)
    assert err["code"] == "no_deployments_available" and repr(group) in err["message"], err
    assert 1 <= int(headers["Retry-After"]) <= 60, headers


def held(fake, upstream: str) -> asyncio.Event:
    """Requests for ``upstream`` wait at the fake until the returned gate is set."""
    fake.script[upstream] = ["hold"]
    gate = fake.gates[upstream] = asyncio.Event()
    return gate


# ---------------------------------------------------------------- limits


@pytest.mark.parametrize("where", ["litellm_params", "entry", "model_info"])
async def test_rpm_allows_that_many_requests_a_minute_then_429_with_retry_after(make_client, openai_fake, where):
    entry = member("g", "a", openai_fake.base_url)
    {"litellm_params": entry["litellm_params"], "entry": entry, "model_info": entry["model_info"]}[where]["rpm"] = 2
    client = await make_client({"model_list": [entry]})
    remaining = []
    for _ in range(2):
        status, body, headers = await chat(client)
        assert status == 200, body
        assert headers["x-ratelimit-limit-requests"] == "2"
        remaining.append(headers["x-ratelimit-remaining-requests"])
    assert remaining == ["1", "0"]
    assert_no_deployment_free(*await chat(client), group="g")
    assert openai_fake.hits("a") == 2


@pytest.mark.parametrize("where", ["litellm_params", "entry", "model_info"])
async def test_tpm_blocks_once_the_minutes_tokens_are_spent(make_client, openai_fake, where):
    # each answer uses 13 tokens (9 prompt + "Hello from OpenAI. hi"); a request is estimated at 4
    entry = member("g", "a", openai_fake.base_url)
    {"litellm_params": entry["litellm_params"], "entry": entry, "model_info": entry["model_info"]}[where]["tpm"] = 25
    client = await make_client({"model_list": [entry]})
    left = []
    for _ in range(2):
        status, body, headers = await chat(client)
        assert status == 200, body
        assert headers["x-ratelimit-limit-tokens"] == "25"
        left.append(headers["x-ratelimit-remaining-tokens"])
    assert left == ["12", "0"]  # what is left once this answer's tokens are counted
    assert_no_deployment_free(*await chat(client), group="g")  # 26 spent: another 4 would pass 25
    assert openai_fake.hits("a") == 2


@pytest.mark.parametrize(("limits", "expected"), [
    ({"rpm": 5}, {"x-ratelimit-limit-requests": "5", "x-ratelimit-remaining-requests": "4"}),
    ({"tpm": 1000}, {"x-ratelimit-limit-tokens": "1000", "x-ratelimit-remaining-tokens": "987"}),
    ({"rpm": 5, "tpm": 1000}, {"x-ratelimit-limit-requests": "5", "x-ratelimit-remaining-requests": "4",
                               "x-ratelimit-limit-tokens": "1000", "x-ratelimit-remaining-tokens": "987"}),
    ({}, {}),
])
async def test_rate_limit_headers_come_with_a_deployments_limits(make_client, openai_fake, limits, expected):
    client = await make_client({"model_list": [member("g", "a", openai_fake.base_url, **limits)]})
    status, body, headers = await chat(client)
    assert status == 200, body
    assert {k: v for k, v in headers.items() if k.startswith("x-ratelimit-")} == expected


@pytest.mark.parametrize("where", ["deployment", "router-default"])
@pytest.mark.parametrize(("others", "expected"), [([("b", {})], "dep-b"), ([], None)],
                         ids=["another-deployment-serves", "none-left-429"])
async def test_max_parallel_requests_sends_a_concurrent_request_elsewhere(make_client, openai_fake, others, expected,
                                                                          where):
    base = openai_fake.base_url
    limit = {"max_parallel_requests": 1} if where == "deployment" else {}
    client = await make_client({"model_list": [
        member("g", "a", base, order=1, **limit),
        *(member("g", name, base, order=2, **params) for name, params in others)],
        "router_settings": {} if limit else {"default_max_parallel_requests": 1}})
    gate = held(openai_fake, "a")
    first = asyncio.ensure_future(chat(client))
    await until(lambda: openai_fake.hits("a") == 1, what="the first request to reach deployment a")
    status, body, headers = await chat(client)
    if expected is None:
        assert_no_deployment_free(status, body, headers, group="g")
    else:
        assert status == 200 and headers["x-litellm-model-id"] == expected, body
    gate.set()
    status, body, headers = await first
    assert status == 200 and headers["x-litellm-model-id"] == "dep-a", body
    assert openai_fake.hits("a") == 1


# ---------------------------------------------------------------- limits across `--workers 2`


def fresh_call(server: Server) -> tuple[int, dict, dict]:
    """One chat on a fresh connection (the kernel gives each to either worker)."""
    req = urllib.request.Request(server.url + CHAT, method="POST", headers={"Content-Type": "application/json"},
                                 data=json.dumps({"model": "limited", "messages": user("hi")}).encode())
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read()), dict(resp.headers)
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read()), dict(err.headers)


def worker_pids(server: Server) -> list[int]:
    pid = server.proc.pid
    return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


async def test_rpm_holds_for_the_whole_sidecar_across_workers(tmp_path):
    config = write_config(tmp_path / "limits.yaml", {
        "model_list": [*MOCK_MODELS, {"model_name": "limited", "litellm_params": {"model": "mock/mock-gpt", "rpm": 2}}],
        "general_settings": {"database_url": f"sqlite:///{tmp_path / 'shared.db'}"},
    })
    with Server(config, tmp_path, extra_args=("--workers", "2")) as server:
        await asyncio.to_thread(server.wait_ready)
        await until(lambda: len(worker_pids(server)) == 2, timeout=20, what="both workers to be forked")
        answers = [await asyncio.to_thread(fresh_call, server) for _ in range(10)]
    statuses = [status for status, _, _ in answers]
    assert statuses == [200, 200] + [429] * 8, answers  # not 2 a worker
    for status, body, headers in answers[2:]:
        assert_no_deployment_free(status, body, headers, group="limited")


# ---------------------------------------------------------------- strategies


async def test_simple_shuffle_follows_the_weights(make_client, openai_fake):
    base = openai_fake.base_url
    client = await make_client({"model_list": [member("g", "heavy", base, weight=9), member("g", "light", base, weight=1),
                                               member("g", "never", base, weight=0)]})
    counts = collections.Counter()
    for _ in range(20):
        ids = await asyncio.gather(*(served_by(client) for _ in range(10)))
        counts.update(ids)
    # 200 draws at 0.9 / 0.1: the light one's count is 20 +- 4.2; the bounds are > 5 sigma away
    assert counts["dep-never"] == 0, counts
    assert 1 <= counts["dep-light"] <= 50 and counts["dep-heavy"] >= 150, counts


@pytest.mark.parametrize("first", ["at-its-limit", "cooling-down"])
async def test_order_the_lowest_serves_while_it_is_free_then_the_next(make_client, openai_fake, first):
    base = openai_fake.base_url
    if first == "at-its-limit":
        low = member("g", "low", base, order=1, rpm=3)
    else:  # its first request is a 429 (retry-after 20 s): it cools down, and the retry goes to the next order
        low = member("g", "low", base, order=1, num_retries=1)
        openai_fake.script["low"] = [{"status": 429}, "ok"]
    client = await make_client({"model_list": [member("g", "high", base, order=2, weight=100), low,
                                               member("g", "higher", base, order=3)]})
    served = [await served_by(client) for _ in range(6)]
    if first == "at-its-limit":
        assert served == ["dep-low"] * 3 + ["dep-high"] * 3
    else:
        assert served == ["dep-high"] * 6 and openai_fake.hits("low") == 1
    assert openai_fake.hits("higher") == 0


async def test_least_busy_sends_new_requests_to_the_idle_deployment(make_client, openai_fake):
    base = openai_fake.base_url
    client = await make_client({"model_list": [member("g", "a", base), member("g", "b", base)],
                                "router_settings": {"routing_strategy": "least-busy"}})
    gates = {name: held(openai_fake, name) for name in ("a", "b")}
    first = asyncio.ensure_future(chat(client))
    await until(lambda: openai_fake.hits("a") + openai_fake.hits("b") == 1, what="the first request upstream")
    busy = "a" if openai_fake.hits("a") else "b"
    idle = "b" if busy == "a" else "a"
    del openai_fake.script[idle]  # the idle one answers at once
    assert [await served_by(client) for _ in range(5)] == [f"dep-{idle}"] * 5
    gates[busy].set()
    status, _, headers = await first
    assert status == 200 and headers["x-litellm-model-id"] == f"dep-{busy}"


async def test_latency_based_routing_prefers_the_fast_deployment_after_warm_up(make_client, openai_fake):
    base = openai_fake.base_url
    client = await make_client({"model_list": [member("g", "slow-one", base), member("g", "fast-one", base)],
                                "router_settings": {"routing_strategy": "latency-based-routing"}})
    gate = held(openai_fake, "slow-one")

    async def answer_slowly() -> None:  # the slow one takes 0.3 s at least; the fast one answers at once
        await until(lambda: openai_fake.hits("slow-one") == 1, what="the slow deployment's warm-up request")
        await asyncio.sleep(0.3)
        gate.set()

    releasing = asyncio.ensure_future(answer_slowly())
    warm_up = {await served_by(client) for _ in range(2)}  # a deployment with no sample is tried first
    await releasing
    assert warm_up == {"dep-slow-one", "dep-fast-one"}
    assert [await served_by(client) for _ in range(6)] == ["dep-fast-one"] * 6
    assert openai_fake.hits("slow-one") == 1


async def test_usage_based_routing_picks_the_fewest_tokens_this_minute(make_client, openai_fake):
    base = openai_fake.base_url
    client = await make_client({"model_list": [member("g", "a", base), member("g", "b", base)],
                                "router_settings": {"routing_strategy": "usage-based-routing-v2"}})
    # a long answer: 9 + 53 tokens for one deployment; each short one after it costs 13
    first = await served_by(client, text=" ".join(["word"] * 50))
    other = "dep-b" if first == "dep-a" else "dep-a"
    assert [await served_by(client) for _ in range(4)] == [other] * 4  # 13, 26, 39, 52 < 62
    assert await served_by(client) == other  # 52 < 62 still; now 65
    assert await served_by(client) == first


async def test_cost_based_routing_picks_the_cheapest(make_client, openai_fake):
    base = openai_fake.base_url

    def priced(name: str, inp: float | None, out: float | None) -> dict:
        entry = member("g", name, base)
        if inp is not None:
            entry["model_info"].update(input_cost_per_token=inp, output_cost_per_token=out)
        return entry

    client = await make_client({"model_list": [
        priced("pricey", 1e-5, 3e-5), priced("cheap-in", 1e-7, 5e-5), priced("cheapest", 2e-6, 4e-6),
        priced("unpriced", None, None)],  # an unknown price counts as $1 a token
        "router_settings": {"routing_strategy": "cost-based-routing"}})
    assert {await served_by(client) for _ in range(5)} == {"dep-cheapest"}


LONG = "word " * 400  # ~500 estimated input tokens


async def test_pre_call_checks_skip_deployments_whose_context_is_too_small(make_client, openai_fake):
    base = openai_fake.base_url
    small = member("g", "small", base)
    small["model_info"]["max_input_tokens"] = 100
    big = member("g", "big", base)
    big["model_info"]["max_input_tokens"] = 100_000
    tiny = member("tiny", "tiny", base)
    tiny["model_info"]["max_input_tokens"] = 100
    large = member("large", "large", base)
    client = await make_client({"model_list": [small, big, tiny, large], "router_settings": {
        "enable_pre_call_checks": True, "context_window_fallbacks": [{"tiny": ["large"]}]}})
    assert {await served_by(client, text=LONG) for _ in range(5)} == {"dep-big"}
    assert openai_fake.hits("small") == 0
    # no deployment of "tiny" fits: a context-window error, which its context_window_fallbacks serve
    status, body, headers = await chat(client, "tiny", LONG)
    assert status == 200, body
    assert (headers["x-litellm-model-group"], headers["x-litellm-attempted-fallbacks"]) == ("large", "1")
    assert openai_fake.hits("tiny") == 0


async def test_pre_call_checks_with_nothing_that_fits_and_no_fallback_is_a_400(make_client, openai_fake):
    tiny = member("tiny", "tiny", openai_fake.base_url)
    tiny["model_info"]["max_input_tokens"] = 100
    client = await make_client({"model_list": [tiny], "router_settings": {"enable_pre_call_checks": True}})
    status, body, _ = await chat(client, "tiny", LONG)
    assert status == 400, body
    err = assert_envelope(body)
    assert (err["code"], err["param"]) == ("context_length_exceeded", "messages") and "'tiny'" in err["message"]
    assert openai_fake.hits("tiny") == 0


ALIASES = {"shown": "g", "secret": {"model": "g", "hidden": True}, "long-form": {"model": "g"}}


@pytest.mark.parametrize("alias", ["shown", "secret", "long-form"])
async def test_a_model_group_alias_serves_its_group(make_client, openai_fake, alias):
    client = await make_client({"model_list": [member("g", "a", openai_fake.base_url)],
                                "router_settings": {"model_group_alias": ALIASES}})
    status, body, headers = await chat(client, alias)
    assert status == 200, body
    assert_valid(body, "CreateChatCompletionResponse")
    assert (headers["x-litellm-model-group"], headers["x-litellm-model-id"]) == ("g", "dep-a")


async def test_models_lists_aliases_that_are_not_hidden(make_client, openai_fake):
    client = await make_client({"model_list": [member("g", "a", openai_fake.base_url),
                                               {"model_name": "mock-gpt", "litellm_params": {"model": "mock/mock-gpt"}}],
                                "router_settings": {"model_group_alias": {
                                    **ALIASES, "mocked": "mock-gpt", "mock-gpt": "g", "dangling": "nowhere"}}})
    for prefix in ("/v1", ""):
        resp = await client.get(f"{prefix}/models")
        listed = await resp.json()
        assert_valid(listed, "ListModelsResponse")
        owners = {card["id"]: card["owned_by"] for card in listed["data"]}
        # a hidden alias is never listed; a name that is a group is the group; an alias of nothing is not listed
        assert owners == {"g": "openai", "mock-gpt": "mock", "shown": "openai", "long-form": "openai",
                          "mocked": "mock"}
    resp = await client.get("/v1/models/shown")
    assert resp.status == 200 and (await resp.json())["owned_by"] == "openai"
    assert (await client.get("/v1/models/secret")).status == 404


# ---------------------------------------------------------------- the latency window (no HTTP: the rules alone)


def latency_setup(**args):
    """A latency-based policy from ``routing_strategy_args``, a fresh state, two routes."""
    from sidecar.config import RouterSettings
    from sidecar.routing.policy import RouteInfo, RouterPolicy
    from sidecar.routing.state import Limits, RouterState

    policy = RouterPolicy.from_settings(RouterSettings(routing_strategy="latency-based-routing",
                                                       routing_strategy_args=args))
    route = RouteInfo(Limits(), None, 0, None, None, None, None, None, 0.0)
    return policy, RouterState(samples=policy.samples), [(Named("a"), route), (Named("b"), route)]


class Named:
    """A deployment as the strategies see it: its id."""

    def __init__(self, id: str) -> None:
        self.id = id


def chosen(policy, state, free, now: float, times: int = 200) -> set[str]:
    from sidecar.routing.choose import pick

    return {pick(free, state, policy, now)[0].id for _ in range(times)}


def test_latency_samples_are_a_sliding_window():
    """The newest max_latency_list_size samples count (LiteLLM keeps its first ones forever)."""
    policy, state, free = latency_setup(max_latency_list_size=3)
    for t in range(3):
        state.sample("a", t, 5.0)  # a was slow at first...
        state.sample("b", t, 1.0)
    assert chosen(policy, state, free, 3.0) == {"b"}
    for t in range(3, 6):
        state.sample("a", t, 0.5)  # ...then fast: its three slow samples have left the window
    assert state.latency("a", 6.0, policy.ttl) == 0.5
    assert chosen(policy, state, free, 6.0) == {"a"}


def test_latency_samples_older_than_the_ttl_do_not_count():
    policy, state, free = latency_setup(ttl=10)
    state.sample("a", 0.0, 0.1)
    state.sample("b", 0.0, 1.0)
    assert chosen(policy, state, free, 5.0) == {"a"}
    state.sample("b", 20.0, 1.0)
    assert state.latency("a", 20.0, policy.ttl) is None
    assert chosen(policy, state, free, 20.0) == {"a"}  # no fresh sample: tried first (it may be fastest)
    state.sample("a", 21.0, 2.0)
    assert chosen(policy, state, free, 21.0) == {"b"}


def test_lowest_latency_buffer_picks_among_the_near_fastest():
    policy, state, free = latency_setup(lowest_latency_buffer=0.5)
    state.sample("a", 0.0, 1.0)
    state.sample("b", 0.0, 1.4)  # within 1.0 x 1.5
    assert chosen(policy, state, free, 1.0) == {"a", "b"}  # (random: 200 picks miss one 1 time in 2**199)
    state.sample("b", 0.5, 2.6)  # b's mean 2.0: past the buffer
    assert chosen(policy, state, free, 1.0) == {"a"}

"""The conformance suite: a plugin's contract with the gateway, checked through the gateway.

Subclass :class:`ProviderConformance` in a test module (its name must start with ``Test``), point
it at your plugin and a fake of your upstream, and pytest runs every check on it::

    class TestParrotConformance(ProviderConformance):
        plugin = sidecar_parrot                      # registered alone (None: the installed plugins)
        chat_scenario = "parrot-1"                   # a model the fake answers normally
        embedding_scenario = "parrot-embed"
        cut_scenario = "cut"                         # a model whose stream the fake cuts mid-way
        error_scenarios = {"error-429": "rate_limit", "error-401": "auth",
                           "error-context": "context_window"}

        @pytest.fixture
        async def upstream(self, aiohttp_server):
            return await start(aiohttp_server, ParrotFake(api_key=KEY))

        def litellm_params(self, upstream, scenario):
            return {"model": f"parrot/{scenario}", "api_base": upstream.root_url, "api_key": KEY}

A scenario is a name your fake answers in one way (most fakes pick a behaviour by the upstream
model name); the gateway gets one deployment per scenario, named after it, with the
``litellm_params`` you return for it (and ``num_retries: 0``, so each failure is seen once).

The checks: declared capabilities match the methods implemented; ``supported_openai_params``
are OpenAI request params; plain, streamed and tool-call chat answers (and embeddings) validate
against OpenAI's spec; every stream ends with a finish reason and ``data: [DONE]``, and one the
upstream cuts ends with an error event and ``data: [DONE]``; each error scenario answers its
kind's status in OpenAI's envelope (a stream too), the router records that kind (``GET /health``'s
``last_error``), a 429 carries ``Retry-After``; no credential appears in any error.
"""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pytest
from aiohttp.test_utils import TestClient

from sidecar import keys
from sidecar.errors import KINDS
from sidecar.provider import CAPABILITY_METHODS, Provider, supported_params
from sidecar.registry import Deployment
from sidecar.secrets import is_secret_param
from sidecar.testing.answers import assert_envelope, assert_valid_stream, parse_sse, tool_calls_of
from sidecar.testing.spec import REQUEST_SCHEMAS, assert_valid, request_params

__all__ = ["LITELLM_CLIENT_PARAMS", "STATUS_FOR_KIND", "ErrorCase", "ProviderConformance", "WEATHER_TOOL"]

STATUS_FOR_KIND = {
    "bad_request": 400, "auth": 401, "permission": 403, "not_found": 404, "rate_limit": 429,
    "timeout": 504, "server": 502, "context_window": 400, "content_policy": 400,
}
"""The status a client gets for a failure of each kind (:class:`sidecar.ProviderError`)."""
LITELLM_CLIENT_PARAMS = frozenset({"extra_headers", "max_retries"})
"""Options of LiteLLM's client that its ``get_supported_openai_params`` lists among OpenAI's params
for some providers (OpenAI, Anthropic...): a plugin keeping ``/model_group/info`` as LiteLLM shows
it may list them (``extra_params = LITELLM_CLIENT_PARAMS``)."""
WAIT = 10.0
"""Seconds any one exchange with the gateway may take."""
MASTER_KEY = "sk-conformance-master-key"
WEATHER_TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather in a city",
    "parameters": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]}}}
PROMPT = "Say hi"


@dataclass(frozen=True)
class ErrorCase:
    """What an error scenario must give: its ``kind`` (one of :data:`sidecar.KINDS`) and the
    client's ``status`` (by default the kind's, :data:`STATUS_FOR_KIND`); ``body``: extra request
    fields that make the failure (when the request, not the fake, causes it). A ``rate_limit``
    answer carries ``Retry-After``: ``retry_after`` is its value when the upstream gave one (it
    must reach the client as it is), True for any, False when the upstream's API gives no retry
    time at all (say so in your test)."""

    kind: str
    status: int | None = None
    body: Mapping[str, Any] = field(default_factory=dict)
    retry_after: str | bool = True

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown error kind {self.kind!r}; expected one of {', '.join(KINDS)}")

    @property
    def expected_status(self) -> int:
        return self.status or STATUS_FOR_KIND[self.kind]


@dataclass
class Gateway:
    """The gateway serving one deployment per scenario, the fake behind it, and how to ask them."""

    client: TestClient
    upstream: Any
    credentials: tuple[str, ...]
    headers: dict[str, str]

    def deployment(self, scenario: str) -> Deployment:
        return next(dep for dep in self.client.app[keys.REGISTRY] if dep.model_name == scenario)

    async def post(self, path: str, body: dict[str, Any]) -> tuple[int, Any, bytes]:
        """POST ``body``: the status, the headers and the whole body (bounded by :data:`WAIT`)."""
        async def go() -> tuple[int, Any, bytes]:
            resp = await self.client.post(path, json=body, headers=self.headers)
            return resp.status, resp.headers, await resp.read()
        return await asyncio.wait_for(go(), WAIT)

    async def chat(self, scenario: str, stream: bool = False, **extra: Any) -> tuple[int, Any, bytes]:
        body = {"model": scenario, "messages": [{"role": "user", "content": PROMPT}], **extra}
        if stream:
            body["stream"] = True
        return await self.post("/v1/chat/completions", body)

    async def last_error_kind(self, scenario: str) -> str | None:
        """The router's record of the scenario's deployment: the kind of its last failure."""
        resp = await asyncio.wait_for(self.client.get("/health", headers=self.headers), WAIT)
        assert resp.status == 200, await resp.text()
        health = await resp.json()
        dep_id = self.deployment(scenario).id
        entry = next(e for e in health["healthy_endpoints"] + health["unhealthy_endpoints"] if e["model_id"] == dep_id)
        return entry["last_error"]

    def assert_no_credential(self, *texts: Any) -> None:
        for text in texts:
            text = text if isinstance(text, str) else text.decode("utf-8", "replace") if isinstance(
                text, bytes) else json.dumps(dict(text))
            leaked = [c[:4] + "..." for c in self.credentials if c in text]
            assert not leaked, f"a credential ({', '.join(leaked)}) appears in an error: {text[:500]}"


def _as_case(expected: str | ErrorCase) -> ErrorCase:
    return expected if isinstance(expected, ErrorCase) else ErrorCase(expected)


def _implemented(provider: Provider) -> set[str]:
    """The capabilities whose method ``provider`` overrides."""
    return {cap for cap, method in CAPABILITY_METHODS.items()
            if getattr(type(provider), method, None) is not getattr(Provider, method)}


class ProviderConformance:
    """The suite; subclass it as ``Test...`` and set what your plugin and fake need (module doc)."""

    plugin: ClassVar[Any] = None
    """The plugin (a module or object with hook implementations) registered alone on a fresh
    plugin manager; None: the installed plugins (entry points), as ``sidecar serve`` loads them."""
    chat_scenario: ClassVar[str | None] = "chat"
    """A scenario answered normally: plain, streamed, and (when the provider takes ``tools``) with
    a tool call; None if the provider does not chat."""
    embedding_scenario: ClassVar[str | None] = None
    """A scenario answering embeddings, if the provider embeds."""
    cut_scenario: ClassVar[str | None] = "cut"
    """A scenario whose stream the upstream cuts mid-way (the connection drops); None if your
    provider has no upstream connection to cut (say why in your test)."""
    error_scenarios: ClassVar[Mapping[str, str | ErrorCase]] = {}
    """Scenario -> the error kind it must give (or an :class:`ErrorCase`)."""
    required_kinds: ClassVar[tuple[str, ...]] = ("rate_limit",)
    """Kinds the error scenarios must cover (every HTTP upstream limits rates)."""
    extra_params: ClassVar[frozenset[str]] = frozenset()
    """Names ``supported_openai_params`` may give that OpenAI's request schema lacks (say why)."""
    credentials: ClassVar[tuple[str, ...]] = ()
    """Credentials besides those in ``litellm_params`` (read from the environment, say) that must
    not appear in errors."""

    # ---------------------------------------------------------------- what a subclass gives

    @pytest.fixture
    def upstream(self) -> Any:
        """The fake upstream (override: start it with :func:`sidecar.testing.start`); None: no upstream."""
        return None

    def litellm_params(self, upstream: Any, scenario: str) -> dict[str, Any]:
        """The deployment's ``litellm_params`` for ``scenario``, pointing at ``upstream``."""
        raise NotImplementedError("set litellm_params(upstream, scenario) in your ProviderConformance subclass")

    # ---------------------------------------------------------------- the gateway

    def scenarios(self) -> list[str]:
        named = [self.chat_scenario, self.embedding_scenario, self.cut_scenario, *self.error_scenarios]
        return list(dict.fromkeys(s for s in named if s))

    @pytest.fixture
    async def gateway(self, make_gateway: Any, upstream: Any) -> Gateway:
        """The gateway with one deployment per scenario (``model_name`` = the scenario)."""
        model_list = [{"model_name": s, "model_info": {"id": f"conformance-{s}"},
                       "litellm_params": {"num_retries": 0, **self.litellm_params(upstream, s)}}
                      for s in self.scenarios()]
        client = await make_gateway({"model_list": model_list, "general_settings": {"master_key": MASTER_KEY}},
                                    plugins=None if self.plugin is None else [self.plugin])
        credentials: set[str] = set(self.credentials)
        for dep in client.app[keys.REGISTRY]:
            extra = dep.provider.secret_params()
            for name, value in dep.litellm_params.items():
                if (is_secret_param(name) or name in extra) and "region" not in name:  # (a region is no secret)
                    credentials.update(v for v in _strings(value) if len(v) >= 8 and not _is_url(v))
        return Gateway(client, upstream, tuple(sorted(credentials)), {"Authorization": f"Bearer {MASTER_KEY}"})

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        """One test per error scenario."""
        if "error_scenario" in metafunc.fixturenames:
            cases = sorted(self.error_scenarios)
            params = cases or [pytest.param(None, marks=pytest.mark.skip(reason="no error scenarios"))]
            metafunc.parametrize("error_scenario", params)

    def _need(self, scenario: str | None, what: str) -> str:
        if scenario is None:
            pytest.skip(f"no {what} scenario")
        return scenario

    # ---------------------------------------------------------------- the contract, statically

    def test_capabilities_match_implemented_methods(self, gateway: Gateway) -> None:
        for provider in {dep.provider for dep in gateway.client.app[keys.REGISTRY]}:
            declared, implemented = set(provider.capabilities), _implemented(provider)
            assert declared == implemented, (
                f"provider {provider.name!r}: declared without the method: {sorted(declared - implemented)}; "
                f"method without the capability: {sorted(implemented - declared)} "
                f"(sidecar.CAPABILITY_METHODS pairs them)")

    def test_supported_params_are_openai_params(self, gateway: Gateway) -> None:
        for dep in gateway.client.app[keys.REGISTRY]:
            provider, model = dep.provider, dep.upstream_model()
            capabilities = [c for c in sorted(provider.capabilities) if c in REQUEST_SCHEMAS]
            # (the older one-argument form: one list serves every capability)
            known = frozenset().union(*(request_params(c) for c in capabilities)) if capabilities else frozenset()
            for capability in capabilities:
                params = set(supported_params(provider, model, capability))
                allowed = known if _one_list(provider) else request_params(capability)
                unknown = params - allowed - self.extra_params
                assert not unknown, (f"{provider.name}/{model} lists {sorted(unknown)} for {capability}: not "
                                     f"params of OpenAI's {REQUEST_SCHEMAS[capability]}")

    def test_error_scenarios_cover_the_required_kinds(self) -> None:
        covered = {_as_case(e).kind for e in self.error_scenarios.values()}
        missing = set(self.required_kinds) - covered
        assert not missing, f"no error scenario gives {sorted(missing)} (error_scenarios, required_kinds)"

    # ---------------------------------------------------------------- answers

    async def test_plain_chat_validates(self, gateway: Gateway) -> None:
        scenario = self._need(self.chat_scenario, "chat")
        status, headers, raw = await gateway.chat(scenario)
        assert status == 200, raw
        answer = json.loads(raw)
        assert_valid(answer, "CreateChatCompletionResponse")
        assert headers["x-litellm-model-id"] == f"conformance-{scenario}"
        [choice] = answer["choices"]
        assert choice["finish_reason"] in ("stop", "length"), choice
        assert isinstance(choice["message"]["content"], str) and choice["message"]["content"], choice

    async def test_stream_validates_and_ends_with_a_finish_reason_and_done(self, gateway: Gateway) -> None:
        scenario = self._need(self.chat_scenario, "chat")
        status, headers, raw = await gateway.chat(scenario, stream=True)
        assert status == 200, raw
        assert headers["Content-Type"].startswith("text/event-stream"), headers
        chunks = assert_valid_stream(raw)
        text = "".join(c["delta"].get("content") or "" for chunk in chunks for c in chunk["choices"])
        assert text, "the stream carried no content"

    async def test_tool_call_validates(self, gateway: Gateway) -> None:
        scenario = self._tool_scenario(gateway)
        status, _, raw = await gateway.chat(scenario, tools=[WEATHER_TOOL])
        assert status == 200, raw
        answer = json.loads(raw)
        assert_valid(answer, "CreateChatCompletionResponse")
        [choice] = answer["choices"]
        assert choice["finish_reason"] == "tool_calls", choice
        _check_calls(choice["message"].get("tool_calls") or [])

    async def test_streamed_tool_call_validates(self, gateway: Gateway) -> None:
        scenario = self._tool_scenario(gateway)
        status, _, raw = await gateway.chat(scenario, stream=True, tools=[WEATHER_TOOL])
        assert status == 200, raw
        chunks = assert_valid_stream(raw)
        finishes = [c["finish_reason"] for chunk in chunks for c in chunk["choices"] if c.get("finish_reason")]
        assert finishes == ["tool_calls"], finishes
        _check_calls(tool_calls_of(chunks))

    def _tool_scenario(self, gateway: Gateway) -> str:
        scenario = self._need(self.chat_scenario, "chat")
        dep = gateway.deployment(scenario)
        if "tools" not in supported_params(dep.provider, dep.upstream_model(), "chat"):
            pytest.skip(f"{dep.provider.name} does not take tools")
        return scenario

    async def test_embeddings_validate(self, gateway: Gateway) -> None:
        scenario = self._need(self.embedding_scenario, "embedding")
        status, _, raw = await gateway.post("/v1/embeddings", {"model": scenario, "input": ["hello", "world"],
                                                               "encoding_format": "float"})
        assert status == 200, raw
        answer = json.loads(raw)
        assert_valid(answer, "CreateEmbeddingResponse")
        assert [d["index"] for d in answer["data"]] == [0, 1], answer["data"]
        assert all(d["embedding"] and all(isinstance(x, float) for x in d["embedding"]) for d in answer["data"])

    # ---------------------------------------------------------------- failures

    async def test_cut_stream_ends_with_an_error_event_and_done(self, gateway: Gateway) -> None:
        scenario = self._need(self.cut_scenario, "cut stream")
        status, _, raw = await gateway.chat(scenario, stream=True)
        gateway.assert_no_credential(raw)
        if status != 200:  # cut before the first chunk: a plain error answer
            assert status == STATUS_FOR_KIND["server"], raw
            assert_envelope(json.loads(raw))
            return
        payloads, done = parse_sse(raw)
        assert done, "the cut stream did not end with data: [DONE]"
        *chunks, last = payloads
        for chunk in chunks:
            assert_valid(chunk, "CreateChatCompletionStreamResponse")
        finished = [c for c in payloads if any(ch.get("finish_reason") for ch in c.get("choices") or ())]
        assert not finished, f"a cut stream was passed off as complete: {finished[0]}"
        assert "error" in last, f"the cut stream did not end with an error event: {last}"
        error = assert_envelope(last)
        assert error["type"] == "upstream_error", error

    async def test_error_scenario(self, gateway: Gateway, error_scenario: str) -> None:
        case = _as_case(self.error_scenarios[error_scenario])
        for stream in (False, True):
            status, headers, raw = await gateway.chat(error_scenario, stream=stream, **case.body)
            where = f"{error_scenario} ({'streamed' if stream else 'plain'})"
            assert status == case.expected_status, f"{where}: expected {case.expected_status}, got {status}: {raw!r}"
            assert headers.get("Content-Type", "").startswith("application/json"), (where, headers)
            error = assert_envelope(json.loads(raw))
            gateway.assert_no_credential(raw, headers)
            if case.kind == "rate_limit" and case.retry_after is not False:
                assert headers.get("Retry-After"), f"{where}: a 429 without Retry-After: {dict(headers)}"
                if isinstance(case.retry_after, str):
                    assert headers["Retry-After"] == case.retry_after, (where, headers["Retry-After"])
            kind = await gateway.last_error_kind(error_scenario)
            assert kind == case.kind, f"{where}: the router recorded a {kind!r} failure, not {case.kind!r}: {error}"


def _one_list(provider: Provider) -> bool:
    """Whether ``supported_openai_params`` is the older one-argument form (one list for every
    capability)."""
    try:
        return len(inspect.signature(type(provider).supported_openai_params).parameters) < 3
    except (TypeError, ValueError):
        return False


def _check_calls(calls: list[dict[str, Any]]) -> None:
    assert calls, "no tool call"
    for call in calls:
        assert call["id"], call
        assert call["type"] == "function", call
        assert call["function"]["name"] == "get_weather", call
        assert isinstance(json.loads(call["function"]["arguments"]), dict), call


def _is_url(value: str) -> bool:
    """An ``api_base`` and the like: where a server lives (the core masks it; the suite looks for keys)."""
    return value.startswith(("http://", "https://"))


def _strings(value: Any) -> list[str]:
    if isinstance(value, Mapping):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list | tuple):
        return [s for v in value for s in _strings(v)]
    return [str(value)] if value is not None else []

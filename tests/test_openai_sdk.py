"""The official ``openai`` SDK (async, and sync in a thread) as a client of a really served sidecar,
with the mock provider and with the openai provider pointed at a fake OpenAI upstream."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import msgspec
import openai
import pytest
from aiohttp import web

from fake_upstreams import OpenAIFake, embedding_vector, start
from sidecar.app import create_app

MASTER = "sk-sidecar-master-key-0001"
UPSTREAM_KEY = "sk-test-secret-123456789"
WAIT = 10.0

WEATHER_TOOL = {
    "type": "function",
    "function": {"name": "get_weather", "description": "Current weather in a city",
                 "parameters": {"type": "object", "properties": {"location": {"type": "string"}},
                                "required": ["location"]}},
}
# (model name, the reply to "Say hi", the tool call's arguments for "Weather in Paris?")
CHAT_MODELS = [
    pytest.param("mock-gpt", "Mock reply to: Say hi", {"location": "Weather in Paris?"}, id="mock"),
    pytest.param("gpt-4o-mini", "Hello from OpenAI. Say hi", {"location": "Paris"}, id="openai"),
]


def config(fake: OpenAIFake) -> dict[str, Any]:
    def upstream(name: str, model: str, **params: Any) -> dict[str, Any]:
        return {"model_name": name, "model_info": {"id": f"dep-{name}"},
                "litellm_params": {"model": model, "api_base": fake.base_url, "api_key": UPSTREAM_KEY, **params}}

    return {
        "model_list": [
            {"model_name": "mock-gpt", "litellm_params": {"model": "mock/mock-gpt"}, "model_info": {"id": "dep-mock"}},
            {"model_name": "mock-embedding", "litellm_params": {"model": "mock/mock-embedding", "dimensions": 8}},
            {"model_name": "mock-moderation", "litellm_params": {"model": "mock/mock-moderation"},
             "model_info": {"mode": "moderation"}},
            upstream("gpt-4o-mini", "openai/gpt-4o-mini"),
            upstream("text-embedding-3-small", "openai/text-embedding-3-small"),
            upstream("omni-moderation-latest", "openai/omni-moderation-latest"),
            # failing upstreams answer at once: the router's retries have tests of their own
            upstream("rate-limited", "openai/error-429", num_retries=0),
            upstream("broken", "openai/error-500", num_retries=0),
            upstream("cut", "openai/cut", num_retries=0),
        ],
        "general_settings": {"master_key": MASTER},
    }


@pytest.fixture
async def fake(aiohttp_server) -> OpenAIFake:
    return await start(aiohttp_server, OpenAIFake(api_key=UPSTREAM_KEY))


@pytest.fixture
async def base_url(make_config, fake) -> AsyncIterator[str]:
    """The sidecar really served on a free 127.0.0.1 port, in this test's loop."""
    runner = web.AppRunner(create_app(make_config(config(fake))), shutdown_timeout=2)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    yield f"http://{host}:{port}/v1"
    await runner.cleanup()


@pytest.fixture
async def client(base_url) -> AsyncIterator[openai.AsyncOpenAI]:
    async with async_client(base_url) as sdk:
        yield sdk


def async_client(base_url: str, api_key: str = MASTER) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=base_url, api_key=api_key, max_retries=0, timeout=WAIT,
                              http_client=openai.DefaultAsyncHttpxClient(trust_env=False))


def sync_client(base_url: str, api_key: str = MASTER) -> openai.OpenAI:
    return openai.OpenAI(base_url=base_url, api_key=api_key, max_retries=0, timeout=WAIT,
                         http_client=openai.DefaultHttpxClient(trust_env=False))


async def bounded(awaitable: Awaitable[Any]) -> Any:
    return await asyncio.wait_for(awaitable, WAIT)


def say(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


# ---------------------------------------------------------------- chat


@pytest.mark.parametrize(("model", "reply", "args"), CHAT_MODELS)
async def test_chat_plain(client, model, reply, args):
    raw = await bounded(client.chat.completions.with_raw_response.create(model=model, messages=say("Say hi")))
    assert raw.headers["x-litellm-model-id"] == ("dep-mock" if model == "mock-gpt" else f"dep-{model}")
    completion = raw.parse()
    assert completion.object == "chat.completion"
    assert completion.choices[0].message.role == "assistant"
    assert completion.choices[0].message.content == reply
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens


@pytest.mark.parametrize(("model", "reply", "args"), CHAT_MODELS)
async def test_chat_streaming(client, model, reply, args):
    async def run() -> list[Any]:
        stream = await client.chat.completions.create(model=model, messages=say("Say hi"), stream=True,
                                                      stream_options={"include_usage": True})
        return [chunk async for chunk in stream]

    chunks = await bounded(run())
    assert len(chunks) > 2
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == reply
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens > 0


@pytest.mark.parametrize(("model", "reply", "args"), CHAT_MODELS)
async def test_tool_calls_plain_and_streamed(client, model, reply, args):
    messages = say("Weather in Paris?")
    completion = await bounded(client.chat.completions.create(model=model, messages=messages, tools=[WEATHER_TOOL]))
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    call = choice.message.tool_calls[0]
    assert call.function.name == "get_weather"
    assert msgspec.json.decode(call.function.arguments) == args

    async def run() -> list[Any]:
        stream = await client.chat.completions.create(model=model, messages=messages, tools=[WEATHER_TOOL],
                                                      stream=True)
        return [chunk async for chunk in stream]

    name, arguments = "", ""
    for chunk in await bounded(run()):
        for piece in chunk.choices[0].delta.tool_calls or []:
            name += piece.function.name or "" if piece.function else ""
            arguments += piece.function.arguments or "" if piece.function else ""
    assert name == "get_weather"
    assert msgspec.json.decode(arguments) == args

    # the tool's answer goes back, and the model replies with text
    followup = [*messages, choice.message.model_dump(exclude_none=True),
                {"role": "tool", "tool_call_id": call.id, "content": "18 C and sunny"}]
    answer = await bounded(client.chat.completions.create(model=model, messages=followup, tools=[WEATHER_TOOL]))
    assert "18 C and sunny" in answer.choices[0].message.content


# ---------------------------------------------------------------- embeddings, moderations, models


async def test_embeddings_base64_default_and_float_through_openai_provider(client, fake):
    default = await bounded(client.embeddings.create(model="text-embedding-3-small", input=["one", "two"]))
    assert fake.last.body["encoding_format"] == "base64"  # the SDK's default, passed on
    floats = await bounded(client.embeddings.create(model="text-embedding-3-small", input=["one", "two"],
                                                    encoding_format="float"))
    assert fake.last.body["encoding_format"] == "float"
    expected = [embedding_vector(0, 4), embedding_vector(1, 4)]
    assert [d.embedding for d in default.data] == expected
    assert [d.embedding for d in floats.data] == expected
    assert floats.usage.prompt_tokens == 2


async def test_embeddings_base64_default_and_float_with_mock(client):
    default = await bounded(client.embeddings.create(model="mock-embedding", input="hello world"))
    floats = await bounded(client.embeddings.create(model="mock-embedding", input="hello world",
                                                    encoding_format="float"))
    assert len(default.data[0].embedding) == len(floats.data[0].embedding) == 8
    assert default.data[0].embedding == pytest.approx(floats.data[0].embedding, rel=1e-5, abs=1e-6)
    assert sum(v * v for v in floats.data[0].embedding) == pytest.approx(1.0, rel=1e-3)


@pytest.mark.parametrize("model", ["mock-moderation", "omni-moderation-latest"])
async def test_moderations(client, model):
    result = await bounded(client.moderations.create(model=model, input=["I will kill it", "good morning"]))
    assert [r.flagged for r in result.results] == [True, False]
    assert result.results[0].categories.violence is True
    assert result.results[1].category_scores.violence < 0.5


async def test_models_list(client):
    page = await bounded(client.models.list())
    ids = [m.id for m in page.data]
    assert {"mock-gpt", "gpt-4o-mini", "text-embedding-3-small", "omni-moderation-latest"} <= set(ids)
    assert all(m.object == "model" and m.owned_by for m in page.data)


# ---------------------------------------------------------------- errors


async def test_unknown_model_is_not_found(client):
    with pytest.raises(openai.NotFoundError) as caught:
        await bounded(client.chat.completions.create(model="no-such-model", messages=say("hi")))
    assert caught.value.status_code == 404
    assert caught.value.code == "model_not_found"
    assert "no-such-model" in caught.value.message


@pytest.mark.parametrize("key", ["sk-wrong-master-key", MASTER + "0", MASTER[:-1]])
async def test_bad_master_key_is_authentication_error(base_url, key):
    async with async_client(base_url, api_key=key) as sdk:
        with pytest.raises(openai.AuthenticationError) as caught:
            await bounded(sdk.chat.completions.create(model="mock-gpt", messages=say("hi")))
        with pytest.raises(openai.AuthenticationError):
            await bounded(sdk.models.list())
    assert caught.value.status_code == 401


async def test_bad_request(client):
    with pytest.raises(openai.BadRequestError) as caught:
        await bounded(client.chat.completions.create(model="mock-gpt", messages=[]))
    assert caught.value.param == "messages"
    with pytest.raises(openai.BadRequestError):
        await bounded(client.embeddings.create(model="mock-embedding", input=[]))


async def test_upstream_429_is_rate_limit_error(client):
    with pytest.raises(openai.RateLimitError) as caught:
        await bounded(client.chat.completions.create(model="rate-limited", messages=say("hi")))
    assert "Rate limit reached" in caught.value.message
    assert caught.value.code == "rate_limit_exceeded"


async def test_upstream_500_is_internal_server_error(client):
    with pytest.raises(openai.InternalServerError) as caught:
        await bounded(client.chat.completions.create(model="broken", messages=say("hi")))
    assert caught.value.status_code == 502


async def test_stream_cut_upstream_raises_api_error_not_hang(client):
    async def run() -> list[Any]:
        stream = await client.chat.completions.create(model="cut", messages=say("one two three"), stream=True)
        return [chunk async for chunk in stream]

    with pytest.raises(openai.APIError) as caught:
        await bounded(run())
    assert "closed the connection" in caught.value.message


# ---------------------------------------------------------------- the sync client, in a thread


async def in_thread(fn: Callable[[], Any]) -> Any:
    return await bounded(asyncio.to_thread(fn))


async def test_sync_client(base_url, fake):
    def run() -> dict[str, Any]:
        out: dict[str, Any] = {}
        with sync_client(base_url) as sdk:
            out["plain"] = sdk.chat.completions.create(model="gpt-4o-mini", messages=say("Say hi"))
            with sdk.chat.completions.create(model="mock-gpt", messages=say("Say hi"), stream=True) as stream:
                out["streamed"] = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
            out["tool"] = sdk.chat.completions.create(model="gpt-4o-mini", messages=say("Weather?"),
                                                      tools=[WEATHER_TOOL])
            out["embedding"] = sdk.embeddings.create(model="text-embedding-3-small", input="hi")
            out["models"] = [m.id for m in sdk.models.list()]
            try:
                sdk.chat.completions.create(model="rate-limited", messages=say("hi"))
            except openai.RateLimitError as exc:
                out["error"] = exc
        with sync_client(base_url, api_key="sk-wrong") as sdk:
            try:
                sdk.embeddings.create(model="mock-embedding", input="hi")
            except openai.AuthenticationError as exc:
                out["auth"] = exc
        return out

    out = await in_thread(run)
    assert out["plain"].choices[0].message.content == "Hello from OpenAI. Say hi"
    assert out["streamed"] == "Mock reply to: Say hi"
    assert out["tool"].choices[0].message.tool_calls[0].function.name == "get_weather"
    assert out["embedding"].data[0].embedding == embedding_vector(0, 4)
    assert "gpt-4o-mini" in out["models"]
    assert out["error"].status_code == 429
    assert out["auth"].status_code == 401
    # what reached the upstream: the openai-provider calls only (mock and refused calls did not)
    assert [(r.path, r.body["model"]) for r in fake.received] == [
        ("/v1/chat/completions", "gpt-4o-mini"), ("/v1/chat/completions", "gpt-4o-mini"),
        ("/v1/embeddings", "text-embedding-3-small"), ("/v1/chat/completions", "error-429")]

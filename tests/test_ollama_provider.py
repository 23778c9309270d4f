"""The ``ollama`` plugin (``ollama/`` over ``/api/generate``, ``ollama_chat/`` over ``/api/chat``,
embeddings over ``/api/embed``) through the gateway, against an in-process Ollama server; chat
with the official ``openai`` SDK as the client."""

from __future__ import annotations

import asyncio
import base64
import struct

import pytest
from fake_ollama import EVAL_COUNT, PROMPT_EVAL_COUNT, OllamaFake
from fake_upstreams import start
from openai_helpers import WEATHER_TOOL, assert_envelope, decode, post, user
from openai_spec import assert_valid

from sidecar.testing import deployment, stream_ending_in_error

KEY = "ollama-cloud-key-0123456789"
WAIT = 10.0


def entry(name: str, model: str, api_base: str, **params) -> dict:
    return deployment(name, model, api_base=api_base, **params)


@pytest.fixture
async def ollama(aiohttp_server) -> OllamaFake:
    return await start(aiohttp_server, OllamaFake())


@pytest.fixture
async def gateway(make_client, openai_sdk, ollama):
    """The sidecar with ``chat`` (ollama_chat/), ``gen`` (ollama/) and failing models, and an SDK client."""
    client = await make_client({"model_list": [
        entry("chat", "ollama_chat/llama3.1", ollama.root_url, temperature=0.2, num_ctx=8192, keep_alive="5m"),
        entry("gen", "ollama/llama3.1", ollama.root_url + "/api/generate"),
        entry("missing", "ollama_chat/missing", ollama.root_url),
        entry("cut", "ollama_chat/cut", ollama.root_url),
        entry("mid", "ollama/error-mid-stream", ollama.root_url),
        entry("no-done", "ollama_chat/no-done", ollama.root_url),
        entry("long", "ollama_chat/long", ollama.root_url),
        entry("embed", "ollama/nomic-embed-text", ollama.root_url),
    ]})
    sdk = openai_sdk(client, timeout=WAIT)
    return client, sdk


async def test_ollama_chat_maps_params_to_options_and_answers_openai(gateway, ollama):
    _, sdk = gateway
    raw = await asyncio.wait_for(sdk.chat.completions.with_raw_response.create(
        model="chat", messages=[{"role": "system", "content": "Be brief."}, *user("Say hi")],
        max_tokens=64, top_p=0.9, seed=7, stop="END", frequency_penalty=0.5,
        response_format={"type": "json_object"}, extra_body={"top_k": 20}), WAIT)
    assert raw.headers["x-litellm-model-id"] == "dep-chat"
    answer = decode(raw.content)
    assert_valid(answer, "CreateChatCompletionResponse")
    assert answer["choices"][0]["message"] == {"role": "assistant", "content": "Hello from Ollama. Say hi", "refusal": None}
    assert answer["choices"][0]["finish_reason"] == "stop"
    assert answer["usage"] == {"prompt_tokens": PROMPT_EVAL_COUNT, "completion_tokens": EVAL_COUNT,
                               "total_tokens": PROMPT_EVAL_COUNT + EVAL_COUNT}
    got = ollama.last
    assert (got.method, got.path) == ("POST", "/api/chat")
    assert "Authorization" not in got.headers
    assert got.body == {
        "model": "llama3.1", "stream": False, "format": "json", "keep_alive": "5m",
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say hi"}],
        "options": {"temperature": 0.2, "num_ctx": 8192, "num_predict": 64, "top_p": 0.9, "seed": 7,
                    "stop": ["END"], "frequency_penalty": 0.5, "top_k": 20},
    }


async def test_ollama_generate_sends_one_prompt(gateway, ollama):
    _, sdk = gateway
    completion = await asyncio.wait_for(sdk.chat.completions.create(
        model="gen", messages=[{"role": "system", "content": "Be brief."}, *user("Say hi")]), WAIT)
    assert completion.choices[0].message.content == "Hello from Ollama. ### System:\nBe brief.\n\n### User:\nSay hi"
    assert completion.usage.completion_tokens == EVAL_COUNT
    got = ollama.last
    assert got.path == "/api/generate"  # an api_base naming the endpoint is not doubled
    assert got.body == {"model": "llama3.1", "prompt": "### System:\nBe brief.\n\n### User:\nSay hi\n\n",
                        "stream": False}


@pytest.mark.parametrize(("model", "path"), [("chat", "/api/chat"), ("gen", "/api/generate")])
async def test_ollama_stream_is_openai_chunks(gateway, ollama, model, path):
    _, sdk = gateway
    stream = await asyncio.wait_for(sdk.chat.completions.create(
        model=model, messages=user("Say hi"), stream=True, stream_options={"include_usage": True}), WAIT)
    chunks = [chunk async for chunk in stream]
    for chunk in chunks:
        assert_valid(chunk.model_dump(exclude_unset=True), "CreateChatCompletionStreamResponse")
    assert ollama.last.path == path and ollama.last.body["stream"] is True
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.startswith("Hello from Ollama.") and text.endswith("Say hi")
    assert len({c.id for c in chunks}) == 1
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage.prompt_tokens == PROMPT_EVAL_COUNT


async def test_ollama_tool_calls_plain_and_streamed(gateway, ollama):
    client, sdk = gateway
    body = {"model": "chat", "messages": user("Weather in Paris?"), "tools": [WEATHER_TOOL], "tool_choice": "auto"}
    completion = await asyncio.wait_for(sdk.chat.completions.create(**body), WAIT)
    assert ollama.last.body["tools"] == [WEATHER_TOOL] and "tool_choice" not in ollama.last.body
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    [call] = choice.message.tool_calls
    assert call.id.startswith("call_") and call.function.name == "get_weather"
    assert decode(call.function.arguments) == {"location": "Paris"}

    stream = await asyncio.wait_for(sdk.chat.completions.create(**body, stream=True), WAIT)
    chunks = [chunk async for chunk in stream]
    pieces = [p for c in chunks for p in c.choices[0].delta.tool_calls or []]
    assert [(p.index, p.function.name, decode(p.function.arguments)) for p in pieces] == \
        [(0, "get_weather", {"location": "Paris"})]
    assert chunks[-1].choices[0].finish_reason == "tool_calls"

    # the tool's answer goes back with the call's arguments as an object and the tool's name
    history = [*user("Weather in Paris?"), choice.message.model_dump(exclude_none=True),
               {"role": "tool", "tool_call_id": call.id, "content": "18C, sunny"}]
    status, answer, _ = await post(client, "/v1/chat/completions",
                                   {"model": "chat", "messages": history, "tools": [WEATHER_TOOL]})
    assert status == 200, answer
    sent = ollama.last.body["messages"]
    assert sent[1]["tool_calls"] == [{"function": {"name": "get_weather", "arguments": {"location": "Paris"}}}]
    assert sent[2] == {"role": "tool", "content": "18C, sunny", "tool_name": "get_weather"}
    assert answer["choices"][0]["message"]["content"] == "Hello from Ollama. 18C, sunny"


async def test_ollama_images_go_as_base64(gateway, ollama):
    client, _ = gateway
    content = [{"type": "text", "text": "What is it?"},
               {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]
    status, answer, _ = await post(client, "/v1/chat/completions",
                                   {"model": "chat", "messages": [{"role": "user", "content": content}]})
    assert status == 200, answer
    assert ollama.last.body["messages"] == [{"role": "user", "content": "What is it?", "images": ["iVBORw0KGgo="]}]


async def test_ollama_done_reason_length(gateway):
    client, _ = gateway
    status, answer, _ = await post(client, "/v1/chat/completions", {"model": "long", "messages": user("hi")})
    assert status == 200, answer
    assert answer["choices"][0]["finish_reason"] == "length"


@pytest.mark.parametrize("stream", [False, True])
async def test_ollama_model_not_pulled_is_not_found(gateway, stream):
    client, _ = gateway
    status, answer, _ = await post(client, "/v1/chat/completions",
                                   {"model": "missing", "messages": user("hi"), "stream": stream})
    assert status == 404
    error = assert_envelope(answer)
    assert 'model "missing" not found, try pulling it first' in error["message"]
    assert error["type"] == "not_found_error"


@pytest.mark.parametrize(("model", "words"), [("cut", "mid-response"), ("no-done", "before done: true"),
                                                ("mid", "error was encountered")])
async def test_ollama_stream_failure_after_first_chunk_ends_with_an_error_event(gateway, model, words):
    client, _ = gateway
    resp = await asyncio.wait_for(client.post("/v1/chat/completions", json={
        "model": model, "messages": user("Say hi there"), "stream": True}), WAIT)
    raw = await asyncio.wait_for(resp.read(), WAIT)
    assert resp.status == 200
    chunks, error = stream_ending_in_error(raw)
    assert chunks[0]["choices"][0]["delta"]["content"] == "Hello"
    assert resp.status == 200 and words in error["message"]


async def test_ollama_embeddings(gateway, ollama):
    client, _ = gateway
    status, answer, headers = await post(client, "/v1/embeddings",
                                         {"model": "embed", "input": ["a", "b"], "dimensions": 4})
    assert status == 200, answer
    assert headers["x-litellm-model-id"] == "dep-embed"
    assert_valid(answer, "CreateEmbeddingResponse")
    assert [d["embedding"] for d in answer["data"]] == [[1.0, 0.5, 0.5, 0.5], [2.0, 0.5, 0.5, 0.5]]
    assert answer["usage"] == {"prompt_tokens": 4, "total_tokens": 4}
    assert (ollama.last.path, ollama.last.body) == ("/api/embed", {"model": "nomic-embed-text", "input": ["a", "b"],
                                                                   "dimensions": 4})
    status, answer, _ = await post(client, "/v1/embeddings",
                                   {"model": "embed", "input": "a", "encoding_format": "base64"})
    assert status == 200, answer
    assert list(struct.unpack("<3f", base64.b64decode(answer["data"][0]["embedding"]))) == [1.0, 0.5, 0.5]


async def test_ollama_key_and_base_from_the_environment(make_client, aiohttp_server, monkeypatch):
    fake = await start(aiohttp_server, OllamaFake(api_key=KEY))
    monkeypatch.setenv("OLLAMA_API_BASE", fake.root_url)
    monkeypatch.setenv("OLLAMA_API_KEY", KEY)
    client = await make_client({"model_list": [
        {"model_name": "m", "litellm_params": {"model": "ollama_chat/llama3.1", "num_retries": 0}}]})
    status, answer, _ = await post(client, "/v1/chat/completions", {"model": "m", "messages": user("hi")})
    assert status == 200, answer
    assert fake.last.headers["Authorization"] == f"Bearer {KEY}"
    monkeypatch.setenv("OLLAMA_API_KEY", "wrong-key-000000000")
    status, answer, _ = await post(client, "/v1/chat/completions", {"model": "m", "messages": user("hi")})
    assert status == 401
    assert "wrong-key-000000000" not in assert_envelope(answer)["message"]


def test_ollama_default_api_base():
    from sidecar.plugins import collect_providers, get_plugin_manager

    providers = collect_providers(get_plugin_manager())
    assert str(providers["ollama"].url({}, "/api/generate")) == "http://localhost:11434/api/generate"
    assert str(providers["ollama_chat"].url({"api_base": "http://gpu:11434/"}, "/api/chat")) == "http://gpu:11434/api/chat"

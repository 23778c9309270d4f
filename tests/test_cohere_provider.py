"""The ``cohere`` plugin (chat over ``/v2/chat``, embeddings over ``/v2/embed``, rerank over
``/v2/rerank``) through the gateway, against an in-process Cohere server; chat and embeddings with
the official ``openai`` SDK as the client."""

from __future__ import annotations

import asyncio
import base64
import struct

import pytest
from fake_cohere import ERRORS, INPUT_TOKENS, TOOL_PLAN, CohereFake
from fake_upstreams import embedding_vector, start
from openai_helpers import WEATHER_TOOL, assert_envelope, decode, post, user
from openai_spec import assert_valid

from sidecar.testing import deployment, stream_ending_in_error

KEY = "co-test-key-0123456789abcdef"
WAIT = 10.0


def entry(name: str, model: str, api_base: str, **params) -> dict:
    return deployment(name, model, api_base=api_base, api_key=KEY, **params)


@pytest.fixture
async def cohere(aiohttp_server) -> CohereFake:
    return await start(aiohttp_server, CohereFake(api_key=KEY))


@pytest.fixture
async def gateway(make_client, openai_sdk, cohere):
    """The sidecar with Cohere chat, embedding, rerank and failing models, and an SDK client."""
    base = cohere.root_url
    client = await make_client({
        "model_list": [
            entry("command", "cohere/command-a-03-2025", base, k=40),
            entry("command-chat", "cohere_chat/command-r-08-2024", base + "/v2/chat"),
            entry("embed", "cohere/embed-v4.0", base),
            entry("embed-query", "cohere/embed-v4.0", base, input_type="search_query", truncate="END"),
            {**entry("rerank", "cohere/rerank-v3.5", base),
             "model_info": {"id": "dep-rerank", "mode": "rerank", "input_cost_per_query": 0.002}},
            *(entry(name, f"cohere/{name}", base) for name in
              ("error-400", "error-429", "error-498", "error-500", "cut", "no-end", "error-finish", "long")),
        ],
        "router_settings": {"context_window_fallbacks": [{"error-400": ["command"]}]},
    })
    sdk = openai_sdk(client, timeout=WAIT)
    return client, sdk


async def test_cohere_chat_maps_params_and_answers_openai(gateway, cohere):
    _, sdk = gateway
    raw = await asyncio.wait_for(sdk.chat.completions.with_raw_response.create(
        model="command", messages=[{"role": "system", "content": "Be brief."}, *user("Say hi")],
        max_completion_tokens=64, temperature=0.3, top_p=0.9, seed=7, stop="END", frequency_penalty=0.5,
        presence_penalty=0.1, response_format={"type": "json_schema", "json_schema": {
            "name": "greeting", "schema": {"type": "object", "properties": {"text": {"type": "string"}}}}},
        extra_body={"safety_mode": "STRICT"}), WAIT)
    assert raw.headers["x-litellm-model-id"] == "dep-command"
    assert float(raw.headers["x-litellm-response-cost"]) > 0  # the catalog's price for command-a-03-2025
    answer = decode(raw.content)
    assert_valid(answer, "CreateChatCompletionResponse")
    assert answer["id"] == "c14c80c3-18eb-4519-9460-6c92edd8cfb4"
    assert answer["choices"][0]["message"] == {"role": "assistant", "content": "Hello from Cohere. Say hi",
                                               "refusal": None}
    assert answer["choices"][0]["finish_reason"] == "stop"
    assert answer["usage"] == {"prompt_tokens": INPUT_TOKENS, "completion_tokens": 5, "total_tokens": INPUT_TOKENS + 5}
    got = cohere.last
    assert (got.method, got.path) == ("POST", "/v2/chat")
    assert got.headers["Authorization"] == f"Bearer {KEY}"
    assert got.body == {
        "model": "command-a-03-2025", "stream": False, "k": 40, "safety_mode": "STRICT",
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say hi"}],
        "max_tokens": 64, "temperature": 0.3, "p": 0.9, "seed": 7, "stop_sequences": ["END"],
        "frequency_penalty": 0.5, "presence_penalty": 0.1,
        "response_format": {"type": "json_object",
                            "json_schema": {"type": "object", "properties": {"text": {"type": "string"}}}},
    }


async def test_cohere_stream_is_openai_chunks(gateway, cohere):
    _, sdk = gateway
    stream = await asyncio.wait_for(sdk.chat.completions.create(
        model="command-chat", messages=user("Say hi"), stream=True, stream_options={"include_usage": True}), WAIT)
    chunks = [chunk async for chunk in stream]
    for chunk in chunks:
        assert_valid(chunk.model_dump(exclude_unset=True), "CreateChatCompletionStreamResponse")
    got = cohere.last
    assert got.path == "/v2/chat" and got.body["stream"] is True  # an api_base naming the endpoint is not doubled
    assert got.body["model"] == "command-r-08-2024"
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Hello from Cohere. Say hi"
    assert {c.id for c in chunks} == {"29f14a5a-stream"}
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage.prompt_tokens == INPUT_TOKENS


async def test_cohere_tool_calls_plain_and_streamed(gateway, cohere):
    client, sdk = gateway
    body = {"model": "command", "messages": user("Weather in Paris?"), "tools": [WEATHER_TOOL], "tool_choice": "auto"}
    completion = await asyncio.wait_for(sdk.chat.completions.create(**body), WAIT)
    sent = cohere.last.body
    assert sent["tools"] == [WEATHER_TOOL] and "tool_choice" not in sent
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    [call] = choice.message.tool_calls
    assert (call.id, call.function.name, decode(call.function.arguments)) == \
        ("get_weather_8xq1", "get_weather", {"location": "Paris"})
    assert choice.message.model_extra["reasoning_content"] == TOOL_PLAN

    stream = await asyncio.wait_for(sdk.chat.completions.create(**body, stream=True), WAIT)
    chunks = [chunk async for chunk in stream]
    for chunk in chunks:
        assert_valid(chunk.model_dump(exclude_unset=True), "CreateChatCompletionStreamResponse")
    pieces = [p for c in chunks for p in c.choices[0].delta.tool_calls or []]
    assert [(p.index, p.id, p.function.name) for p in pieces][0] == (0, "get_weather_8xq1", "get_weather")
    assert {p.index for p in pieces} == {0}
    assert decode("".join(p.function.arguments for p in pieces)) == {"location": "Paris"}
    assert "".join(c.choices[0].delta.model_extra.get("reasoning_content") or "" for c in chunks) == TOOL_PLAN
    assert chunks[-1].choices[0].finish_reason == "tool_calls"

    # the tool's answer goes back as Cohere's assistant tool_calls (with the plan) and a tool message
    history = [*user("Weather in Paris?"), choice.message.model_dump(exclude_none=True),
               {"role": "tool", "tool_call_id": call.id, "content": "18C, sunny"}]
    status, answer, _ = await post(client, "/v1/chat/completions",
                                   {"model": "command", "messages": history, "tools": [WEATHER_TOOL]})
    assert status == 200, answer
    assert cohere.last.body["messages"][1:] == [
        {"role": "assistant", "tool_plan": TOOL_PLAN, "tool_calls": [
            {"id": "get_weather_8xq1", "type": "function",
             "function": {"name": "get_weather", "arguments": '{"location":"Paris"}'}}]},
        {"role": "tool", "tool_call_id": "get_weather_8xq1", "content": "18C, sunny"},
    ]
    assert answer["choices"][0]["message"]["content"] == "Hello from Cohere. 18C, sunny"


OTHER_TOOL = {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object"}}}


@pytest.mark.parametrize(("tool_choice", "sent_choice", "sent_tools"), [
    ("required", "REQUIRED", [WEATHER_TOOL, OTHER_TOOL]),
    ("none", "NONE", [WEATHER_TOOL, OTHER_TOOL]),
    ({"type": "function", "function": {"name": "get_time"}}, "REQUIRED", [OTHER_TOOL]),
])
async def test_cohere_tool_choice(gateway, cohere, tool_choice, sent_choice, sent_tools):
    client, _ = gateway
    status, answer, _ = await post(client, "/v1/chat/completions", {
        "model": "command", "messages": user("hi"), "tools": [WEATHER_TOOL, OTHER_TOOL], "tool_choice": tool_choice})
    assert status == 200, answer
    assert (cohere.last.body["tool_choice"], cohere.last.body["tools"]) == (sent_choice, sent_tools)


async def test_cohere_images_and_max_tokens_finish(gateway, cohere):
    client, _ = gateway
    content = [{"type": "text", "text": "What is it?"},
               {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]
    status, answer, _ = await post(client, "/v1/chat/completions",
                                   {"model": "long", "messages": [{"role": "user", "content": content}]})
    assert status == 200, answer
    assert cohere.last.body["messages"] == [{"role": "user", "content": [
        {"type": "text", "text": "What is it?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]}]
    assert answer["choices"][0]["finish_reason"] == "length"


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(("model", "status", "type_"), [
    ("error-429", 429, "rate_limit_error"), ("error-498", 401, "authentication_error"),
    ("error-500", 502, "upstream_error"),
])
async def test_cohere_errors_keep_their_meaning(gateway, model, status, type_, stream):
    client, _ = gateway
    got, answer, _ = await post(client, "/v1/chat/completions", {"model": model, "messages": user("hi"),
                                                                  "stream": stream})
    assert got == status
    error = assert_envelope(answer)
    assert error["type"] == type_
    assert ERRORS[int(model[6:])] in error["message"]
    assert KEY not in error["message"]


async def test_cohere_too_many_tokens_is_a_context_window_error(gateway, cohere):
    """The router reads the kind: a context_window_fallbacks entry answers."""
    client, _ = gateway
    status, answer, headers = await post(client, "/v1/chat/completions", {"model": "error-400", "messages": user("hi")})
    assert status == 200, answer
    assert headers["x-litellm-model-group"] == "command"
    assert [r.body["model"] for r in cohere.received] == ["error-400", "command-a-03-2025"]
    status, answer, _ = await post(client, "/v1/chat/completions",
                                   {"model": "error-400", "messages": user("hi"), "disable_fallbacks": True})
    assert status == 400 and "too many tokens" in assert_envelope(answer)["message"]


@pytest.mark.parametrize(("model", "words"), [("cut", "mid-response"), ("no-end", "before message-end"),
                                                ("error-finish", "ended the generation with ERROR: the model ran")])
async def test_cohere_stream_failure_after_first_chunk_ends_with_an_error_event(gateway, model, words):
    client, _ = gateway
    resp = await asyncio.wait_for(client.post("/v1/chat/completions", json={
        "model": model, "messages": user("Say hi there"), "stream": True}), WAIT)
    raw = await asyncio.wait_for(resp.read(), WAIT)
    assert resp.status == 200
    chunks, error = stream_ending_in_error(raw)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert any(c["choices"][0]["delta"].get("content") == "Hello" for c in chunks)
    assert words in error["message"]


@pytest.mark.parametrize(("model", "extra", "input_type", "truncate"), [
    ("embed", {}, "search_document", None),
    ("embed", {"input_type": "classification"}, "classification", None),
    ("embed-query", {}, "search_query", "END"),
])
async def test_cohere_embeddings(gateway, cohere, model, extra, input_type, truncate):
    _, sdk = gateway
    raw = await asyncio.wait_for(sdk.embeddings.with_raw_response.create(
        model=model, input=["a", "b"], dimensions=4, encoding_format="float", extra_body=extra), WAIT)
    answer = decode(raw.content)
    assert_valid(answer, "CreateEmbeddingResponse")
    assert [d["embedding"] for d in answer["data"]] == [embedding_vector(0, 4), embedding_vector(1, 4)]
    assert answer["usage"] == {"prompt_tokens": 4, "total_tokens": 4}
    sent = {"model": "embed-v4.0", "texts": ["a", "b"], "embedding_types": ["float"], "input_type": input_type,
            "output_dimension": 4}
    if truncate:
        sent["truncate"] = truncate
    assert (cohere.last.path, cohere.last.body) == ("/v2/embed", sent)


async def test_cohere_embeddings_base64_by_the_core_and_text_only(gateway, cohere):
    """The SDK asks base64 by default: Cohere is asked for floats (every model has them) and the
    core encodes them; the SDK decodes them back to the same floats."""
    client, sdk = gateway
    result = await asyncio.wait_for(sdk.embeddings.create(model="embed", input="a"), WAIT)
    assert cohere.last.body["embedding_types"] == ["float"] and "encoding_format" not in cohere.last.body
    assert result.data[0].embedding == embedding_vector(0, 4)
    status, answer, _ = await post(client, "/v1/embeddings", {"model": "embed", "input": "a", "encoding_format": "base64"})
    assert list(struct.unpack("<4f", base64.b64decode(answer["data"][0]["embedding"]))) == embedding_vector(0, 4)
    status, answer, _ = await post(client, "/v1/embeddings", {"model": "embed", "input": [[1, 2, 3]]})
    assert status == 400 and assert_envelope(answer)["param"] == "input"


async def test_cohere_rerank(gateway, cohere):
    client, _ = gateway
    docs = [{"title": "Berlin", "text": "the capital of Germany"}, {"title": "Paris", "text": "capital of France"}]
    status, answer, headers = await post(client, "/v1/rerank", {
        "model": "rerank", "query": "capital of France", "documents": docs, "top_n": 1, "return_documents": True,
        "rank_fields": ["text"], "max_tokens_per_doc": 512})
    assert status == 200, answer
    assert answer == {"id": "07734bd2-rerank", "results": [{"index": 1, "relevance_score": 0.9, "document": docs[1]}],
                      "meta": {"api_version": {"version": "2"}, "billed_units": {"search_units": 1}}}
    assert float(headers["x-litellm-response-cost"]) == pytest.approx(0.002)
    assert (cohere.last.path, cohere.last.body) == ("/v2/rerank", {
        "model": "rerank-v3.5", "query": "capital of France", "top_n": 1, "max_tokens_per_doc": 512,
        "documents": ["text: the capital of Germany", "text: capital of France"]})


@pytest.mark.parametrize("variable", ["COHERE_API_KEY", "CO_API_KEY"])
async def test_cohere_key_from_the_environment(make_client, aiohttp_server, monkeypatch, variable):
    fake = await start(aiohttp_server, CohereFake(api_key=KEY))
    for name in ("COHERE_API_KEY", "CO_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(variable, KEY)
    client = await make_client({"model_list": [
        {"model_name": "m", "litellm_params": {"model": "command-a-03-2025", "api_base": fake.root_url,
                                               "num_retries": 0}}]})
    status, answer, _ = await post(client, "/v1/chat/completions", {"model": "m", "messages": user("hi")})
    assert status == 200, answer
    assert fake.last.headers["Authorization"] == f"Bearer {KEY}"
    monkeypatch.setenv(variable, "co-wrong-key-00000000000")
    status, answer, _ = await post(client, "/v1/chat/completions", {"model": "m", "messages": user("hi")})
    assert status == 401
    assert "co-wrong-key-00000000000" not in assert_envelope(answer)["message"]


def test_cohere_default_api_base():
    from sidecar.plugins import collect_providers, get_plugin_manager

    providers = collect_providers(get_plugin_manager())
    assert str(providers["cohere"].url({}, "/v2/chat")) == "https://api.cohere.com/v2/chat"
    assert str(providers["cohere_chat"].url({"api_base": "https://eu.cohere.example/v2/"}, "/v2/embed")) == \
        "https://eu.cohere.example/v2/embed"

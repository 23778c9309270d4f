"""The ``gemini`` provider (plugins/google) through the gateway, against an in-process Gemini API
(tests/fake_google.py), with the official ``openai`` SDK as the client: the request body Gemini
gets, answers and streams in OpenAI's spec, errors in the envelope with the router's kinds."""

from __future__ import annotations

import asyncio
import base64
import struct

import openai
import pytest
from fake_google import CACHED_TOKENS, CANDIDATE_TOKENS, PROMPT_TOKENS, RETRY_DELAY, THOUGHT_TOKENS, GoogleFake
from fake_upstreams import start
from openai_helpers import WEATHER_TOOL, assert_envelope, decode, post, user
from openai_spec import assert_valid

from sidecar import estimate_input_tokens
from sidecar.testing import deployment, stream_ending_in_error

KEY = "AIzaSyFAKE-gemini-key-0123456789"
WAIT = 10.0
TIME_TOOL = {"type": "function", "function": {"name": "get_time", "description": "Local time",
                                              "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}


def entry(name: str, model: str, api_base: str, **params) -> dict:
    return deployment(name, model, api_base=api_base, api_key=KEY, **params)


@pytest.fixture
async def google(aiohttp_server) -> GoogleFake:
    return await start(aiohttp_server, GoogleFake(api_key=KEY))


@pytest.fixture
async def gateway(make_client, openai_sdk, google):
    names = ["error-429", "error-500", "error-context", "blocked", "safety", "filtered", "long",
             "parallel", "error-first", "error-mid-stream", "cut", "no-finish"]
    client = await make_client({"model_list": [
        entry("flash", "gemini/gemini-2.5-flash", google.root_url, safety_settings=[
            {"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_ONLY_HIGH"}]),
        entry("old", "gemini/gemini-1.5-pro", google.root_url + "/v1beta"),
        entry("embed", "gemini/text-embedding-004", google.root_url),
        entry("thinker", "gemini/gemini-2.5-thinker", google.root_url),
        *(entry(n, f"gemini/{n}", google.root_url) for n in names),
    ]})
    sdk = openai_sdk(client, timeout=WAIT)
    return client, sdk


async def test_chat_request_translation_and_answer(gateway, google):
    _, sdk = gateway
    raw = await asyncio.wait_for(sdk.chat.completions.with_raw_response.create(
        model="flash", messages=[{"role": "system", "content": "Be brief."}, *user("Say"),
                                 {"role": "user", "content": [{"type": "text", "text": "hi"}]}],
        temperature=0.3, top_p=0.9, max_completion_tokens=64, stop="END", seed=7, presence_penalty=0.1,
        frequency_penalty=0.2, response_format={"type": "json_object"}, extra_body={"top_k": 20}), WAIT)
    assert raw.headers["x-litellm-model-id"] == "dep-flash"
    answer = decode(raw.content)
    assert_valid(answer, "CreateChatCompletionResponse")
    assert answer["choices"][0]["message"] == {"role": "assistant", "content": "Hello from Gemini. hi", "refusal": None}
    assert answer["choices"][0]["finish_reason"] == "stop"
    assert answer["id"] == "chatcmpl-resp-fake-1" and answer["model"] == "gemini-2.5-flash"
    assert answer["usage"]["prompt_tokens"] == PROMPT_TOKENS
    assert answer["usage"]["completion_tokens"] == CANDIDATE_TOKENS
    got = google.last
    assert (got.method, got.path, got.query) == ("POST", "/v1beta/models/gemini-2.5-flash:generateContent", {})
    assert got.headers["x-goog-api-key"] == KEY and "Authorization" not in got.headers
    assert got.body == {
        "contents": [{"role": "user", "parts": [{"text": "Say"}, {"text": "hi"}]}],  # one merged user turn
        "systemInstruction": {"parts": [{"text": "Be brief."}]},
        "generationConfig": {"topK": 20, "temperature": 0.3, "topP": 0.9, "maxOutputTokens": 64, "seed": 7,
                             "presencePenalty": 0.1, "frequencyPenalty": 0.2, "stopSequences": ["END"],
                             "responseMimeType": "application/json"},
        "safetySettings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_ONLY_HIGH"}],
    }


async def test_stream_chunks_and_usage(gateway, google):
    _, sdk = gateway
    stream = await asyncio.wait_for(sdk.chat.completions.create(
        model="flash", messages=user("Say hi"), n=2, stream=True, stream_options={"include_usage": True}), WAIT)
    chunks = [chunk async for chunk in stream]
    for chunk in chunks:
        assert_valid(chunk.model_dump(exclude_unset=True), "CreateChatCompletionStreamResponse")
    got = google.last
    assert (got.path, got.query) == ("/v1beta/models/gemini-2.5-flash:streamGenerateContent", {"alt": "sse"})
    assert got.body["generationConfig"] == {"candidateCount": 2}
    assert len({c.id for c in chunks}) == 1
    for index in (0, 1):
        mine = [c.choices[0] for c in chunks if c.choices and c.choices[0].index == index]
        assert mine[0].delta.role == "assistant"
        assert "".join(c.delta.content or "" for c in mine) == "Hello from Gemini. Say hi"
        assert [c.finish_reason for c in mine if c.finish_reason] == ["stop"]
    assert chunks[-1].choices == []
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (PROMPT_TOKENS, CANDIDATE_TOKENS)


async def test_tools_calls_and_results(gateway, google):
    client, sdk = gateway
    schema_tool = {"type": "function", "function": {"name": "lookup", "parameters": {
        "type": "object", "additionalProperties": False, "$defs": {"Unit": {"type": "string", "enum": ["c", "f"]}},
        "properties": {"unit": {"$ref": "#/$defs/Unit"}, "days": {"type": ["integer", "null"]}}, "required": ["unit"]}}}
    completion = await asyncio.wait_for(sdk.chat.completions.create(
        model="flash", messages=user("Weather in Paris?"), tools=[WEATHER_TOOL, schema_tool],
        tool_choice={"type": "function", "function": {"name": "get_weather"}}), WAIT)
    sent = google.last.body
    assert sent["tools"] == [{"functionDeclarations": [
        {"name": "get_weather", "description": "Current weather in a city", "parameters": {
            "type": "OBJECT", "properties": {"location": {"type": "STRING"}}, "required": ["location"]}},
        {"name": "lookup", "parameters": {"type": "OBJECT", "required": ["unit"], "properties": {
            "unit": {"type": "STRING", "enum": ["c", "f"], "format": "enum"},
            "days": {"type": "INTEGER", "nullable": True}}}}]}]
    assert sent["toolConfig"] == {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}}
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    [call] = choice.message.tool_calls
    assert call.function.name == "get_weather" and decode(call.function.arguments) == {"location": "Paris"}
    assert call.id.endswith("__thought__c2lnbmF0dXJl")  # the thought signature rides in the id

    history = [*user("Weather in Paris?"), choice.message.model_dump(exclude_none=True),
               {"role": "tool", "tool_call_id": call.id, "content": "18C, sunny"}]
    status, answer, _ = await post(client, "/v1/chat/completions",
                                   {"model": "flash", "messages": history, "tools": [WEATHER_TOOL], "tool_choice": "auto"})
    assert status == 200, answer
    assert google.last.body["contents"] == [
        {"role": "user", "parts": [{"text": "Weather in Paris?"}]},
        {"role": "model", "parts": [{"functionCall": {"name": "get_weather", "args": {"location": "Paris"}},
                                     "thoughtSignature": "c2lnbmF0dXJl"}]},
        {"role": "user", "parts": [{"functionResponse": {"name": "get_weather", "response": {"content": "18C, sunny"}}}]},
    ]
    assert google.last.body["toolConfig"] == {"functionCallingConfig": {"mode": "AUTO"}}
    assert answer["choices"][0]["message"]["content"] == "Hello from Gemini. 18C, sunny"


@pytest.mark.parametrize(("choice", "config"), [("none", {"mode": "NONE"}), ("required", {"mode": "ANY"})])
async def test_tool_choice_modes(gateway, google, choice, config):
    client, _ = gateway
    status, answer, _ = await post(client, "/v1/chat/completions", {
        "model": "flash", "messages": user("hi"), "tools": [WEATHER_TOOL], "tool_choice": choice})
    assert status == 200, answer
    assert google.last.body["toolConfig"] == {"functionCallingConfig": config}
    assert answer["choices"][0]["finish_reason"] == ("stop" if choice == "none" else "tool_calls")


async def test_parallel_tool_calls_streamed_and_answered_together(gateway, google):
    client, sdk = gateway
    body = {"model": "parallel", "messages": user("Weather and time in Paris?"), "tools": [WEATHER_TOOL, TIME_TOOL]}
    stream = await asyncio.wait_for(sdk.chat.completions.create(**body, stream=True), WAIT)
    chunks = [chunk async for chunk in stream]
    pieces = [p for c in chunks if c.choices for p in c.choices[0].delta.tool_calls or []]
    assert [(p.index, p.function.name, decode(p.function.arguments)) for p in pieces] == \
        [(0, "get_weather", {"location": "Paris"}), (1, "get_time", {"city": "Paris"})]
    assert chunks[-1].choices[0].finish_reason == "tool_calls"
    calls = [{"id": p.id, "type": "function", "function": {"name": p.function.name, "arguments": p.function.arguments}}
             for p in pieces]
    history = [*user("Weather and time in Paris?"), {"role": "assistant", "tool_calls": calls},
               {"role": "tool", "tool_call_id": calls[0]["id"], "content": "18C"},
               {"role": "tool", "tool_call_id": calls[1]["id"], "content": "noon"}]
    status, answer, _ = await post(client, "/v1/chat/completions", {**body, "messages": history})
    assert status == 200, answer
    assert google.last.body["contents"][-1] == {"role": "user", "parts": [
        {"functionResponse": {"name": "get_weather", "response": {"content": "18C"}}},
        {"functionResponse": {"name": "get_time", "response": {"content": "noon"}}}]}


async def test_images_inline_and_by_url(gateway, google):
    client, _ = gateway
    content = [{"type": "text", "text": "What is it?"},
               {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
               {"type": "image_url", "image_url": {"url": "https://example.com/cat.webp"}}]
    status, answer, _ = await post(client, "/v1/chat/completions",
                                   {"model": "flash", "messages": [{"role": "user", "content": content}]})
    assert status == 200, answer
    assert google.last.body["contents"] == [{"role": "user", "parts": [
        {"text": "What is it?"}, {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}},
        {"fileData": {"mimeType": "image/webp", "fileUri": "https://example.com/cat.webp"}}]}]


async def test_reasoning_effort_and_thoughts(gateway, google):
    client, sdk = gateway
    status, answer, _ = await post(client, "/v1/chat/completions", {
        "model": "thinker", "messages": user("Why?"), "reasoning_effort": "low"})
    assert status == 200, answer
    assert_valid(answer, "CreateChatCompletionResponse")
    assert google.last.body["generationConfig"] == {"thinkingConfig": {"thinkingBudget": 1024, "includeThoughts": True}}
    message = answer["choices"][0]["message"]
    assert (message["reasoning_content"], message["content"]) == ("Let me think.", "Hello from Gemini. Why?")
    assert answer["usage"] == {
        "prompt_tokens": PROMPT_TOKENS, "completion_tokens": CANDIDATE_TOKENS + THOUGHT_TOKENS,
        "total_tokens": PROMPT_TOKENS + CANDIDATE_TOKENS + THOUGHT_TOKENS,
        "prompt_tokens_details": {"cached_tokens": CACHED_TOKENS},
        "completion_tokens_details": {"reasoning_tokens": THOUGHT_TOKENS}}
    stream = await asyncio.wait_for(sdk.chat.completions.create(
        model="thinker", messages=user("Why?"), reasoning_effort="minimal", stream=True), WAIT)
    chunks = [chunk async for chunk in stream]
    assert google.last.body["generationConfig"]["thinkingConfig"] == {"thinkingBudget": 128, "includeThoughts": True}
    assert [c.choices[0].delta.model_extra.get("reasoning_content") for c in chunks][0] == "Let me think."


async def test_json_schema_response_format(gateway, google):
    client, _ = gateway
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"],
              "additionalProperties": False}
    fmt = {"type": "json_schema", "json_schema": {"name": "a", "schema": schema, "strict": True}}
    for model, expected in (("flash", {"responseJsonSchema": schema}), ("old", {"responseSchema": {
            "type": "OBJECT", "properties": {"answer": {"type": "STRING"}}, "required": ["answer"]}})):
        status, answer, _ = await post(client, "/v1/chat/completions",
                                       {"model": model, "messages": user("hi"), "response_format": fmt})
        assert status == 200, answer
        assert google.last.body["generationConfig"] == {"responseMimeType": "application/json", **expected}
    assert google.last.path == "/v1beta/models/gemini-1.5-pro:generateContent"  # /v1beta in api_base not doubled


@pytest.mark.parametrize(("model", "reason"), [("long", "length"), ("filtered", "content_filter")])
async def test_finish_reasons(gateway, model, reason):
    client, _ = gateway
    status, answer, _ = await post(client, "/v1/chat/completions", {"model": model, "messages": user("hi")})
    assert status == 200, answer
    assert answer["choices"][0]["finish_reason"] == reason


@pytest.mark.parametrize(("body", "param"), [
    ({"logit_bias": {"1": 1}}, "logit_bias"),
    ({"parallel_tool_calls": False, "tools": [WEATHER_TOOL]}, "parallel_tool_calls"),
    ({"tools": [{"type": "web_search"}]}, "tools"),
])
async def test_features_without_an_equivalent_are_400s(gateway, google, body, param):
    client, _ = gateway
    before = len(google.received)
    status, answer, _ = await post(client, "/v1/chat/completions", {"model": "flash", "messages": user("hi"), **body})
    assert status == 400
    assert assert_envelope(answer)["param"] == param
    assert len(google.received) == before


async def test_reasoning_effort_only_where_the_model_thinks(gateway):
    client, _ = gateway
    status, answer, _ = await post(client, "/v1/chat/completions",
                                   {"model": "old", "messages": user("hi"), "reasoning_effort": "low"})
    assert status == 400 and assert_envelope(answer)["param"] == "reasoning_effort"
    status, answer, _ = await post(client, "/v1/chat/completions", {
        "model": "old", "messages": user("hi"), "reasoning_effort": "low", "drop_params": True})
    assert status == 200, answer
    resp = await client.get("/model_group/info", params={"model_group": "flash"})
    [row] = (await resp.json())["data"]
    assert "reasoning_effort" in row["supported_openai_params"] and "gemini" in row["providers"]


async def test_a_429_gives_the_retry_delay_of_its_retry_info_as_retry_after(gateway):
    _, sdk = gateway
    with pytest.raises(openai.RateLimitError) as limited:
        await asyncio.wait_for(sdk.chat.completions.create(model="error-429", messages=user("hi")), WAIT)
    assert limited.value.response.headers["Retry-After"] == RETRY_DELAY.removesuffix("s")


@pytest.mark.parametrize(("model", "status", "kind_words"), [
    ("error-429", 429, "Resource has been exhausted"),
    ("error-context", 400, "exceeds the maximum number of tokens"),
    ("error-500", 502, "internal error"),
    ("blocked", 400, "blocked the prompt (SAFETY)"),
    ("safety", 400, "blocked the answer (SAFETY)"),
])
@pytest.mark.parametrize("stream", [False, True])
async def test_errors_are_envelopes(gateway, model, status, kind_words, stream):
    client, _ = gateway
    code, answer, _ = await post(client, "/v1/chat/completions", {"model": model, "messages": user("hi"), "stream": stream})
    assert code == status, answer
    assert kind_words in assert_envelope(answer)["message"]


async def test_error_kinds_drive_the_router(make_client, google):
    """context_window and content_policy failures go to their fallbacks; a 429 is a rate limit."""
    client = await make_client({
        "model_list": [entry("ctx", "gemini/error-context", google.root_url),
                       entry("blk", "gemini/blocked", google.root_url),
                       entry("rl", "gemini/error-429", google.root_url),
                       entry("ok", "gemini/gemini-2.5-flash", google.root_url)],
        "router_settings": {"context_window_fallbacks": [{"ctx": ["ok"]}], "content_policy_fallbacks": [{"blk": ["ok"]}],
                            "fallbacks": [{"rl": ["ok"]}]}})
    for name in ("ctx", "blk", "rl"):
        status, answer, headers = await post(client, "/v1/chat/completions", {"model": name, "messages": user("hi")})
        assert status == 200, (name, answer)
        assert headers["x-litellm-model-group"] == "ok" and headers["x-litellm-attempted-fallbacks"] == "1"


async def test_stream_error_before_the_first_chunk_is_a_plain_error(gateway):
    client, _ = gateway
    status, answer, _ = await post(client, "/v1/chat/completions",
                                   {"model": "error-first", "messages": user("hi"), "stream": True})
    assert status == 429
    assert assert_envelope(answer)["type"] == "rate_limit_error"


@pytest.mark.parametrize(("model", "words"), [
    ("cut", "closed the connection mid-response"), ("no-finish", "before a finishReason"),
    ("error-mid-stream", "An internal error has occurred mid-stream")])
async def test_stream_failure_after_the_first_chunk_ends_with_an_error_event(gateway, model, words):
    client, _ = gateway
    resp = await asyncio.wait_for(client.post("/v1/chat/completions", json={
        "model": model, "messages": user("Say hi there"), "stream": True}), WAIT)
    raw = await asyncio.wait_for(resp.read(), WAIT)
    assert resp.status == 200
    chunks, error = stream_ending_in_error(raw)
    assert chunks[0]["choices"][0]["delta"]["content"] == "Hello"
    assert words in error["message"]


async def test_embeddings(gateway, google):
    client, _ = gateway
    status, answer, _ = await post(client, "/v1/embeddings", {"model": "embed", "input": ["a", "b"], "dimensions": 4})
    assert status == 200, answer
    assert_valid(answer, "CreateEmbeddingResponse")
    assert [d["embedding"] for d in answer["data"]] == [[1.0, 0.5, 0.5, 0.5], [2.0, 0.5, 0.5, 0.5]]
    assert answer["usage"] == {"prompt_tokens": 2, "total_tokens": 2}  # (Gemini reports none: one a text, at least)
    got = google.last
    assert got.path == "/v1beta/models/text-embedding-004:batchEmbedContents"
    assert got.body == {"requests": [
        {"model": "models/text-embedding-004", "content": {"parts": [{"text": t}]}, "outputDimensionality": 4}
        for t in ("a", "b")]}
    status, answer, _ = await post(client, "/v1/embeddings", {"model": "embed", "input": "a", "encoding_format": "base64"})
    assert status == 200, answer
    assert list(struct.unpack("<3f", base64.b64decode(answer["data"][0]["embedding"]))) == [1.0, 0.5, 0.5]
    text = "forty characters of text to embed here.."
    status, answer, _ = await post(client, "/v1/embeddings", {"model": "embed", "input": text})
    assert status == 200 and answer["usage"]["prompt_tokens"] == estimate_input_tokens({"input": text}) == 10


async def test_key_from_the_environment_and_a_bad_key(make_client, google, monkeypatch, caplog):
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    monkeypatch.setenv("GOOGLE_API_KEY", KEY)
    client = await make_client({"model_list": [{"model_name": "m", "litellm_params": {
        "model": "gemini/gemini-2.5-flash", "api_base": google.root_url, "num_retries": 0}}]})
    status, answer, _ = await post(client, "/v1/chat/completions", {"model": "m", "messages": user("hi")})
    assert status == 200, answer
    assert google.last.headers["x-goog-api-key"] == KEY
    wrong = "AIzaSyWRONG-key-99999999999"
    monkeypatch.setenv("GEMINI_API_KEY", wrong)  # GEMINI_API_KEY comes first
    status, answer, _ = await post(client, "/v1/chat/completions", {"model": "m", "messages": user("hi")})
    assert status == 401
    error = assert_envelope(answer)
    assert "API key not valid" in error["message"] and error["type"] == "authentication_error"
    assert google.last.headers["x-goog-api-key"] == wrong
    assert wrong not in caplog.text and KEY not in caplog.text

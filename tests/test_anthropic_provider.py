"""The ``anthropic`` plugin through the gateway, against an in-process Anthropic Messages API
(tests/fake_anthropic.py), with the official ``openai`` SDK as the client: what goes upstream,
field by field, and what comes back, plain and streamed, validated against OpenAI's spec."""

from __future__ import annotations

import asyncio
import logging
import sys
from typing import Any

import openai
import pytest
from fake_anthropic import (
    CACHE_READ,
    CACHE_WRITE,
    INPUT_TOKENS,
    OUTPUT_TOKENS,
    SIGNATURE,
    THINKING,
    THINKING_TOKENS,
    AnthropicFake,
)
from fake_upstreams import start
from gateway_helpers import assert_valid_stream, stream_text
from openai_helpers import WEATHER_TOOL, assert_envelope, decode, post, user
from openai_spec import assert_valid

from sidecar.testing import deployment, stream_ending_in_error

KEY = "sk-ant-api03-test-key-0123456789"
WAIT = 10.0
TIME_TOOL = {"type": "function", "function": {"name": "get_time", "description": "Local time in a city",
                                              "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="


def entry(name: str, model: str, api_base: str | None, **params: Any) -> dict[str, Any]:
    base = {} if api_base is None else {"api_base": api_base}
    return deployment(name, model, **{"api_key": KEY, **base, **params})


@pytest.fixture
async def fake(aiohttp_server) -> AnthropicFake:
    return await start(aiohttp_server, AnthropicFake(api_key=KEY))


NAMES = ["claude", "cached", "thinker", "long", "refusal", "stopper", "error-overloaded", "error-rate",
         "error-context", "error-server", "overloaded-first", "error-mid-stream", "cut", "no-stop"]


@pytest.fixture
async def gateway(make_client, openai_sdk, fake):
    """The sidecar with one deployment per fake behaviour, and an SDK client of it."""
    client = await make_client({"model_list": [
        entry("claude", "anthropic/claude-sonnet-4-5", fake.root_url,
              extra_headers={"anthropic-beta": "prompt-caching-2024-07-31"}),
        *(entry(name, f"anthropic/{name}", fake.root_url + "/v1") for name in NAMES[1:]),
    ]})
    sdk = openai_sdk(client, timeout=WAIT)
    return client, sdk


async def bounded(awaitable: Any) -> Any:
    return await asyncio.wait_for(awaitable, WAIT)


async def collect(sdk: openai.AsyncOpenAI, **body: Any) -> list[Any]:
    """A streamed chat's chunks, each checked against OpenAI's spec."""
    async def run() -> list[Any]:
        stream = await sdk.chat.completions.create(**body, stream=True)
        return [chunk async for chunk in stream]
    chunks = await bounded(run())
    for chunk in chunks:
        assert_valid(chunk.model_dump(exclude_unset=True), "CreateChatCompletionStreamResponse")
    return chunks


# ---------------------------------------------------------------- requests and answers


async def test_chat_request_is_translated_field_by_field(gateway, fake):
    _, sdk = gateway
    messages = [
        {"role": "system", "content": [{"type": "text", "text": "You are terse.",
                                        "cache_control": {"type": "ephemeral"}}]},
        {"role": "user", "content": "Hi"},
        {"role": "user", "content": [{"type": "text", "text": "Say hi"}], "cache_control": {"type": "ephemeral"}},
        {"role": "assistant", "content": "Hi!"},
        {"role": "developer", "content": "Answer in English."},
        {"role": "user", "content": "Again"},
    ]
    raw = await bounded(sdk.chat.completions.with_raw_response.create(
        model="claude", messages=messages, max_completion_tokens=300, temperature=0.3, top_p=0.9, stop="END",
        user="user-42", extra_body={"top_k": 5}))
    assert raw.headers["x-litellm-model-id"] == "dep-claude"
    answer = decode(raw.content)
    assert_valid(answer, "CreateChatCompletionResponse")
    assert answer["id"] == "msg_013Zva2CMHLNnXjNJJKqJ2EF" and answer["model"] == "claude-sonnet-4-5"
    assert answer["choices"] == [{"index": 0, "finish_reason": "stop", "logprobs": None,
                                  "message": {"role": "assistant", "content": "Hello from Anthropic. Again",
                                              "refusal": None}}]
    assert answer["usage"] == {"prompt_tokens": INPUT_TOKENS, "completion_tokens": OUTPUT_TOKENS,
                               "total_tokens": INPUT_TOKENS + OUTPUT_TOKENS, "prompt_tokens_details": {"cached_tokens": 0}}
    got = fake.last
    assert (got.method, got.path) == ("POST", "/v1/messages")
    assert got.headers["x-api-key"] == KEY
    assert got.headers["anthropic-version"] == "2023-06-01"
    assert got.headers["anthropic-beta"] == "prompt-caching-2024-07-31"
    assert "Authorization" not in got.headers
    assert got.body == {
        "model": "claude-sonnet-4-5",
        "system": [{"type": "text", "text": "You are terse.", "cache_control": {"type": "ephemeral"}},
                   {"type": "text", "text": "Answer in English."}],
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "Hi"},
                                         {"type": "text", "text": "Say hi", "cache_control": {"type": "ephemeral"}}]},
            {"role": "assistant", "content": [{"type": "text", "text": "Hi!"}]},
            {"role": "user", "content": [{"type": "text", "text": "Again"}]},
        ],
        "max_tokens": 300, "temperature": 0.3, "top_p": 0.9, "stop_sequences": ["END"],
        "metadata": {"user_id": "user-42"}, "top_k": 5,
    }


@pytest.mark.parametrize(("model", "extra", "max_tokens"), [
    ("claude", {}, 64000),  # the catalog's max output for claude-sonnet-4-5
    ("long", {}, 4096),  # a model the catalog does not know
    ("long", {"reasoning_effort": "high"}, 4096 + 4096),  # the thinking budget must stay below max_tokens
    ("claude", {"max_tokens": 77}, 77),
    ("claude", {"max_tokens": 77, "max_completion_tokens": 88}, 88),
])
async def test_max_tokens_is_always_sent(gateway, fake, model, extra, max_tokens):
    client, _ = gateway
    status, answer, _ = await post(client, "/v1/chat/completions", {"model": model, "messages": user("hi"), **extra})
    assert status == 200, answer
    assert fake.last.body["max_tokens"] == max_tokens


async def test_stream_is_openai_chunks_with_usage(gateway, fake):
    _, sdk = gateway
    chunks = await collect(sdk, model="cached", messages=user("Say hi"), stream_options={"include_usage": True})
    assert fake.last.body["stream"] is True and "stream_options" not in fake.last.body
    assert chunks[0].choices[0].delta.role == "assistant"
    assert all(c.choices[0].delta.role is None for c in chunks[1:] if c.choices)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Hello from Anthropic. Say hi"
    assert len({c.id for c in chunks}) == 1 and chunks[0].id == "msg_013Zva2CMHLNnXjNJJKqJ2EF"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    last = chunks[-1]
    assert last.choices == []
    prompt = INPUT_TOKENS + CACHE_READ + CACHE_WRITE
    assert last.usage.model_dump(exclude_none=True) == {
        "prompt_tokens": prompt, "completion_tokens": OUTPUT_TOKENS, "total_tokens": prompt + OUTPUT_TOKENS,
        "prompt_tokens_details": {"cached_tokens": CACHE_READ, "cache_write_tokens": CACHE_WRITE}}


async def test_cached_tokens_in_a_plain_answer(gateway):
    client, _ = gateway
    status, answer, _ = await post(client, "/v1/chat/completions", {"model": "cached", "messages": user("hi")})
    assert status == 200, answer
    assert_valid(answer, "CreateChatCompletionResponse")
    assert answer["usage"]["prompt_tokens"] == INPUT_TOKENS + CACHE_READ + CACHE_WRITE
    assert answer["usage"]["prompt_tokens_details"] == {"cached_tokens": CACHE_READ, "cache_write_tokens": CACHE_WRITE}


@pytest.mark.parametrize(("model", "reason"), [("long", "length"), ("refusal", "content_filter"), ("stopper", "stop")])
@pytest.mark.parametrize("stream", [False, True])
async def test_finish_reasons(gateway, model, reason, stream):
    _, sdk = gateway
    if stream:
        chunks = await collect(sdk, model=model, messages=user("hi"))
        assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == reason
    else:
        completion = await bounded(sdk.chat.completions.create(model=model, messages=user("hi")))
        assert completion.choices[0].finish_reason == reason


# ---------------------------------------------------------------- tools


@pytest.mark.parametrize(("tool_choice", "parallel", "sent"), [
    ("auto", None, {"type": "auto"}),
    ("required", None, {"type": "any"}),
    ({"type": "function", "function": {"name": "get_time"}}, None, {"type": "tool", "name": "get_time"}),
    (None, False, {"type": "auto", "disable_parallel_tool_use": True}),
    ("required", False, {"type": "any", "disable_parallel_tool_use": True}),
])
async def test_tool_definitions_and_choice(gateway, fake, tool_choice, parallel, sent):
    client, _ = gateway
    body = {"model": "claude", "messages": user("Weather?"), "tools": [WEATHER_TOOL, TIME_TOOL]}
    if tool_choice is not None:
        body["tool_choice"] = tool_choice
    if parallel is not None:
        body["parallel_tool_calls"] = parallel
    status, answer, _ = await post(client, "/v1/chat/completions", body)
    assert status == 200, answer
    assert fake.last.body["tools"] == [
        {"name": "get_weather", "description": "Current weather in a city",
         "input_schema": WEATHER_TOOL["function"]["parameters"]},
        {"name": "get_time", "description": "Local time in a city", "input_schema": TIME_TOOL["function"]["parameters"]},
    ]
    assert fake.last.body["tool_choice"] == sent


async def test_tool_choice_none_answers_text(gateway, fake):
    client, _ = gateway
    status, answer, _ = await post(client, "/v1/chat/completions", {
        "model": "claude", "messages": user("Weather?"), "tools": [WEATHER_TOOL], "tool_choice": "none"})
    assert status == 200, answer
    assert fake.last.body["tool_choice"] == {"type": "none"}
    assert answer["choices"][0]["message"]["content"] == "Hello from Anthropic. Weather?"


async def test_parallel_tool_calls_plain_streamed_and_answered(gateway, fake):
    _, sdk = gateway
    body = {"model": "claude", "messages": user("Weather and time in Paris?"), "tools": [WEATHER_TOOL, TIME_TOOL]}
    completion = await bounded(sdk.chat.completions.create(**body))
    assert_valid(completion.model_dump(exclude_unset=True), "CreateChatCompletionResponse")
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    assert [(c.id, c.function.name, decode(c.function.arguments)) for c in choice.message.tool_calls] == [
        ("toolu_01A09q90qw90lq917835l0", "get_weather", {"location": "Paris"}),
        ("toolu_01A09q90qw90lq917835l1", "get_time", {"city": "Paris"})]

    chunks = await collect(sdk, **body)
    calls: dict[int, dict[str, str]] = {}
    for piece in (p for c in chunks if c.choices for p in c.choices[0].delta.tool_calls or []):
        call = calls.setdefault(piece.index, {"id": "", "name": "", "arguments": ""})
        call["id"] += piece.id or ""
        call["name"] += piece.function.name or ""
        call["arguments"] += piece.function.arguments or ""
    assert [(c["id"], c["name"], decode(c["arguments"])) for c in calls.values()] == [
        (t.id, t.function.name, decode(t.function.arguments)) for t in choice.message.tool_calls]
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"

    # the results go back as tool_result blocks in one user turn, after the assistant's tool_use blocks
    history = [*user("Weather and time in Paris?"), choice.message.model_dump(exclude_none=True),
               {"role": "tool", "tool_call_id": choice.message.tool_calls[0].id, "content": "18C, sunny"},
               {"role": "tool", "tool_call_id": choice.message.tool_calls[1].id,
                "content": [{"type": "text", "text": "14:05"}], "cache_control": {"type": "ephemeral"}}]
    completion = await bounded(sdk.chat.completions.create(**{**body, "messages": history}))
    assert completion.choices[0].message.content == "Hello from Anthropic. 18C, sunny 14:05"
    assert fake.last.body["messages"][1:] == [
        {"role": "assistant", "content": [
            {"type": "tool_use", "id": "toolu_01A09q90qw90lq917835l0", "name": "get_weather", "input": {"location": "Paris"}},
            {"type": "tool_use", "id": "toolu_01A09q90qw90lq917835l1", "name": "get_time", "input": {"city": "Paris"}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_01A09q90qw90lq917835l0", "content": "18C, sunny"},
            {"type": "tool_result", "tool_use_id": "toolu_01A09q90qw90lq917835l1",
             "content": [{"type": "text", "text": "14:05"}], "cache_control": {"type": "ephemeral"}}]},
    ]


@pytest.mark.parametrize("stream", [False, True])
async def test_response_format_json_schema_is_a_forced_tool_answered_as_content(gateway, fake, stream):
    _, sdk = gateway
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    body = {"model": "claude", "messages": user("Where?"),
            "response_format": {"type": "json_schema", "json_schema": {"name": "place", "schema": schema}}}
    if stream:
        chunks = await collect(sdk, **body)
        content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert not any(c.choices[0].delta.tool_calls for c in chunks if c.choices)
        reason = [c.choices[0].finish_reason for c in chunks if c.choices][-1]
    else:
        completion = await bounded(sdk.chat.completions.create(**body))
        assert completion.choices[0].message.tool_calls is None
        content, reason = completion.choices[0].message.content, completion.choices[0].finish_reason
    assert decode(content) == {"city": "Paris"} and reason == "stop"
    assert fake.last.body["tools"] == [{"name": "json_tool_call", "input_schema": schema}]
    assert fake.last.body["tool_choice"] == {"type": "tool", "name": "json_tool_call"}


# ---------------------------------------------------------------- images and thinking


async def test_images_as_base64_and_url_sources(gateway, fake):
    client, _ = gateway
    content = [{"type": "text", "text": "Compare"},
               {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
               {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg", "detail": "high"},
                "cache_control": {"type": "ephemeral"}}]
    status, answer, _ = await post(client, "/v1/chat/completions",
                                   {"model": "claude", "messages": [{"role": "user", "content": content}]})
    assert status == 200, answer
    assert fake.last.body["messages"] == [{"role": "user", "content": [
        {"type": "text", "text": "Compare"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"},
         "cache_control": {"type": "ephemeral"}}]}]


async def test_reasoning_effort_thinks_and_returns_reasoning_content(gateway, fake):
    _, sdk = gateway
    raw = await bounded(sdk.chat.completions.with_raw_response.create(
        model="claude", messages=user("Hi"), reasoning_effort="high"))
    answer = decode(raw.content)
    assert_valid(answer, "CreateChatCompletionResponse")
    assert fake.last.body["thinking"] == {"type": "enabled", "budget_tokens": 4096}
    message = answer["choices"][0]["message"]
    assert message["reasoning_content"] == THINKING and message["content"] == "Hello from Anthropic. Hi"
    assert message["thinking_blocks"] == [{"type": "thinking", "thinking": THINKING, "signature": SIGNATURE}]
    assert answer["usage"]["completion_tokens_details"] == {"reasoning_tokens": THINKING_TOKENS}

    # the signed thinking goes back with the assistant's turn, first, unchanged
    history = [*user("Hi"), message, *user("And now?")]
    status, _, _ = await post(gateway[0], "/v1/chat/completions", {
        "model": "claude", "messages": history, "thinking": {"type": "enabled", "budget_tokens": 2000}})
    assert status == 200
    assert fake.last.body["thinking"] == {"type": "enabled", "budget_tokens": 2000}
    assert fake.last.body["messages"][1]["content"] == [
        {"type": "thinking", "thinking": THINKING, "signature": SIGNATURE},
        {"type": "text", "text": "Hello from Anthropic. Hi"}]


async def test_thinking_streams_as_reasoning_content(gateway):
    _, sdk = gateway
    chunks = await collect(sdk, model="thinker", messages=user("Hi"), stream_options={"include_usage": True})
    deltas = [c.choices[0].delta for c in chunks if c.choices]
    assert "".join(d.reasoning_content or "" for d in deltas if hasattr(d, "reasoning_content")) == THINKING
    signed = [b for c in chunks if c.choices for b in (c.choices[0].delta.model_dump().get("thinking_blocks") or [])]
    assert signed == [{"type": "thinking", "thinking": "", "signature": SIGNATURE}]
    assert "".join(d.content or "" for d in deltas) == "Hello from Anthropic. Hi"
    # the stream's usage has no thinking_tokens: estimated from the thinking text, ~4 characters a token
    assert chunks[-1].usage.completion_tokens_details.reasoning_tokens == -(-len(THINKING) // 4)


# ---------------------------------------------------------------- what has no equivalent


@pytest.mark.parametrize(("body", "param", "words"), [
    ({"reasoning_effort": "minimal"}, "reasoning_effort", "'minimal' has no equivalent"),
    ({"tools": [{"type": "custom", "custom": {"name": "grep"}}]}, "tools", "not 'custom' tools"),
    ({"messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": "AAA=", "format": "wav"}}]}]},
     "messages", "'input_audio' content"),
    ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/bmp;base64,Qk0="}}]}]},
     "messages", "not image/bmp"),
    ({"logprobs": True}, "logprobs", "does not support the parameter 'logprobs'"),
    ({"n": 2}, "n", "does not support the parameter 'n'"),
])
async def test_what_anthropic_cannot_do_is_a_400_naming_it(gateway, fake, body, param, words):
    client, _ = gateway
    sent = len(fake.received)
    status, answer, _ = await post(client, "/v1/chat/completions", {"model": "claude", "messages": user("hi"), **body})
    assert status == 400, answer
    error = assert_envelope(answer)
    assert error["param"] == param and words in error["message"]
    assert len(fake.received) == sent  # nothing went upstream


async def test_drop_params_drops_what_has_no_equivalent(gateway, fake):
    client, _ = gateway
    status, answer, _ = await post(client, "/v1/chat/completions", {
        "model": "claude", "messages": user("hi"), "logprobs": True, "seed": 3, "drop_params": True})
    assert status == 200, answer
    assert not {"logprobs", "seed", "drop_params"} & set(fake.last.body)


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(("model", "status", "words"), [
    ("error-overloaded", 429, "overloaded_error: Overloaded"),
    ("error-rate", 429, "rate_limit_error: This request would exceed the rate limit"),
    ("error-context", 400, "prompt is too long: 215000 tokens > 200000 maximum"),
    ("error-server", 502, "api_error: Internal server error"),
])
async def test_upstream_errors_keep_their_meaning(gateway, model, status, words, stream):
    client, _ = gateway
    got, answer, headers = await post(client, "/v1/chat/completions",
                                      {"model": model, "messages": user("hi"), "stream": stream})
    assert got == status, answer
    assert words in assert_envelope(answer)["message"]
    if model == "error-rate":
        assert headers["retry-after"] == "7"


async def test_error_event_before_any_content_is_a_plain_error_and_falls_back(make_client, fake):
    """A 200 stream whose first event is ``overloaded_error`` fails before its first chunk: the
    client gets a 429, and with a fallback configured the router serves it there."""
    client = await make_client({"model_list": [entry("busy", "anthropic/overloaded-first", fake.root_url),
                                               entry("backup", "anthropic/claude-sonnet-4-5", fake.root_url)]})
    status, answer, _ = await post(client, "/v1/chat/completions",
                                   {"model": "busy", "messages": user("hi"), "stream": True})
    assert status == 429 and "Overloaded" in assert_envelope(answer)["message"]
    client = await make_client({"model_list": [entry("busy", "anthropic/overloaded-first", fake.root_url),
                                               entry("backup", "anthropic/claude-sonnet-4-5", fake.root_url)],
                                "router_settings": {"fallbacks": [{"busy": ["backup"]}]}})
    resp = await bounded(client.post("/v1/chat/completions",
                                     json={"model": "busy", "messages": user("hi"), "stream": True}))
    raw = await bounded(resp.read())
    assert resp.status == 200, raw
    assert resp.headers["x-litellm-model-group"] == "backup"
    assert stream_text(assert_valid_stream(raw)) == "Hello from Anthropic. hi"


async def test_context_too_long_goes_to_the_context_window_fallback(make_client, fake):
    client = await make_client({"model_list": [entry("small", "anthropic/error-context", fake.root_url),
                                               entry("big", "anthropic/claude-sonnet-4-5", fake.root_url)],
                                "router_settings": {"context_window_fallbacks": [{"small": ["big"]}]}})
    status, answer, headers = await post(client, "/v1/chat/completions", {"model": "small", "messages": user("hi")})
    assert status == 200, answer
    assert headers["x-litellm-model-group"] == "big"


@pytest.mark.parametrize(("model", "words"), [("error-mid-stream", "overloaded_error: Overloaded"),
                                                ("cut", "mid-response"), ("no-stop", "before message_stop")])
async def test_stream_failure_after_the_first_chunk_ends_with_an_error_event(gateway, model, words):
    client, _ = gateway
    resp = await bounded(client.post("/v1/chat/completions",
                                     json={"model": model, "messages": user("Say hi there"), "stream": True}))
    raw = await bounded(resp.read())
    assert resp.status == 200
    chunks, error = stream_ending_in_error(raw)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": "Hello"}
    assert words in error["message"]


async def test_wrong_key_is_a_401_and_never_shown(make_client, fake, caplog):
    wrong = "sk-ant-api03-wrong-key-987654321"
    client = await make_client({"model_list": [entry("claude", "anthropic/claude-sonnet-4-5", fake.root_url,
                                                     api_key=wrong)]})
    with caplog.at_level(logging.DEBUG):
        status, answer, _ = await post(client, "/v1/chat/completions", {"model": "claude", "messages": user("hi")})
    assert status == 401
    error = assert_envelope(answer)
    assert error["type"] == "authentication_error" and "invalid x-api-key" in error["message"]
    assert fake.last.headers["x-api-key"] == wrong
    assert wrong not in caplog.text and "invalid x-api-key" in caplog.text


async def test_key_and_base_from_the_environment_are_masked(make_client, fake, monkeypatch, caplog):
    monkeypatch.setenv("ANTHROPIC_API_BASE", fake.root_url)
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    client = await make_client({"model_list": [
        {"model_name": "m", "litellm_params": {"model": "anthropic/claude-sonnet-4-5", "num_retries": 0}}]})
    status, answer, _ = await post(client, "/v1/chat/completions", {"model": "m", "messages": user("hi")})
    assert status == 200, answer
    assert fake.last.headers["x-api-key"] == KEY
    wrong = "env-anthropic-key-000000000"
    monkeypatch.setenv("ANTHROPIC_API_KEY", wrong)
    with caplog.at_level(logging.DEBUG):
        status, answer, _ = await post(client, "/v1/chat/completions", {"model": "m", "messages": user("hi")})
    assert status == 401
    assert wrong not in assert_envelope(answer)["message"] and wrong not in caplog.text


# ---------------------------------------------------------------- the plugin


async def test_model_group_info_lists_anthropics_params(make_client, fake):
    client = await make_client({"model_list": [entry("sonnet", "anthropic/claude-sonnet-4-5", fake.root_url),
                                               entry("old", "anthropic/claude-3-haiku-20240307", fake.root_url)]})
    resp = await bounded(client.get("/model_group/info"))
    rows = {row["model_group"]: row for row in (await resp.json())["data"]}
    assert rows["sonnet"]["providers"] == ["anthropic"]
    assert rows["sonnet"]["max_output_tokens"] == 64000
    params = rows["sonnet"]["supported_openai_params"]
    assert {"tools", "tool_choice", "response_format", "stop", "max_completion_tokens", "reasoning_effort"} <= set(params)
    assert not {"n", "logprobs", "seed"} & set(params)
    assert "reasoning_effort" in rows["old"]["supported_openai_params"]  # unknown to the catalog: may think


@pytest.mark.parametrize(("base", "url"), [("https://api.anthropic.com", "https://api.anthropic.com/v1/messages"),
                                             ("http://gw:8080/v1/", "http://gw:8080/v1/messages"),
                                             ("http://gw:8080/v1/messages", "http://gw:8080/v1/messages")])
def test_messages_url_is_not_doubled(base, url):
    from sidecar_anthropic.provider import messages_url

    assert str(messages_url(base)) == url


async def test_list_models(fake):
    import aiohttp
    from sidecar_anthropic import AnthropicProvider

    async with aiohttp.ClientSession() as session:
        names = await AnthropicProvider().list_models({"api_base": fake.root_url, "api_key": KEY}, session)
    assert names == ["claude-haiku-4-5-20251001", "claude-sonnet-4-5-20250929"]
    assert fake.last.query == {"limit": "1000"} and fake.last.headers["x-api-key"] == KEY


# ---------------------------------------------------------------- Claude on Azure AI Foundry


@pytest.mark.parametrize("base", ["https://res.services.ai.azure.com", "https://res.services.ai.azure.com/anthropic/",
                                  "https://res.services.ai.azure.com/anthropic/v1/messages",
                                  "https://res.services.ai.azure.com/models?api-version=2024-05-01-preview"])
def test_azure_ai_claude_url(base):
    from sidecar_openai.azure_ai import anthropic_url

    assert str(anthropic_url(base)) == "https://res.services.ai.azure.com/anthropic/v1/messages"


async def test_azure_ai_claude_is_served_by_the_anthropic_translation(make_client, fake):
    client = await make_client({"model_list": [entry("foundry-claude", "azure_ai/claude-sonnet-4-5", fake.root_url,
                                                     api_version="2024-05-01-preview")]})
    status, answer, headers = await post(client, "/v1/chat/completions", {
        "model": "foundry-claude", "messages": [{"role": "system", "content": "Be brief."}, *user("Say hi")],
        "reasoning_effort": "low"})
    assert status == 200, answer
    assert_valid(answer, "CreateChatCompletionResponse")
    assert answer["choices"][0]["message"]["content"] == "Hello from Anthropic. Say hi"
    got = fake.last
    assert (got.path, got.query) == ("/anthropic/v1/messages", {})
    assert got.headers["x-api-key"] == got.headers["api-key"] == KEY
    assert got.headers["anthropic-version"] == "2023-06-01" and "Authorization" not in got.headers
    assert got.body == {"model": "claude-sonnet-4-5", "system": [{"type": "text", "text": "Be brief."}],
                        "messages": [{"role": "user", "content": [{"type": "text", "text": "Say hi"}]}],
                        "max_tokens": 64000, "thinking": {"type": "enabled", "budget_tokens": 1024}}
    resp = await bounded(client.post("/v1/chat/completions", json={
        "model": "foundry-claude", "messages": user("Say hi"), "stream": True}))
    assert stream_text(assert_valid_stream(await bounded(resp.read()))) == "Hello from Anthropic. Say hi"
    resp = await bounded(client.get("/model_group/info"))
    [row] = (await resp.json())["data"]
    assert "reasoning_effort" in row["supported_openai_params"] and "n" not in row["supported_openai_params"]


async def test_azure_ai_claude_without_the_anthropic_plugin_is_a_400_naming_it(make_client, fake, monkeypatch):
    import sidecar_openai

    from sidecar.plugins import get_plugin_manager

    pm = get_plugin_manager(load_entrypoints=False)  # the openai plugin alone, as where anthropic's is not installed
    pm.register(sidecar_openai)
    monkeypatch.setitem(sys.modules, "sidecar_anthropic", None)  # import sidecar_anthropic now fails
    client = await make_client({"model_list": [entry("foundry-claude", "azure_ai/claude-sonnet-4-5", fake.root_url)]},
                               pm=pm)
    status, answer, _ = await post(client, "/v1/chat/completions", {"model": "foundry-claude", "messages": user("hi")})
    assert status == 400
    error = assert_envelope(answer)
    assert "install the anthropic plugin (sidecar-anthropic" in error["message"]
    assert error["code"] == "missing_plugin" and fake.received == []


async def test_public_translation_serves_another_host(fake):
    """What a Vertex AI provider will reuse: messages_chat at its own URL with its own headers,
    the body adapted (Vertex takes ``anthropic_version`` in the body)."""
    import aiohttp
    from sidecar_anthropic import API_VERSION, messages_chat

    from sidecar import ProviderCall

    def vertex_style(body: dict[str, Any]) -> None:
        body["anthropic_version"] = "vertex-2023-10-16"

    async with aiohttp.ClientSession() as session:
        call = ProviderCall(model="claude-sonnet-4-5", body={"messages": user("hi"), "max_tokens": 10}, request=None,
                            params={}, session=session, deployment_id="d")
        answer = await messages_chat(call, f"{fake.root_url}/v1/messages",
                                     {"x-api-key": KEY, "anthropic-version": API_VERSION}, "vertex_ai", vertex_style)
    assert fake.last.body == {"model": "claude-sonnet-4-5", "anthropic_version": "vertex-2023-10-16", "max_tokens": 10,
                              "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]}
    assert answer.choices[0].message.content == "Hello from Anthropic. hi"

"""The ``bedrock`` plugin through the gateway, against an in-process Bedrock runtime that checks
SigV4 signatures and streams in the AWS event-stream framing; chat with the official ``openai``
SDK as the client."""

from __future__ import annotations

import asyncio
import base64
import logging
import struct
import subprocess
import sys

import pytest
from fake_bedrock import ACCESS_KEY, REGION, SECRET_KEY, SESSION_TOKEN, THOUGHT, BedrockFake
from fake_upstreams import start
from openai_helpers import WEATHER_TOOL, assert_envelope, decode, post, user
from openai_spec import assert_valid

from sidecar.testing import deployment

WAIT = 10.0
CLAUDE = "anthropic.claude-3-5-sonnet-20240620-v1:0"
THINKER = "us.anthropic.claude-sonnet-4-20250514-v1:0"
IMAGE = "data:image/png;base64,iVBORw0KGgo="


def entry(name: str, model: str, fake: BedrockFake, **params) -> dict:
    creds = {"aws_access_key_id": fake.access_key, "aws_secret_access_key": fake.secret_key,
             "aws_region_name": fake.region}
    if fake.session_token:
        creds["aws_session_token"] = fake.session_token
    return deployment(name, f"bedrock/{model}", aws_bedrock_runtime_endpoint=fake.root_url, **{**creds, **params})


@pytest.fixture
async def bedrock(aiohttp_server) -> BedrockFake:
    return await start(aiohttp_server, BedrockFake())


@pytest.fixture
async def gateway(make_client, openai_sdk, bedrock):
    """The sidecar with Bedrock chat and embedding models, and an SDK client of it."""
    names = {"claude": CLAUDE, "tuned": CLAUDE, "thinker": THINKER, "llama": "meta.llama3-1-70b-instruct-v1:0",
             "titan": "amazon.titan-embed-text-v2:0", "cohere": "cohere.embed-english-v3",
             **{m: m for m in ("cut", "max-tokens", "guardrail")}}
    defaults = {"tuned": {"temperature": 0.1, "max_tokens": 100}}
    client = await make_client({"model_list": [entry(name, model, bedrock, **defaults.get(name, {}))
                                               for name, model in names.items()]})
    return client, openai_sdk(client, timeout=WAIT)


async def gateway_for(make_client, fake: BedrockFake, model: str, **params):
    return await make_client({"model_list": [entry("m", model, fake, **params)]})


async def read_stream(client, body: dict) -> tuple[int, list]:
    """A streamed chat's status and its ``data:`` payloads (decoded, ``[DONE]`` dropped)."""
    async def go():
        resp = await client.post("/v1/chat/completions", json={**body, "stream": True})
        return resp.status, await resp.read()
    status, raw = await asyncio.wait_for(go(), WAIT)
    events = [e[len(b"data: "):] for e in raw.split(b"\n\n") if e.strip()]
    if status == 200:
        assert events[-1] == b"[DONE]", raw
        events = events[:-1]
    return status, [decode(e) for e in events]


# ---------------------------------------------------------------- chat


async def test_chat_sends_a_signed_converse_request_and_answers_openai(gateway, bedrock):
    client, sdk = gateway
    raw = await asyncio.wait_for(sdk.chat.completions.with_raw_response.create(
        model="claude", messages=[{"role": "system", "content": "Be brief."}, *user("Say hi")],
        max_tokens=64, temperature=0.2, top_p=0.9, stop="END", extra_body={"top_k": 20}), WAIT)
    assert raw.headers["x-litellm-model-id"] == "dep-claude"
    answer = decode(raw.content)
    assert_valid(answer, "CreateChatCompletionResponse")
    assert answer["choices"][0]["message"] == {"role": "assistant", "content": "Hello from Bedrock. Say hi",
                                               "refusal": None}
    assert answer["choices"][0]["finish_reason"] == "stop"
    # cache reads and writes are input tokens, as LiteLLM counts them
    assert answer["usage"] == {"prompt_tokens": 16, "completion_tokens": 4, "total_tokens": 20,
                               "prompt_tokens_details": {"cached_tokens": 2}}
    got = bedrock.last
    assert bedrock.raw_paths[-1] == "/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse"
    assert got.body == {
        "messages": [{"role": "user", "content": [{"text": "Say hi"}]}],
        "system": [{"text": "Be brief."}],
        "inferenceConfig": {"maxTokens": 64, "temperature": 0.2, "topP": 0.9, "stopSequences": ["END"]},
        "additionalModelRequestFields": {"top_k": 20},
    }
    assert "X-Amz-Security-Token" not in got.headers

    # litellm_params may give defaults for the OpenAI params; the request's own win
    status, answer, _ = await post(client, "/v1/chat/completions",
                                   {"model": "tuned", "messages": user("hi"), "max_completion_tokens": 7})
    assert status == 200, answer
    assert bedrock.last.body["inferenceConfig"] == {"maxTokens": 7, "temperature": 0.1}


async def test_stream_is_openai_chunks_with_usage_last(gateway, bedrock):
    _, sdk = gateway
    stream = await asyncio.wait_for(sdk.chat.completions.create(
        model="claude", messages=user("Say hi"), max_completion_tokens=32, stream=True,
        stream_options={"include_usage": True}), WAIT)
    chunks = [chunk async for chunk in stream]
    for chunk in chunks:
        assert_valid(chunk.model_dump(exclude_unset=True), "CreateChatCompletionStreamResponse")
    assert bedrock.raw_paths[-1].endswith("%3A0/converse-stream")
    assert bedrock.last.body["inferenceConfig"] == {"maxTokens": 32}
    assert [c.choices[0].delta.role for c in chunks if c.choices].count("assistant") == 1
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Hello from Bedrock. Say hi"
    assert len({c.id for c in chunks}) == 1
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == []
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (16, 4)


async def test_tools_plain_streamed_and_answered(gateway, bedrock):
    client, sdk = gateway
    body = {"model": "claude", "messages": user("Weather in Paris?"), "tools": [WEATHER_TOOL], "tool_choice": "auto"}
    completion = await asyncio.wait_for(sdk.chat.completions.create(**body), WAIT)
    fn = WEATHER_TOOL["function"]
    assert bedrock.last.body["toolConfig"] == {
        "tools": [{"toolSpec": {"name": fn["name"], "description": fn["description"],
                                "inputSchema": {"json": fn["parameters"]}}}],
        "toolChoice": {"auto": {}}}
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    [call] = choice.message.tool_calls
    assert (call.id, call.function.name, decode(call.function.arguments)) == \
        ("tooluse_fake0001", "get_weather", {"location": "Paris"})

    stream = await asyncio.wait_for(sdk.chat.completions.create(**body, stream=True), WAIT)
    chunks = [chunk async for chunk in stream]
    pieces = [p for c in chunks for p in c.choices[0].delta.tool_calls or []]
    assert (pieces[0].index, pieces[0].id, pieces[0].function.name) == (0, "tooluse_fake0001", "get_weather")
    assert len(pieces) > 2 and all(p.index == 0 for p in pieces)
    assert decode("".join(p.function.arguments for p in pieces)) == {"location": "Paris"}
    assert chunks[-1].choices[0].finish_reason == "tool_calls"

    # the result goes back as a toolResult block in a user turn, after the toolUse
    history = [*user("Weather in Paris?"), choice.message.model_dump(exclude_none=True),
               {"role": "tool", "tool_call_id": call.id, "content": "18C, sunny"}]
    status, answer, _ = await post(client, "/v1/chat/completions",
                                   {"model": "claude", "messages": history, "tools": [WEATHER_TOOL]})
    assert status == 200, answer
    assert bedrock.last.body["messages"] == [
        {"role": "user", "content": [{"text": "Weather in Paris?"}]},
        {"role": "assistant", "content": [{"toolUse": {"toolUseId": "tooluse_fake0001", "name": "get_weather",
                                                       "input": {"location": "Paris"}}}]},
        {"role": "user", "content": [{"toolResult": {"toolUseId": "tooluse_fake0001",
                                                     "content": [{"text": "18C, sunny"}]}}]},
    ]
    assert "toolChoice" not in bedrock.last.body["toolConfig"]
    assert answer["choices"][0]["message"]["content"] == "Hello from Bedrock. 18C, sunny"


async def test_parallel_tool_results_share_one_user_turn(gateway, bedrock):
    client, _ = gateway
    calls = [{"id": f"call_{i}", "type": "function", "function": {"name": "get_weather",
                                                                  "arguments": f'{{"location": "{city}"}}'}}
             for i, city in enumerate(("Paris", "Rome"))]
    history = [*user("Weather?"), {"role": "assistant", "content": None, "tool_calls": calls},
               {"role": "tool", "tool_call_id": "call_0", "content": "18C"},
               {"role": "tool", "tool_call_id": "call_1", "content": "25C"}]
    status, answer, _ = await post(client, "/v1/chat/completions",
                                   {"model": "claude", "messages": history, "tools": [WEATHER_TOOL]})
    assert status == 200, answer
    sent = bedrock.last.body["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "user"]
    assert [b["toolUse"]["input"] for b in sent[1]["content"]] == [{"location": "Paris"}, {"location": "Rome"}]
    assert [b["toolResult"]["toolUseId"] for b in sent[2]["content"]] == ["call_0", "call_1"]


@pytest.mark.parametrize(("choice", "drop", "sent"), [
    ("required", False, {"any": {}}),
    ({"type": "function", "function": {"name": "get_weather"}}, False, {"tool": {"name": "get_weather"}}),
    ("none", True, None),
])
async def test_tool_choice_maps_to_converse(gateway, bedrock, choice, drop, sent):
    client, _ = gateway
    body = {"model": "claude", "messages": user("Weather?"), "tools": [WEATHER_TOOL], "tool_choice": choice}
    status, answer, _ = await post(client, "/v1/chat/completions", {**body, **({"drop_params": True} if drop else {})})
    assert status == 200, answer
    assert bedrock.last.body["toolConfig"].get("toolChoice") == sent


async def test_features_without_an_equivalent_are_400s_naming_them(gateway, bedrock):
    client, _ = gateway
    cases = [
        ({"model": "claude", "tools": [WEATHER_TOOL], "tool_choice": "none"}, "tool_choice", "tool_choice"),
        ({"model": "claude", "n": 2}, "n", "'n'"),
        ({"model": "claude", "logprobs": True}, "logprobs", "logprobs"),
        ({"model": "llama", "reasoning_effort": "low"}, "reasoning_effort", "reasoning_effort"),  # does not think
        ({"model": "thinker", "reasoning_effort": "minimal"}, "reasoning_effort", "'minimal'"),
        ({"model": "llama", "tools": [WEATHER_TOOL], "tool_choice": "required"}, "tool_choice", "tool_choice"),
        ({"model": "claude", "tools": [{"type": "web_search"}]}, "tools", "'web_search'"),
        ({"model": "claude", "messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}]}]}, "messages", "data URL"),
    ]
    for extra, param, words in cases:
        status, answer, _ = await post(client, "/v1/chat/completions", {"messages": user("hi"), **extra})
        assert status == 400, (extra, answer)
        error = assert_envelope(answer)
        assert error["param"] == param and words in error["message"], error
    assert not bedrock.received  # none of them went upstream


async def test_images_go_as_base64_bytes(gateway, bedrock):
    client, _ = gateway
    content = [{"type": "text", "text": "What is it?"}, {"type": "image_url", "image_url": {"url": IMAGE}}]
    status, answer, _ = await post(client, "/v1/chat/completions",
                                   {"model": "claude", "messages": [{"role": "user", "content": content}]})
    assert status == 200, answer
    assert bedrock.last.body["messages"] == [{"role": "user", "content": [
        {"text": "What is it?"}, {"image": {"format": "png", "source": {"bytes": "iVBORw0KGgo="}}}]}]


@pytest.mark.parametrize("stream", [False, True])
async def test_response_format_json_schema_is_a_forced_tool(gateway, bedrock, stream):
    client, _ = gateway
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    fmt = {"type": "json_schema", "json_schema": {"name": "place", "schema": schema}}
    body = {"model": "claude", "messages": user("Where?"), "response_format": fmt}
    if stream:
        status, chunks = await read_stream(client, body)
        assert status == 200, chunks
        for chunk in chunks:
            assert_valid(chunk, "CreateChatCompletionStreamResponse")
        content = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)
        assert not any(c["choices"][0]["delta"].get("tool_calls") for c in chunks)
        finish = chunks[-1]["choices"][0]["finish_reason"]
    else:
        status, answer, _ = await post(client, "/v1/chat/completions", body)
        assert status == 200, answer
        assert_valid(answer, "CreateChatCompletionResponse")
        message = answer["choices"][0]["message"]
        assert "tool_calls" not in message
        content, finish = message["content"], answer["choices"][0]["finish_reason"]
    assert decode(content) == {"city": "Paris"} and finish == "stop"
    assert bedrock.last.body["toolConfig"] == {"tools": [{"toolSpec": {"name": "place", "inputSchema": {"json": schema}}}],
                                               "toolChoice": {"tool": {"name": "place"}}}


async def test_reasoning_effort_is_a_thinking_budget_and_comes_back_as_reasoning_content(gateway, bedrock):
    client, sdk = gateway
    completion = await asyncio.wait_for(sdk.chat.completions.create(
        model="thinker", messages=user("Think"), reasoning_effort="medium"), WAIT)
    assert bedrock.raw_paths[-1] == "/model/us.anthropic.claude-sonnet-4-20250514-v1%3A0/converse"
    assert bedrock.last.body["additionalModelRequestFields"] == {"thinking": {"type": "enabled", "budget_tokens": 2048}}
    assert bedrock.last.body["inferenceConfig"] == {"maxTokens": 2048 + 4096}  # LiteLLM's default on top
    message = completion.choices[0].message
    assert (message.content, message.model_extra["reasoning_content"]) == ("Hello from Bedrock. Think", THOUGHT)

    status, chunks = await read_stream(client, {"model": "thinker", "messages": user("Think"),
                                                "reasoning_effort": "high", "max_tokens": 9000})
    assert status == 200
    assert bedrock.last.body["inferenceConfig"] == {"maxTokens": 9000}
    for chunk in chunks:
        assert_valid(chunk, "CreateChatCompletionStreamResponse")
    deltas = [c["choices"][0]["delta"] for c in chunks]
    assert "".join(d.get("reasoning_content", "") for d in deltas) == THOUGHT.replace(" ", "")
    assert "".join(d.get("content") or "" for d in deltas) == "Hello from Bedrock. Think"


@pytest.mark.parametrize(("model", "finish"), [("max-tokens", "length"), ("guardrail", "content_filter")])
@pytest.mark.parametrize("stream", [False, True])
async def test_stop_reasons_become_finish_reasons(gateway, model, finish, stream):
    client, _ = gateway
    if stream:
        status, chunks = await read_stream(client, {"model": model, "messages": user("hi")})
        got = [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][-1]
    else:
        status, answer, _ = await post(client, "/v1/chat/completions", {"model": model, "messages": user("hi")})
        got = answer["choices"][0]["finish_reason"]
    assert (status, got) == (200, finish)


@pytest.mark.parametrize("model", [f"converse/{CLAUDE}", f"invoke/{CLAUDE}", "global.anthropic.claude-sonnet-4-5-20250929-v1:0",
                                   "arn:aws:bedrock:eu-west-1:123456789012:inference-profile/eu.meta.llama3-2-1b-instruct-v1:0"])
async def test_model_ids_are_percent_encoded_in_the_path(make_client, bedrock, model):
    client = await gateway_for(make_client, bedrock, model)
    status, answer, _ = await post(client, "/v1/chat/completions", {"model": "m", "messages": user("hi")})
    assert status == 200, answer
    upstream = model.removeprefix("converse/").removeprefix("invoke/")
    assert bedrock.raw_paths[-1] == "/model/" + upstream.replace(":", "%3A").replace("/", "%2F") + "/converse"


# ---------------------------------------------------------------- errors


async def health_kind(client, dep_id: str) -> str | None:
    resp = await client.get("/health")
    health = await resp.json()
    entries = health["healthy_endpoints"] + health["unhealthy_endpoints"]
    return next(e["last_error"] for e in entries if e["model_id"] == dep_id)


@pytest.mark.parametrize(("name", "status", "type_", "kind"), [
    ("throttling", 429, "rate_limit_error", "rate_limit"),
    ("denied", 403, "permission_error", "permission"),
    ("missing", 404, "not_found_error", "not_found"),
    ("validation", 400, "invalid_request_error", "bad_request"),
    ("too-long", 400, "invalid_request_error", "context_window"),
    ("timeout", 504, "timeout_error", "timeout"),
    ("internal", 502, "upstream_error", "server"),
    ("unavailable", 502, "upstream_error", "server"),
])
@pytest.mark.parametrize("stream", [False, True])
async def test_http_errors_keep_their_meaning_and_kind(make_client, bedrock, name, status, type_, kind, stream):
    from fake_bedrock import HTTP_ERRORS

    client = await gateway_for(make_client, bedrock, f"error-{name}")
    got, answer, _ = await post(client, "/v1/chat/completions", {"model": "m", "messages": user("hi"), "stream": stream})
    assert got == status, answer
    error = assert_envelope(answer)
    assert error["type"] == type_ and HTTP_ERRORS[name][2] in error["message"]
    assert await health_kind(client, "dep-m") == kind


@pytest.mark.parametrize(("exception", "status", "kind"), [
    ("throttlingException", 429, "rate_limit"),
    ("validationException", 400, "context_window"),  # "Input is too long for requested model."
    ("modelStreamErrorException", 502, "server"),
    ("internalServerException", 502, "server"),
    ("serviceUnavailableException", 502, "server"),
])
async def test_a_stream_exception_before_any_content_is_a_failed_attempt(make_client, bedrock, exception, status, kind):
    from fake_bedrock import STREAM_ERRORS

    client = await gateway_for(make_client, bedrock, f"exc-first-{exception}")
    got, answer, _ = await post(client, "/v1/chat/completions", {"model": "m", "messages": user("hi"), "stream": True})
    assert got == status, answer
    assert STREAM_ERRORS[exception] in assert_envelope(answer)["message"]
    assert await health_kind(client, "dep-m") == kind


async def test_a_throttled_stream_falls_back_to_another_group(make_client, bedrock):
    client = await make_client({
        "model_list": [entry("flaky", "exc-first-throttlingException", bedrock), entry("claude", CLAUDE, bedrock)],
        "router_settings": {"fallbacks": [{"flaky": ["claude"]}]}})
    async def go():
        resp = await client.post("/v1/chat/completions", json={"model": "flaky", "messages": user("hi"), "stream": True})
        return resp, await resp.read()
    resp, raw = await asyncio.wait_for(go(), WAIT)
    assert resp.status == 200, raw
    assert resp.headers["x-litellm-model-group"] == "claude" and resp.headers["x-litellm-attempted-fallbacks"] == "1"
    chunks = [decode(e[len(b"data: "):]) for e in raw.split(b"\n\n")[:-2] if e.strip()]
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"]) == \
        "Hello from Bedrock. hi"


@pytest.mark.parametrize(("model", "words"), [("exc-mid-modelStreamErrorException", "The model stream failed."),
                                              ("cut", "mid-response")])
async def test_a_stream_failing_after_content_ends_with_an_error_event(make_client, bedrock, model, words):
    client = await gateway_for(make_client, bedrock, model)
    status, events = await read_stream(client, {"model": "m", "messages": user("Say hi there")})
    assert status == 200
    *chunks, error = events
    for chunk in chunks:
        assert_valid(chunk, "CreateChatCompletionStreamResponse")
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": "Hello"}
    assert words in assert_envelope(error)["message"]


# ---------------------------------------------------------------- embeddings


async def test_titan_embeddings_one_call_per_input(gateway, bedrock):
    client, _ = gateway
    status, answer, headers = await post(client, "/v1/embeddings",
                                         {"model": "titan", "input": ["a b", "cde"], "dimensions": 3})
    assert status == 200, answer
    assert_valid(answer, "CreateEmbeddingResponse")
    assert [d["embedding"] for d in answer["data"]] == [[3.0, 0.5, 0.5], [3.0, 0.5, 0.5]]
    assert answer["usage"] == {"prompt_tokens": 3, "total_tokens": 3}
    assert sorted(r.body["inputText"] for r in bedrock.received) == ["a b", "cde"]
    assert all(r.body == {"inputText": r.body["inputText"], "dimensions": 3} for r in bedrock.received)
    assert set(bedrock.raw_paths) == {"/model/amazon.titan-embed-text-v2%3A0/invoke"}

    status, answer, _ = await post(client, "/v1/embeddings", {"model": "titan", "input": "xy", "encoding_format": "base64"})
    assert status == 200, answer
    assert list(struct.unpack("<4f", base64.b64decode(answer["data"][0]["embedding"]))) == [2.0, 0.5, 0.5, 0.5]


async def test_cohere_embeddings_in_one_call(gateway, bedrock):
    client, sdk = gateway
    result = await asyncio.wait_for(sdk.embeddings.create(model="cohere", input=["a", "b"],
                                                          extra_body={"input_type": "search_query"}), WAIT)
    assert [d.embedding for d in result.data] == [[1.0, 0.25, -0.5], [2.0, 0.25, -0.5]]
    assert result.usage.prompt_tokens == 6
    assert bedrock.last.body == {"texts": ["a", "b"], "input_type": "search_query"}
    status, answer, _ = await post(client, "/v1/embeddings", {"model": "cohere", "input": "a"})
    assert status == 200 and bedrock.last.body == {"texts": ["a"], "input_type": "search_document"}
    status, answer, _ = await post(client, "/v1/embeddings", {"model": "cohere", "input": "a", "dimensions": 8})
    assert status == 400 and assert_envelope(answer)["param"] == "dimensions"


# ---------------------------------------------------------------- credentials


async def test_session_credentials_send_the_security_token(make_client, aiohttp_server):
    fake = await start(aiohttp_server, BedrockFake(session_token=SESSION_TOKEN))
    client = await gateway_for(make_client, fake, CLAUDE)
    status, answer, _ = await post(client, "/v1/chat/completions", {"model": "m", "messages": user("hi")})
    assert status == 200, answer
    assert fake.last.headers["X-Amz-Security-Token"] == SESSION_TOKEN


@pytest.fixture
def no_ambient_aws(monkeypatch, tmp_path):
    """No AWS credentials or role from this machine's environment or files."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_ROLE_ARN",
                 "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.mark.parametrize("source", ["environment", "profile"])
async def test_credentials_from_the_environment_or_a_profile(make_client, aiohttp_server, monkeypatch, tmp_path, source,
                                                            no_ambient_aws):
    fake = await start(aiohttp_server, BedrockFake(session_token=SESSION_TOKEN))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    params = {}
    if source == "environment":
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        monkeypatch.setenv("AWS_SESSION_TOKEN", SESSION_TOKEN)
        monkeypatch.setenv("AWS_REGION", REGION)
    else:
        (tmp_path / "credentials").write_text(f"[work]\naws_access_key_id = {ACCESS_KEY}\naws_secret_access_key = "
                                              f"{SECRET_KEY}\naws_session_token = {SESSION_TOKEN}\n")
        (tmp_path / "config").write_text(f"[profile work]\nregion = {REGION}\n")
        monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
        params["aws_profile_name"] = "work"
    client = await make_client({"model_list": [{"model_name": "m", "litellm_params": {
        "model": f"bedrock/{CLAUDE}", "aws_bedrock_runtime_endpoint": fake.root_url, "num_retries": 0, **params}}]})
    status, answer, _ = await post(client, "/v1/chat/completions", {"model": "m", "messages": user("hi")})
    assert status == 200, answer
    assert fake.last.headers["Authorization"].startswith(f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/")


@pytest.mark.parametrize(("change", "type_name"), [({"aws_secret_access_key": "wrong-secret-000000000000"},
                                                    "InvalidSignatureException"),
                                                   ({"aws_access_key_id": "AKIAWRONGKEY00000000"},
                                                    "UnrecognizedClientException")])
async def test_wrong_credentials_are_an_auth_error_that_shows_no_secret(make_client, bedrock, caplog, change, type_name):
    client = await gateway_for(make_client, bedrock, CLAUDE, **change)
    with caplog.at_level(logging.DEBUG):
        status, answer, _ = await post(client, "/v1/chat/completions", {"model": "m", "messages": user("hi")})
    assert status == 401, answer
    error = assert_envelope(answer)
    assert type_name in error["message"] and error["type"] == "authentication_error"
    assert await health_kind(client, "dep-m") == "auth"
    info = await (await client.get("/model/info")).text()
    for secret in (*change.values(), SECRET_KEY):
        assert secret not in error["message"] and secret not in caplog.text and secret not in info


async def test_expiring_credentials_are_refreshed_before_use(make_client, aiohttp_server, monkeypatch, tmp_path,
                                                            no_ambient_aws):
    """A credential_process whose credentials expire in 5 minutes (inside botocore's 15-minute
    refresh window): each request gets them refreshed (in a thread), none is signed with old ones."""
    fake = await start(aiohttp_server, BedrockFake(session_token=SESSION_TOKEN))
    runs = tmp_path / "runs"
    script = tmp_path / "creds.py"
    script.write_text(
        "import datetime, json, pathlib\n"
        f"runs = pathlib.Path({str(runs)!r}); runs.write_text(str(int(runs.read_text() or 0) + 1) if runs.exists() else '1')\n"
        "expiry = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(minutes=5)\n"
        f"print(json.dumps({{'Version': 1, 'AccessKeyId': {ACCESS_KEY!r}, 'SecretAccessKey': {SECRET_KEY!r}, "
        f"'SessionToken': {SESSION_TOKEN!r}, 'Expiration': expiry.isoformat()}}))\n")
    (tmp_path / "config").write_text(f"[profile rotating]\ncredential_process = {sys.executable} {script}\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    client = await make_client({"model_list": [{"model_name": "m", "litellm_params": {
        "model": f"bedrock/{CLAUDE}", "aws_bedrock_runtime_endpoint": fake.root_url, "aws_profile_name": "rotating",
        "aws_region_name": REGION, "num_retries": 0}}]})
    counts = []
    for _ in range(3):
        status, answer, _ = await post(client, "/v1/chat/completions", {"model": "m", "messages": user("hi")})
        assert status == 200, answer
        counts.append(int(runs.read_text()))
    assert counts[1] == counts[0] + 1 and counts[2] == counts[1] + 1


# ---------------------------------------------------------------- the plugin


async def test_model_group_info_shows_each_models_params(gateway):
    client, _ = gateway
    resp = await client.get("/model_group/info")
    groups = {g["model_group"]: g for g in (await resp.json())["data"]}
    assert "reasoning_effort" in groups["thinker"]["supported_openai_params"]
    assert "reasoning_effort" not in groups["claude"]["supported_openai_params"]
    assert {"tools", "tool_choice", "response_format", "stop"} <= set(groups["claude"]["supported_openai_params"])
    assert "tool_choice" not in groups["llama"]["supported_openai_params"]
    assert groups["titan"]["supported_openai_params"] == ["dimensions", "encoding_format"]  # (base64: the core's)


def test_loading_the_plugin_does_not_import_botocore():
    code = ("import sys; from sidecar.plugins import collect_providers, get_plugin_manager; "
            "p = collect_providers(get_plugin_manager())['bedrock']; p.supported_openai_params('anthropic.x'); "
            "print('botocore' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "False", out.stderr

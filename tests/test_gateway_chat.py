"""Chat completions through the mock provider, over real HTTP, with and without ``/v1``."""

from __future__ import annotations

import hashlib
import json

import msgspec
import pytest

from conftest import MOCK_MODELS
from gateway_helpers import PREFIXES, assert_error, assert_valid_stream, stream_text
from openai_spec import assert_valid

pytestmark = pytest.mark.parametrize("prefix", PREFIXES)

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather in a city",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "days": {"type": "integer"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                "detailed": {"type": "boolean"},
            },
            "required": ["city", "days", "unit", "detailed"],
        },
    },
}
TIME_TOOL = {
    "type": "function",
    "function": {
        "name": "get_time",
        "parameters": {"type": "object", "properties": {"zone": {"type": "string"}}, "required": ["zone"]},
    },
}


def user(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


async def chat(client, prefix: str, **body):
    body.setdefault("model", "mock-gpt")
    return await client.post(f"{prefix}/chat/completions", json=body)


async def chat_ok(client, prefix: str, **body) -> dict:
    resp = await chat(client, prefix, **body)
    text = await resp.text()
    assert resp.status == 200, text
    data = json.loads(text)
    assert_valid(data, "CreateChatCompletionResponse")
    return data


async def test_plain_chat(make_client, prefix):
    client = await make_client()
    data = await chat_ok(client, prefix, messages=user("hello there"))
    assert data["object"] == "chat.completion"
    assert data["model"] == "mock-gpt"
    [choice] = data["choices"]
    assert choice["message"]["role"] == "assistant"
    assert choice["message"]["content"] == "Mock reply to: hello there"
    assert choice["finish_reason"] == "stop"
    usage = data["usage"]
    assert usage["prompt_tokens"] == 2
    assert usage["completion_tokens"] == len("Mock reply to: hello there".split())
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


async def test_zero_token_counts_are_still_sent(make_client, prefix):
    """OpenAI's spec requires all three counts: a message of no words is 0 prompt tokens, sent."""
    client = await make_client()
    data = await chat_ok(client, prefix, messages=user(""), mock_response="")
    assert data["usage"] == {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
    assert_valid(data, "CreateChatCompletionResponse")
    resp = await chat(client, prefix, messages=user(""), stream=True, stream_options={"include_usage": True},
                      mock_response="")
    assert assert_valid_stream(await resp.read())[-1]["usage"]["prompt_tokens"] == 0


async def test_streaming_chat(make_client, prefix):
    client = await make_client()
    resp = await chat(client, prefix, messages=user("stream these words"), stream=True)
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("text/event-stream")
    raw = await resp.read()
    assert raw.endswith(b"data: [DONE]\n\n")
    chunks = assert_valid_stream(raw)
    assert len(chunks) > 3, "the mock streams in several chunks"
    assert stream_text(chunks) == "Mock reply to: stream these words"
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert all("usage" not in c or c["usage"] is None for c in chunks)
    assert len({c["id"] for c in chunks}) == 1


async def test_stream_include_usage(make_client, prefix):
    client = await make_client()
    resp = await chat(client, prefix, messages=user("count me"), stream=True,
                      stream_options={"include_usage": True})
    assert resp.status == 200
    chunks = assert_valid_stream(await resp.read())
    last = chunks[-1]
    assert last["choices"] == []
    words = len("Mock reply to: count me".split())
    assert last["usage"] == {"prompt_tokens": 2, "completion_tokens": words, "total_tokens": 2 + words}
    assert all(c["choices"] for c in chunks[:-1])


async def test_tool_call_arguments_follow_schema(make_client, prefix):
    client = await make_client()
    data = await chat_ok(client, prefix, messages=user("Paris"), tools=[WEATHER_TOOL, TIME_TOOL])
    [choice] = data["choices"]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] is None
    [call] = choice["message"]["tool_calls"]
    assert call["type"] == "function"
    assert call["id"].startswith("call_")
    assert call["function"]["name"] == "get_weather"
    args = json.loads(call["function"]["arguments"])
    assert args == {"city": "Paris", "days": 1, "unit": "celsius", "detailed": True}


async def test_tool_choice_names_a_function(make_client, prefix):
    client = await make_client()
    data = await chat_ok(client, prefix, messages=user("Tokyo"), tools=[WEATHER_TOOL, TIME_TOOL],
                         tool_choice={"type": "function", "function": {"name": "get_time"}})
    [call] = data["choices"][0]["message"]["tool_calls"]
    assert call["function"]["name"] == "get_time"
    assert json.loads(call["function"]["arguments"]) == {"zone": "Tokyo"}


async def test_tool_choice_none_answers_in_text(make_client, prefix):
    client = await make_client()
    data = await chat_ok(client, prefix, messages=user("Paris"), tools=[WEATHER_TOOL], tool_choice="none")
    [choice] = data["choices"]
    assert choice["finish_reason"] == "stop"
    assert choice["message"].get("tool_calls") is None
    assert choice["message"]["content"] == "Mock reply to: Paris"


async def test_tool_result_is_summarised(make_client, prefix):
    client = await make_client()
    first = await chat_ok(client, prefix, messages=user("Paris"), tools=[WEATHER_TOOL])
    call = first["choices"][0]["message"]["tool_calls"][0]
    messages = user("Paris") + [
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": call["id"], "content": "sunny"},
    ]
    data = await chat_ok(client, prefix, messages=messages, tools=[WEATHER_TOOL])
    assert data["choices"][0]["message"]["content"] == "Mock summary of the tool result: sunny"


async def test_streaming_tool_call(make_client, prefix):
    client = await make_client()
    resp = await chat(client, prefix, messages=user("Oslo"), tools=[WEATHER_TOOL], stream=True)
    assert resp.status == 200
    chunks = assert_valid_stream(await resp.read())
    calls = [tc for c in chunks for ch in c["choices"] for tc in ch["delta"].get("tool_calls") or []]
    assert calls and calls[0]["function"]["name"] == "get_weather"
    args = json.loads("".join(tc["function"].get("arguments") or "" for tc in calls))
    assert args["city"] == "Oslo"
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


async def test_n_choices(make_client, prefix):
    client = await make_client()
    data = await chat_ok(client, prefix, messages=user("twice"), n=2)
    assert [c["index"] for c in data["choices"]] == [0, 1]
    assert {c["message"]["content"] for c in data["choices"]} == {"Mock reply to: twice"}
    resp = await chat(client, prefix, messages=user("twice"), n=2, stream=True)
    chunks = assert_valid_stream(await resp.read())
    assert stream_text(chunks, 0) == stream_text(chunks, 1) == "Mock reply to: twice"


async def test_stop_sequence(make_client, prefix):
    client = await make_client()
    data = await chat_ok(client, prefix, messages=user("alpha beta gamma"), stop=["beta"])
    assert data["choices"][0]["message"]["content"] == "Mock reply to: alpha "
    assert data["choices"][0]["finish_reason"] == "stop"
    data = await chat_ok(client, prefix, messages=user("alpha beta gamma"), stop="gamma")
    assert data["choices"][0]["message"]["content"] == "Mock reply to: alpha beta "


async def test_max_tokens_finish_reason_length(make_client, prefix):
    client = await make_client()
    data = await chat_ok(client, prefix, messages=user("one two three four five"), max_tokens=3)
    [choice] = data["choices"]
    assert choice["finish_reason"] == "length"
    assert choice["message"]["content"] == "Mock reply to:"
    assert data["usage"]["completion_tokens"] == 3
    resp = await chat(client, prefix, messages=user("one two three four five"), max_completion_tokens=2,
                      stream=True)
    chunks = assert_valid_stream(await resp.read())
    assert stream_text(chunks) == "Mock reply"
    assert chunks[-1]["choices"][0]["finish_reason"] == "length"


async def test_response_format_json_schema(make_client, prefix):
    client = await make_client()
    schema = {"type": "object", "properties": {"answer": {"type": "string"}, "score": {"type": "number"},
                                               "tags": {"type": "array", "items": {"type": "string"}}},
              "required": ["answer", "score", "tags"]}
    data = await chat_ok(client, prefix, messages=user("why"), response_format={
        "type": "json_schema", "json_schema": {"name": "out", "schema": schema}})
    parsed = json.loads(data["choices"][0]["message"]["content"])
    assert set(parsed) == {"answer", "score", "tags"}
    assert isinstance(parsed["answer"], str) and isinstance(parsed["score"], float)
    assert isinstance(parsed["tags"], list) and all(isinstance(t, str) for t in parsed["tags"])
    data = await chat_ok(client, prefix, messages=user("why"), response_format={"type": "json_object"})
    assert isinstance(json.loads(data["choices"][0]["message"]["content"]), dict)


async def test_mock_response_string(make_client, prefix):
    client = await make_client()
    data = await chat_ok(client, prefix, messages=user("ignored"), mock_response="fixed answer here")
    assert data["choices"][0]["message"]["content"] == "fixed answer here"
    resp = await chat(client, prefix, messages=user("ignored"), mock_response="fixed answer here", stream=True)
    assert stream_text(assert_valid_stream(await resp.read())) == "fixed answer here"


async def test_mock_response_in_litellm_params(make_client, prefix):
    client = await make_client({"model_list": [
        {"model_name": "canned", "litellm_params": {"model": "mock/canned", "mock_response": "from config"}}]})
    data = await chat_ok(client, prefix, model="canned", messages=user("hi"))
    assert data["choices"][0]["message"]["content"] == "from config"


async def test_mock_response_rate_limit_error(make_client, prefix):
    client = await make_client()
    resp = await chat(client, prefix, messages=user("hi"), mock_response="litellm.RateLimitError")
    err = await assert_error(resp, 429, mentions=("RateLimitError",))
    assert err["type"] == "rate_limit_error"
    resp = await chat(client, prefix, messages=user("hi"), mock_response="litellm.RateLimitError", stream=True)
    await assert_error(resp, 429)


async def test_mock_response_error_object(make_client, prefix):
    client = await make_client()
    resp = await chat(client, prefix, messages=user("hi"),
                      mock_response={"error": {"message": "quota gone", "type": "insufficient_quota", "code": 403}})
    err = await assert_error(resp, 403, mentions=("quota gone",))
    assert err["type"] == "permission_error"
    resp = await chat(client, prefix, messages=user("hi"),
                      mock_response={"error": {"message": "upstream down", "status": 503}})
    await assert_error(resp, 502, mentions=("upstream down",))


def expected_deployment_id(entry: dict) -> str:
    canonical = msgspec.json.encode([entry["model_name"], entry["litellm_params"]], order="sorted")
    return hashlib.sha256(canonical).hexdigest()


async def test_model_id_header_is_the_deployment_id(make_client, prefix):
    config = {"model_list": MOCK_MODELS + [
        {"model_name": "pinned", "litellm_params": {"model": "mock/pinned"}, "model_info": {"id": "my-id-1"}}]}
    first = await make_client(config)
    second = await make_client(config)
    ids = []
    for client in (first, second):
        resp = await chat(client, prefix, messages=user("hi"))
        assert resp.status == 200
        ids.append(resp.headers["x-litellm-model-id"])
    assert ids[0] == ids[1] == expected_deployment_id(MOCK_MODELS[0])
    resp = await chat(first, prefix, messages=user("hi"), stream=True)
    assert resp.headers["x-litellm-model-id"] == ids[0]
    await resp.read()
    resp = await chat(first, prefix, model="pinned", messages=user("hi"))
    assert resp.status == 200
    assert resp.headers["x-litellm-model-id"] == "my-id-1"
    resp = await first.post(f"{prefix}/embeddings", json={"model": "mock-embedding", "input": "x"})
    assert resp.headers["x-litellm-model-id"] == expected_deployment_id(MOCK_MODELS[1])
    resp = await first.post(f"{prefix}/moderations", json={"model": "mock-moderation", "input": "x"})
    assert resp.headers["x-litellm-model-id"] == expected_deployment_id(MOCK_MODELS[2])


async def test_deployment_id_changes_with_params(make_client, prefix):
    a = await make_client({"model_list": [{"model_name": "m", "litellm_params": {"model": "mock/m"}}]})
    b = await make_client({"model_list": [{"model_name": "m", "litellm_params": {"model": "mock/m", "x": 1}}]})
    ra = await chat(a, prefix, model="m", messages=user("hi"))
    rb = await chat(b, prefix, model="m", messages=user("hi"))
    assert ra.headers["x-litellm-model-id"] != rb.headers["x-litellm-model-id"]


async def test_wildcard_deployment_passes_the_captured_name(make_client, prefix):
    client = await make_client({"model_list": [{"model_name": "mock/*", "litellm_params": {"model": "mock/*"}}]})
    data = await chat_ok(client, prefix, model="mock/anything", messages=user("hi"))
    assert data["model"] == "anything"


async def test_content_parts_and_metadata(make_client, prefix):
    client = await make_client()
    messages = [{"role": "system", "content": "be brief"},
                {"role": "user", "content": [{"type": "text", "text": "parts"}, {"type": "text", "text": "joined"}]}]
    data = await chat_ok(client, prefix, messages=messages, metadata={"trace": "abc"}, user="u1", seed=7,
                         temperature=0.2, top_k=3)
    assert data["choices"][0]["message"]["content"] == "Mock reply to: parts joined"

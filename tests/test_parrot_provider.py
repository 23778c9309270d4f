"""The example plugin's ``parrot`` provider through the gateway, against the Parrot API's fake
(tests/fake_parrot.py), with the official ``openai`` SDK as the client: what Parrot receives, field
by field, and what the client gets back, plain and streamed, errors included."""

from __future__ import annotations

import asyncio
import base64
import struct

import openai
import pytest
import sidecar_example
from fake_parrot import HEARD, ParrotFake

from sidecar.testing import WEATHER_TOOL, assert_valid, deployment, start

KEY = "pk-parrot-test-key-0123456789"
FLOCK = "flock-secret-0123456789"
WAIT = 10.0


@pytest.fixture
async def parrot(aiohttp_server) -> ParrotFake:
    return await start(aiohttp_server, ParrotFake(api_key=KEY))


@pytest.fixture
async def sdk(make_gateway, openai_sdk, parrot):
    """An SDK client of the gateway serving the example plugin alone, one deployment per bird."""
    birds = ["parrot-1", "parrot-embed", "long", "cut", "oops-mid", "no-end", "error-too-fast", "error-too-long",
             "error-rude"]
    client = await make_gateway({"model_list": [
        *(deployment(b, f"parrot/{b}", api_base=parrot.root_url, api_key=KEY, flock=FLOCK) for b in birds),
        deployment("bad-key", "parrot/parrot-1", api_base=parrot.root_url, api_key="pk-parrot-wrong-key-987654321"),
    ]}, plugins=[sidecar_example])
    return openai_sdk(client)


def bounded(awaitable):
    return asyncio.wait_for(awaitable, WAIT)


async def test_chat_request_translation_and_answer(sdk, parrot):
    raw = await bounded(sdk.chat.completions.with_raw_response.create(
        model="parrot-1", messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": [
            {"type": "text", "text": "Say "}, {"type": "text", "text": "hi"}]}],
        temperature=0.3, top_p=0.9, max_completion_tokens=64, stop="END"))
    assert raw.headers["x-litellm-model-id"] == "dep-parrot-1"
    completion = raw.parse()
    assert_valid(completion.model_dump(exclude_unset=True), "CreateChatCompletionResponse")
    assert completion.id == "chatcmpl-sq_0001" and completion.model == "parrot-1"
    assert completion.choices[0].message.content == "Hello from Parrot. Say hi"
    assert completion.choices[0].finish_reason == "stop"
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens, completion.usage.total_tokens) == (
        HEARD, 5, HEARD + 5)
    got = parrot.last
    assert (got.method, got.path) == ("POST", "/v2/squawk")
    assert got.headers["X-Parrot-Key"] == KEY and got.headers["X-Parrot-Flock"] == FLOCK
    assert "Authorization" not in got.headers
    assert got.body == {"bird": "parrot-1", "guide": "Be brief.",
                        "conversation": [{"speaker": "human", "words": "Say hi"}],
                        "loudness": 0.3, "nucleus": 0.9, "most_words": 64, "hush_on": ["END"]}


async def test_stream_of_ndjson_lines_becomes_chunks_with_usage(sdk, parrot):
    async def run():
        stream = await sdk.chat.completions.create(model="parrot-1", messages=[{"role": "user", "content": "hi"}],
                                                   max_tokens=20, stream=True, stream_options={"include_usage": True})
        return [chunk async for chunk in stream]
    chunks = await bounded(run())
    for chunk in chunks:
        assert_valid(chunk.model_dump(exclude_unset=True), "CreateChatCompletionStreamResponse")
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Hello from Parrot. hi"
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens == HEARD + 4
    assert {c.id for c in chunks} == {"chatcmpl-sq_0001"}
    assert parrot.last.body == {"bird": "parrot-1", "conversation": [{"speaker": "human", "words": "hi"}],
                                "most_words": 20, "chirp": True}


async def test_out_of_words_is_length(sdk):
    completion = await bounded(sdk.chat.completions.create(model="long", messages=[{"role": "user", "content": "hi"}]))
    assert completion.choices[0].finish_reason == "length"


async def test_tools_become_tricks_and_tricks_tool_calls(sdk, parrot):
    completion = await bounded(sdk.chat.completions.create(
        model="parrot-1", messages=[{"role": "user", "content": "Weather in Paris?"}], tools=[WEATHER_TOOL],
        tool_choice={"type": "function", "function": {"name": "get_weather"}}))
    assert_valid(completion.model_dump(exclude_unset=True), "CreateChatCompletionResponse")
    [call] = completion.choices[0].message.tool_calls
    assert (call.id, call.type, call.function.name, call.function.arguments) == (
        "tk_0001", "function", "get_weather", '{"location":"Paris"}')
    assert completion.choices[0].finish_reason == "tool_calls" and completion.choices[0].message.content is None
    fn = WEATHER_TOOL["function"]
    assert parrot.last.body["tricks"] == [{"trick": "get_weather", "about": fn["description"],
                                           "shape": fn["parameters"]}]
    assert parrot.last.body["trick_mode"] == {"only": "get_weather"}
    # the answer to the call goes back as a tool turn naming its ticket
    turns = [{"role": "user", "content": "Weather in Paris?"},
             completion.choices[0].message.model_dump(exclude_unset=True),
             {"role": "tool", "tool_call_id": "tk_0001", "content": "sunny"}]
    answer = await bounded(sdk.chat.completions.create(model="parrot-1", tools=[WEATHER_TOOL], tool_choice="required",
                                                       messages=turns))
    assert answer.choices[0].message.content == "Hello from Parrot. sunny"
    assert parrot.last.body["trick_mode"] == "must"
    assert parrot.last.body["conversation"] == [
        {"speaker": "human", "words": "Weather in Paris?"},
        {"speaker": "bird", "words": "", "tricks_done": [{"ticket": "tk_0001", "trick": "get_weather",
                                                           "with": {"location": "Paris"}}]},
        {"speaker": "tool", "words": "sunny", "answers_ticket": "tk_0001"},
    ]


async def test_streamed_trick_arrives_as_tool_call_deltas(sdk):
    async def run():
        stream = await sdk.chat.completions.create(model="parrot-1", messages=[{"role": "user", "content": "Weather?"}],
                                                   tools=[WEATHER_TOOL], stream=True)
        return [chunk async for chunk in stream]
    chunks = await bounded(run())
    deltas = [d for c in chunks if c.choices for d in c.choices[0].delta.tool_calls or ()]
    assert deltas[0].id == "tk_0001" and deltas[0].function.name == "get_weather"
    assert all(d.index == 0 for d in deltas) and all(d.id is None for d in deltas[1:])
    assert "".join(d.function.arguments for d in deltas) == '{"location":"Paris"}'
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


async def test_embeddings_in_position_order_as_floats_or_base64(sdk, parrot):
    floats = await bounded(sdk.embeddings.create(model="parrot-embed", input=["a", "b"], dimensions=3,
                                                 encoding_format="float"))
    # (Parrot answers them in reverse order)
    assert [d.embedding for d in floats.data] == [[1.0, 0.25, 0.25], [2.0, 0.25, 0.25]]
    assert floats.usage.prompt_tokens == 4
    assert parrot.last.path == "/v2/mimic"
    assert parrot.last.body == {"bird": "parrot-embed", "phrases": ["a", "b"], "size": 3}
    raw = await bounded(sdk.embeddings.with_raw_response.create(model="parrot-embed", input="a"))  # the SDK asks base64
    [item] = raw.http_response.json()["data"]
    assert struct.unpack("<4f", base64.b64decode(item["embedding"])) == (1.0, 0.25, 0.25, 0.25)


async def test_errors_map_to_openai_exceptions_with_retry_after_and_no_key(sdk):
    with pytest.raises(openai.RateLimitError) as rate:
        await bounded(sdk.chat.completions.create(model="error-too-fast", messages=[{"role": "user", "content": "hi"}]))
    assert rate.value.response.headers["Retry-After"] == "13"  # 12.5 s in Parrot's body, rounded up
    with pytest.raises(openai.BadRequestError) as long:
        await bounded(sdk.chat.completions.create(model="error-too-long", messages=[{"role": "user", "content": "hi"}]))
    assert long.value.code == "context_length_exceeded" and long.value.param == "messages"
    with pytest.raises(openai.BadRequestError) as rude:
        await bounded(sdk.chat.completions.create(model="error-rude", messages=[{"role": "user", "content": "hi"}]))
    assert rude.value.code == "content_policy_violation"
    with pytest.raises(openai.AuthenticationError) as denied:
        await bounded(sdk.chat.completions.create(model="bad-key", messages=[{"role": "user", "content": "hi"}]))
    assert "pk-parrot-wrong-key" not in denied.value.response.text and "***" in denied.value.message


async def test_failures_mid_stream_end_it_with_an_error_event(sdk):
    for model in ("oops-mid", "no-end", "cut"):
        async def run():
            stream = await sdk.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}],
                                                       stream=True)
            return [chunk async for chunk in stream]
        with pytest.raises(openai.APIError) as failed:
            await bounded(run())
        assert failed.value.message, model


async def test_a_param_parrot_lacks_is_a_400_naming_it(sdk):
    with pytest.raises(openai.BadRequestError) as refused:
        await bounded(sdk.chat.completions.create(model="parrot-1", messages=[{"role": "user", "content": "hi"}],
                                                  presence_penalty=0.5))
    assert refused.value.param == "presence_penalty"


async def test_key_and_base_from_the_environment_are_masked(make_gateway, openai_sdk, parrot, monkeypatch):
    monkeypatch.setenv("PARROT_API_KEY", "pk-parrot-env-wrong-key-5555")
    monkeypatch.setenv("PARROT_API_BASE", parrot.root_url)
    client = await make_gateway({"model_list": [deployment("env", "parrot/parrot-1")]}, plugins=[sidecar_example])
    sdk = openai_sdk(client)
    with pytest.raises(openai.AuthenticationError) as denied:
        await bounded(sdk.chat.completions.create(model="env", messages=[{"role": "user", "content": "hi"}]))
    assert parrot.last.headers["X-Parrot-Key"] == "pk-parrot-env-wrong-key-5555"
    assert "pk-parrot-env-wrong-key" not in denied.value.response.text
    monkeypatch.setenv("PARROT_API_KEY", KEY)
    completion = await bounded(sdk.chat.completions.create(model="env", messages=[{"role": "user", "content": "hi"}]))
    assert completion.choices[0].message.content == "Hello from Parrot. hi"

"""``POST /v1/completions`` (legacy text completions) through the sidecar with the official SDK:
the openai provider against an OpenAI-wire fake, and the mock provider; plain, streamed, errors."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import openai
import pytest

from fake_media import MediaFake
from fake_upstreams import start
from gateway_helpers import PREFIXES, assert_error, parse_sse
from media_helpers import MASTER, UPSTREAM_KEY, WAIT, assert_valid_completion_chunk, sdk, serve, upstream
from openai_spec import assert_valid
from sidecar.app import create_app


@pytest.fixture
async def fake(aiohttp_server) -> MediaFake:
    return await start(aiohttp_server, MediaFake(api_key=UPSTREAM_KEY))


@pytest.fixture
async def root(make_config, fake):
    config = {"model_list": [
        upstream("instruct", "openai/gpt-3.5-turbo-instruct", fake),
        upstream("broken", "openai/error-429", fake),
        upstream("mid-stream", "openai/error-mid-stream", fake),
        upstream("groq-chat", "groq/llama-3.1-8b-instant", fake),
        {"model_name": "mock-instruct", "litellm_params": {"model": "mock/mock-instruct"}},
    ], "general_settings": {"master_key": MASTER}}
    async for url in serve(create_app(make_config(config))):
        yield url


async def test_plain_through_the_openai_provider(root, fake):
    async with sdk(root) as client:
        raw = await asyncio.wait_for(client.completions.with_raw_response.create(
            model="instruct", prompt="Say this is a test", max_tokens=7, temperature=0.5, echo=False, n=1,
            stop=["\n"], best_of=1, suffix="!", seed=3, logprobs=2, user="u-1",
            extra_body={"metadata": {"trace": "t"}, "top_k": 4}), WAIT)
    answer = raw.http_response.json()
    assert_valid(answer, "CreateCompletionResponse")
    completion = raw.parse()
    assert completion.object == "text_completion"
    assert completion.choices[0].text == "Hello from OpenAI. Say this is a test"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens
    assert raw.headers["x-litellm-model-id"] == "dep-instruct"
    got = fake.last
    assert (got.path, got.headers["Authorization"]) == ("/v1/completions", f"Bearer {UPSTREAM_KEY}")
    assert got.body == {"model": "gpt-3.5-turbo-instruct", "prompt": "Say this is a test", "max_tokens": 7,
                        "temperature": 0.5, "echo": False, "n": 1, "stop": ["\n"], "best_of": 1, "suffix": "!",
                        "seed": 3, "logprobs": 2, "user": "u-1", "top_k": 4}


@pytest.mark.parametrize(("model", "text"), [("instruct", "Hello from OpenAI. Once upon"),
                                             ("mock-instruct", "Mock reply to: Once upon")])
async def test_streamed_with_the_sdk(root, fake, model, text):
    async def run() -> list[Any]:
        async with sdk(root) as client:
            stream = await client.completions.create(model=model, prompt="Once upon", stream=True,
                                                     stream_options={"include_usage": True})
            return [chunk async for chunk in stream]

    chunks = await asyncio.wait_for(run(), WAIT)
    assert "".join(c.choices[0].text for c in chunks if c.choices) == text
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert len([c for c in chunks if c.choices and c.choices[0].text]) == len(text.split())  # a word each
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == len(text.split())


@pytest.mark.parametrize("prefix", PREFIXES)
@pytest.mark.parametrize("model", ["instruct", "mock-instruct"])
async def test_raw_answers_match_the_spec(root, prefix, model):
    headers = {"Authorization": f"Bearer {MASTER}"}
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{root}{prefix}/completions", headers=headers,
                             json={"model": model, "prompt": ["a b", "c"], "max_tokens": 2}) as resp:
            plain = await resp.json()
            assert resp.status == 200, plain
        async with http.post(f"{root}{prefix}/completions", headers=headers,
                             json={"model": model, "prompt": "tell me", "stream": True}) as resp:
            assert resp.headers["Content-Type"].startswith("text/event-stream")
            chunks, done = parse_sse(await resp.read())
    assert_valid(plain, "CreateCompletionResponse")
    assert plain["object"] == "text_completion" and plain["choices"]
    assert done and chunks
    for chunk in chunks:
        assert_valid_completion_chunk(chunk)
    assert [c["choices"][0]["finish_reason"] for c in chunks][-1] == "stop"


async def test_mock_honours_prompts_n_echo_and_max_tokens(root):
    async with sdk(root) as client:
        many = await client.completions.create(model="mock-instruct", prompt=["one", "two"], n=2)
        echoed = await client.completions.create(model="mock-instruct", prompt="Hi. ", echo=True, max_tokens=2)
    assert [c.text for c in many.choices] == ["Mock reply to: one"] * 2 + ["Mock reply to: two"] * 2
    assert [c.index for c in many.choices] == [0, 1, 2, 3]
    assert (echoed.choices[0].text, echoed.choices[0].finish_reason) == ("Hi. Mock reply", "length")


async def test_errors(root, fake):
    async with sdk(root) as client:
        with pytest.raises(openai.RateLimitError) as limited:
            await asyncio.wait_for(client.completions.create(model="broken", prompt="x"), WAIT)
        with pytest.raises(openai.BadRequestError) as unsupported:
            await asyncio.wait_for(client.completions.create(model="groq-chat", prompt="x"), WAIT)
        with pytest.raises(openai.BadRequestError) as bad_prompt:
            await asyncio.wait_for(client.completions.create(model="instruct", prompt=[]), WAIT)

        async def broken_stream() -> list[Any]:
            stream = await client.completions.create(model="mid-stream", prompt="a b c d", stream=True)
            return [chunk async for chunk in stream]

        with pytest.raises(openai.APIError) as mid:
            await asyncio.wait_for(broken_stream(), WAIT)
    assert "Rate limit reached" in limited.value.message
    assert (unsupported.value.code, unsupported.value.param) == ("unsupported_capability", "model")
    assert bad_prompt.value.param == "prompt"
    assert "boom" in mid.value.message
    assert [r.body["model"] for r in fake.received] == ["error-429", "error-mid-stream"]


async def test_no_master_key_and_bad_json_are_envelopes(root):
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{root}/v1/completions", json={"model": "instruct", "prompt": "x"}) as resp:
            await assert_error(resp, 401, code="missing_api_key")
        async with http.post(f"{root}/v1/completions", data=b"{nope", headers={"api-key": MASTER}) as resp:
            await assert_error(resp, 400)
        async with http.post(f"{root}/v1/completions", json={"model": "instruct", "prompt": 5},
                             headers={"api-key": MASTER}) as resp:
            err = await assert_error(resp, 400)
    assert err["param"] == "prompt" and "Traceback" not in json.dumps(err)

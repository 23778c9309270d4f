"""``stream_options.include_usage`` in the core: providers may always send the usage chunk
(``choices: []``, ``usage``); the router counts its tokens (tpm), and the client gets it only when
it asked, valid per OpenAI's spec. Chunks as Structs or pre-encoded bytes, per-chunk usage
(``continuous_usage_stats``), legacy completions, and the openai plugin asking its upstream."""

from __future__ import annotations

import time

import msgspec
import pytest
from gateway_helpers import assert_valid_stream, parse_sse, until
from openai_helpers import dep, post, user

import sidecar
from sidecar import keys
from sidecar.plugins import get_plugin_manager

CHAT = "/v1/chat/completions"
USAGE = {"prompt_tokens": 20, "completion_tokens": 30, "total_tokens": 50}


def _chunk(content: str | None, *, finish: str | None = None, usage: dict | None = None) -> dict:
    choices = [] if content is None else [{"index": 0, "delta": {"content": content}, "finish_reason": finish}]
    return {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m", "choices": choices,
            **({"usage": usage} if usage else {})}


class _UsageProvider(sidecar.Provider):
    """Always ends its streams with the usage chunk. ``call.model`` picks the form: ``structs``,
    ``bytes`` (pre-encoded, with spaces as another server writes them, in one batch), or
    ``continuous`` (usage on every chunk, growing, as vLLM's ``continuous_usage_stats``)."""

    name = "usage"
    capabilities = frozenset({"chat"})

    def supported_openai_params(self, model, capability=None):
        return ["stream", "stream_options"]

    async def chat(self, call):
        if not call.stream:
            return sidecar.ChatCompletion(id="c0", model=call.model, usage=sidecar.Usage(3, 4, 7), choices=[
                sidecar.Choice(index=0, message=sidecar.ResponseMessage(content="ok"), finish_reason="stop")])
        return getattr(self, "_" + call.model)()

    async def _structs(self):
        yield sidecar.ChatCompletionChunk(id="c1", model="m", choices=[sidecar.ChunkChoice(
            index=0, delta=sidecar.Delta(role="assistant", content="hi"))])
        yield [sidecar.ChatCompletionChunk(id="c1", model="m", choices=[sidecar.ChunkChoice(
            index=0, delta=sidecar.Delta(), finish_reason="stop")]),
               sidecar.ChatCompletionChunk(id="c1", model="m", choices=[], usage=sidecar.Usage(**USAGE))]

    async def _bytes(self):
        yield msgspec.json.encode(_chunk("hi"))
        yield [msgspec.json.encode(_chunk("", finish="stop")),
               msgspec.json.format(msgspec.json.encode(_chunk(None, usage=USAGE)), indent=1)]  # "choices": []

    async def _continuous(self):
        yield [msgspec.json.encode(_chunk("hi", usage={**USAGE, "completion_tokens": 1, "total_tokens": 21})),
               msgspec.json.encode(_chunk("", finish="stop", usage=USAGE))]
        yield msgspec.json.encode(_chunk(None, usage=USAGE))


class _Plugin:
    @sidecar.hookimpl
    def sidecar_providers(self):
        return [_UsageProvider()]


@pytest.fixture
async def gateway(aiohttp_client, make_config):
    from sidecar.app import create_app

    pm = get_plugin_manager(load_entrypoints=False)
    pm.register(_Plugin())
    config = make_config({"model_list": [
        {"model_name": form, "litellm_params": {"model": f"usage/{form}", "tpm": 1000}, "model_info": {"id": form}}
        for form in ("structs", "bytes", "continuous")]})
    return await aiohttp_client(create_app(config, pm=pm))


async def _stream(client, model: str, **extra) -> list[dict]:
    resp = await client.post(CHAT, json={"model": model, "messages": user("hi"), "stream": True, **extra})
    assert resp.status == 200
    return assert_valid_stream(await resp.read())


async def _tokens_counted(client, dep_id: str, expected: int) -> None:
    """The router's count of this minute's tokens for ``dep_id`` reaches ``expected`` (a stream's
    tokens are counted when it ends, just after its last bytes leave)."""
    state = client.app[keys.ROUTER].state
    await until(lambda: state.usage(dep_id, time.monotonic())[1] == expected, what=f"{expected} tokens counted")


@pytest.mark.parametrize("form", ["structs", "bytes", "continuous"])
async def test_an_unasked_usage_chunk_is_dropped_but_its_tokens_are_counted(gateway, form):
    chunks = await _stream(gateway, form)
    assert all(c["choices"] for c in chunks), chunks  # no usage chunk
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    if form == "continuous":  # per-chunk usage stays on the chunks that carry it
        assert chunks[0]["usage"]["total_tokens"] == 21 and chunks[-1]["usage"] == USAGE
    await _tokens_counted(gateway, form, 50)  # the real usage, not the request's estimate
    status, body, headers = await post(gateway, CHAT, {"model": form, "messages": user("hi")})
    assert status == 200 and headers["x-ratelimit-remaining-tokens"] == str(1000 - 50 - 7), body


@pytest.mark.parametrize("form", ["structs", "bytes", "continuous"])
async def test_an_asked_for_usage_chunk_comes_last_and_valid(gateway, form):
    chunks = await _stream(gateway, form, stream_options={"include_usage": True})  # (each checked against the spec)
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"] == USAGE
    assert all(c["choices"] for c in chunks[:-1])
    await _tokens_counted(gateway, form, 50)


@pytest.mark.parametrize("asked", [False, True])
async def test_legacy_completions_streams_too(make_client, asked):
    client = await make_client()
    options = {"stream_options": {"include_usage": True}} if asked else {}
    resp = await client.post("/v1/completions", json={"model": "mock-gpt", "prompt": "say hi", "stream": True,
                                                      **options})
    assert resp.status == 200
    chunks, done = parse_sse(await resp.read())
    assert done
    assert [c for c in chunks if "usage" in c] == ([chunks[-1]] if asked else [])
    finish = chunks[-2] if asked else chunks[-1]
    assert finish["choices"][-1]["finish_reason"] == "stop"
    if asked:
        assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["total_tokens"] > 0


# ---------------------------------------------------------------- the openai plugin asks its upstream


async def test_the_openai_plugin_asks_for_usage_and_the_client_gets_it_only_when_asked(make_client, openai_fake):
    client = await make_client({"model_list": [dep("m", "openai/gpt-4o-mini", openai_fake.base_url, tpm=1000)]})
    chunks = await _stream(client, "m")
    assert openai_fake.last.body["stream_options"] == {"include_usage": True}
    assert all(c["choices"] for c in chunks) and not any("usage" in c for c in chunks)
    await _tokens_counted(client, "dep-m", 13)  # the fake's usage for this answer
    chunks = await _stream(client, "m", stream_options={"include_usage": True})
    assert openai_fake.last.body["stream_options"] == {"include_usage": True}
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["total_tokens"] == 13
    await _tokens_counted(client, "dep-m", 26)


@pytest.mark.parametrize(("model", "api_version", "asks"), [
    ("groq/llama-3.1-8b-instant", None, False),  # (a service not known to take stream_options)
    ("azure/gpt-4o", "2024-06-01", False),  # Azure before 2024-09-01 refuses it
    ("azure/gpt-4o", "2024-10-21", True),
])
async def test_the_openai_plugin_asks_only_upstreams_that_take_stream_options(make_client, openai_fake, azure_fake,
                                                                               model, api_version, asks):
    fake = azure_fake if model.startswith("azure/") else openai_fake
    extra = {"api_version": api_version} if api_version else {}
    entry = dep("m", model, fake.base_url if fake is openai_fake else fake.root_url, **extra)
    if fake is azure_fake:
        from openai_helpers import AZURE_KEY

        entry["litellm_params"]["api_key"] = AZURE_KEY
    client = await make_client({"model_list": [entry]})
    chunks = await _stream(client, "m")
    assert ("stream_options" in fake.last.body) == asks
    assert all(c["choices"] for c in chunks)

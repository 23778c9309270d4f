"""Azure OpenAI SDK clients (``AzureOpenAI(azure_endpoint=<sidecar>)``) against a really served
sidecar: ``/openai/deployments/{model}/...?api-version=``, the path naming the model group, the
master key in the ``api-key`` header."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import openai
import pytest
from aiohttp import web

from fake_media import SPEECH, MediaFake
from fake_upstreams import OpenAIFake, embedding_vector, start
from sidecar.app import create_app

MASTER = "sk-sidecar-master-key-azure"
UPSTREAM_KEY = "sk-test-secret-123456789"
API_VERSION = "2024-10-21"
WAIT = 10.0


def config(fake: OpenAIFake) -> dict[str, Any]:
    def upstream(name: str, model: str) -> dict[str, Any]:
        return {"model_name": name, "model_info": {"id": f"dep-{name}"},
                "litellm_params": {"model": model, "api_base": fake.base_url, "api_key": UPSTREAM_KEY,
                                   "num_retries": 0}}

    return {
        "model_list": [
            {"model_name": "mock-gpt", "litellm_params": {"model": "mock/mock-gpt"}},
            upstream("gpt-4o-mini", "openai/gpt-4o-mini"),
            upstream("text-embedding-3-small", "openai/text-embedding-3-small"),
            upstream("gpt-35-turbo-instruct", "openai/gpt-3.5-turbo-instruct"),
            upstream("dall-e-3", "openai/dall-e-3"),
            upstream("tts-1", "openai/tts-1"),
            upstream("whisper-1", "openai/whisper-1"),
        ],
        "general_settings": {"master_key": MASTER},
    }


@pytest.fixture
async def fake(aiohttp_server) -> MediaFake:
    return await start(aiohttp_server, MediaFake(api_key=UPSTREAM_KEY))


@pytest.fixture
async def endpoint(make_config, fake) -> AsyncIterator[str]:
    """The sidecar served on a free port: the ``azure_endpoint`` of the clients."""
    runner = web.AppRunner(create_app(make_config(config(fake))), shutdown_timeout=2)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    yield f"http://{host}:{port}"
    await runner.cleanup()


def async_client(endpoint: str, api_key: str = MASTER) -> openai.AsyncAzureOpenAI:
    return openai.AsyncAzureOpenAI(azure_endpoint=endpoint, api_key=api_key, api_version=API_VERSION,
                                   max_retries=0, timeout=WAIT,
                                   http_client=openai.DefaultAsyncHttpxClient(trust_env=False))


def sync_client(endpoint: str, api_key: str = MASTER) -> openai.AzureOpenAI:
    return openai.AzureOpenAI(azure_endpoint=endpoint, api_key=api_key, api_version=API_VERSION,
                              max_retries=0, timeout=WAIT, http_client=openai.DefaultHttpxClient(trust_env=False))


def say(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


async def test_async_azure_client_chat_streaming_and_embeddings(endpoint, fake):
    async with async_client(endpoint) as sdk:
        raw = await asyncio.wait_for(sdk.chat.completions.with_raw_response.create(
            model="gpt-4o-mini", messages=say("Say hi")), WAIT)
        completion = raw.parse()

        async def streamed() -> str:
            stream = await sdk.chat.completions.create(model="mock-gpt", messages=say("Say hi"), stream=True)
            return "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])

        text = await asyncio.wait_for(streamed(), WAIT)
        vectors = await asyncio.wait_for(sdk.embeddings.create(model="text-embedding-3-small", input=["a", "b"],
                                                               encoding_format="float"), WAIT)
    assert raw.http_request.url.path == "/openai/deployments/gpt-4o-mini/chat/completions"
    assert raw.http_request.url.params["api-version"] == API_VERSION
    assert raw.headers["x-litellm-model-group"] == "gpt-4o-mini"
    assert completion.choices[0].message.content == "Hello from OpenAI. Say hi"
    assert text == "Mock reply to: Say hi"
    assert [d.embedding for d in vectors.data] == [embedding_vector(0, 4), embedding_vector(1, 4)]
    # what went upstream: the group's upstream model, OpenAI's paths, the deployment's key
    assert [(r.path, r.body["model"]) for r in fake.received] == [
        ("/v1/chat/completions", "gpt-4o-mini"), ("/v1/embeddings", "text-embedding-3-small")]
    assert all(r.headers["Authorization"] == f"Bearer {UPSTREAM_KEY}" for r in fake.received)
    assert all(MASTER not in str(r.headers) for r in fake.received)


async def test_path_names_the_group_over_the_body(endpoint, fake):
    """``azure_deployment`` fixes the path; the body's ``model`` (another group here) is replaced."""
    sdk = openai.AsyncAzureOpenAI(azure_endpoint=endpoint, azure_deployment="gpt-4o-mini", api_key=MASTER,
                                  api_version=API_VERSION, max_retries=0, timeout=WAIT,
                                  http_client=openai.DefaultAsyncHttpxClient(trust_env=False))
    async with sdk:
        raw = await asyncio.wait_for(sdk.chat.completions.with_raw_response.create(
            model="mock-gpt", messages=say("Which?")), WAIT)
    assert raw.headers["x-litellm-model-id"] == "dep-gpt-4o-mini"
    assert raw.parse().choices[0].message.content == "Hello from OpenAI. Which?"
    assert fake.last.body["model"] == "gpt-4o-mini"


async def test_sync_azure_client_in_a_thread(endpoint):
    def run() -> dict[str, Any]:
        out: dict[str, Any] = {}
        with sync_client(endpoint) as sdk:
            out["chat"] = sdk.chat.completions.create(model="mock-gpt", messages=say("Say hi"))
            with sdk.chat.completions.create(model="mock-gpt", messages=say("Say hi"), stream=True) as stream:
                out["streamed"] = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
            try:
                sdk.chat.completions.create(model="no-such-group", messages=say("hi"))
            except openai.NotFoundError as exc:
                out["missing"] = exc
        with sync_client(endpoint, api_key="sk-wrong") as sdk:
            try:
                sdk.chat.completions.create(model="mock-gpt", messages=say("hi"))
            except openai.AuthenticationError as exc:
                out["auth"] = exc
        return out

    out = await asyncio.wait_for(asyncio.to_thread(run), WAIT)
    assert out["chat"].choices[0].message.content == "Mock reply to: Say hi"
    assert out["streamed"] == "Mock reply to: Say hi"
    assert out["missing"].status_code == 404 and "no-such-group" in out["missing"].message
    assert out["auth"].status_code == 401


@pytest.mark.parametrize("header", ["api-key", "x-api-key", "Authorization"])
async def test_every_key_header_is_accepted(make_client, header):
    client = await make_client({"model_list": [{"model_name": "m", "litellm_params": {"model": "mock/m"}}],
                                "general_settings": {"master_key": MASTER}})
    value = f"Bearer {MASTER}" if header == "Authorization" else MASTER
    body = {"messages": say("hi")}
    ok = await client.post(f"/openai/deployments/m/chat/completions?api-version={API_VERSION}", json=body,
                           headers={header: value})
    assert ok.status == 200, await ok.text()
    bad = await client.post(f"/openai/deployments/m/chat/completions?api-version={API_VERSION}", json=body,
                            headers={header: "Bearer sk-nope" if header == "Authorization" else "sk-nope"})
    assert bad.status == 401


async def test_async_azure_client_completions_images_and_audio(endpoint, fake):
    async with async_client(endpoint) as sdk:
        completion = await asyncio.wait_for(sdk.completions.with_raw_response.create(
            model="gpt-35-turbo-instruct", prompt="Say hi"), WAIT)
        images = await asyncio.wait_for(sdk.images.generate(model="dall-e-3", prompt="a fox",
                                                            response_format="url"), WAIT)
        audio = await asyncio.wait_for(sdk.audio.speech.create(model="tts-1", voice="alloy", input="Hi"), WAIT)
        heard = await asyncio.wait_for(sdk.audio.transcriptions.create(
            model="whisper-1", file=("a.mp3", b"ID3 audio bytes", "audio/mpeg")), WAIT)
    assert completion.http_request.url.path == "/openai/deployments/gpt-35-turbo-instruct/completions"
    assert completion.parse().choices[0].text == "Hello from OpenAI. Say hi"
    assert images.data[0].url == "https://files.example/img-1.png"
    assert audio.content == SPEECH
    assert heard.text == "Transcribed 15 bytes of a.mp3."
    assert [(r.path, r.body["model"]) for r in fake.received] == [
        ("/v1/completions", "gpt-3.5-turbo-instruct"), ("/v1/images/generations", "dall-e-3"),
        ("/v1/audio/speech", "tts-1"), ("/v1/audio/transcriptions", "whisper-1")]

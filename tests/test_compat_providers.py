"""The openai plugin's other prefixes through the gateway, against fakes of each wire format:
OpenAI-compatible services (``cerebras/``, ``deepinfra/``, ``nvidia_nim/``, ``lm_studio/``,
``sambanova/``), ``azure_ai/``, ``text-completion-openai/`` and ``voyage/``."""

from __future__ import annotations

import asyncio
import base64
import socket
import struct

import openai
import pytest
from fake_compat import AzureAIFake, TextCompletionFake, VoyageFake
from fake_upstreams import OpenAIFake, embedding_vector, start
from openai_helpers import KEY, assert_envelope, decode, post, user
from openai_spec import assert_valid

from sidecar.plugins import collect_providers, get_plugin_manager
from sidecar.testing import deployment

WAIT = 10.0
AZURE_AI_KEY = "azure-ai-key-0123456789abcdef"
VOYAGE_KEY = "pa-voyage-key-0123456789"


def sdk(client) -> openai.AsyncOpenAI:
    """The official SDK, as a client of the test server (closed by ``async with``)."""
    return openai.AsyncOpenAI(base_url=str(client.make_url("/v1")), api_key="anything", max_retries=0, timeout=WAIT,
                              http_client=openai.DefaultAsyncHttpxClient(trust_env=False))


entry = deployment


@pytest.fixture
def providers():
    return collect_providers(get_plugin_manager())


# ---------------------------------------------------------------- OpenAI-compatible services

SERVICES = [  # prefix, default api_base, key variable, api_base variable (LiteLLM's)
    ("cerebras", "https://api.cerebras.ai/v1", "CEREBRAS_API_KEY", "CEREBRAS_API_BASE"),
    ("deepinfra", "https://api.deepinfra.com/v1/openai", "DEEPINFRA_API_KEY", "DEEPINFRA_API_BASE"),
    ("nvidia_nim", "https://integrate.api.nvidia.com/v1", "NVIDIA_NIM_API_KEY", "NVIDIA_NIM_API_BASE"),
    ("lm_studio", None, "LM_STUDIO_API_KEY", "LM_STUDIO_API_BASE"),
    ("sambanova", "https://api.sambanova.ai/v1", "SAMBANOVA_API_KEY", "SAMBANOVA_API_BASE"),
]


@pytest.mark.parametrize(("prefix", "default_base", "key_env", "base_env"), [
    *SERVICES, ("text-completion-openai", "https://api.openai.com/v1", "OPENAI_API_KEY", None)])
def test_service_defaults(providers, monkeypatch, prefix, default_base, key_env, base_env):
    if base_env is not None:
        monkeypatch.delenv(base_env, raising=False)
    monkeypatch.setenv(key_env, "env-key-0123456789")
    provider = providers[prefix]
    if default_base is None:
        with pytest.raises(Exception, match=base_env):
            provider.endpoint({}, "m", "chat/completions")
        return
    url, headers = provider.endpoint({}, "m", "chat/completions")
    assert str(url) == f"{default_base}/chat/completions"
    assert headers["Authorization"] == "Bearer env-key-0123456789"
    assert provider.ambient_credentials({}) == ["env-key-0123456789"]


@pytest.mark.parametrize(("prefix", "default_base", "key_env", "base_env"), SERVICES)
async def test_service_chat_with_key_and_base_from_the_environment(make_client, aiohttp_server, monkeypatch,
                                                                   prefix, default_base, key_env, base_env):
    fake = await start(aiohttp_server, OpenAIFake(api_key=KEY))
    monkeypatch.setenv(base_env, fake.base_url)
    monkeypatch.setenv(key_env, KEY)
    client = await make_client({"model_list": [entry("m", f"{prefix}/llama-3.3-70b")]})
    async with sdk(client) as openai_client:
        raw = await asyncio.wait_for(openai_client.chat.completions.with_raw_response.create(
            model="m", messages=user("Say hi"), temperature=0.3), WAIT)
    answer = decode(raw.content)
    assert_valid(answer, "CreateChatCompletionResponse")
    assert answer["choices"][0]["message"]["content"] == "Hello from OpenAI. Say hi"
    got = fake.last
    assert (got.path, got.headers["Authorization"]) == ("/v1/chat/completions", f"Bearer {KEY}")
    assert got.body == {"model": "llama-3.3-70b", "messages": user("Say hi"), "temperature": 0.3}


# ---------------------------------------------------------------- azure_ai


@pytest.mark.parametrize(("base", "path", "url"), [
    ("https://my-llama.eastus2.models.ai.azure.com", "chat/completions",
     "https://my-llama.eastus2.models.ai.azure.com/chat/completions"),
    ("https://res.services.ai.azure.com", "chat/completions", "https://res.services.ai.azure.com/models/chat/completions"),
    ("https://res.services.ai.azure.com/models", "embeddings", "https://res.services.ai.azure.com/models/embeddings"),
    ("https://res.services.ai.azure.com/models/chat/completions?api-version=2024-05-01-preview", "chat/completions",
     "https://res.services.ai.azure.com/models/chat/completions?api-version=2024-05-01-preview"),
    ("https://x.inference.ai.azure.com/v1/", "chat/completions", "https://x.inference.ai.azure.com/v1/chat/completions"),
])
def test_azure_ai_urls(providers, base, path, url):
    got, headers = providers["azure_ai"].endpoint({"api_base": base, "api_key": AZURE_AI_KEY}, "m", path)
    assert str(got) == url
    foundry = ".services.ai.azure.com" in base
    assert headers.get("api-key") == (AZURE_AI_KEY if foundry else None)
    assert headers.get("Authorization") == (None if foundry else f"Bearer {AZURE_AI_KEY}")


async def test_azure_ai_serverless_chat_and_embeddings(make_client, aiohttp_server):
    fake = await start(aiohttp_server, AzureAIFake(api_key=AZURE_AI_KEY))
    params = {"api_base": fake.root_url, "api_key": AZURE_AI_KEY, "api_version": "2024-05-01-preview"}
    client = await make_client({"model_list": [entry("mistral", "azure_ai/mistral-large", **params),
                                               entry("cohere-embed", "azure_ai/embed-v-4-0", **params)]})
    async with sdk(client) as openai_client:
        completion = await asyncio.wait_for(openai_client.chat.completions.create(
            model="mistral", messages=user("Say hi")), WAIT)
        stream = await asyncio.wait_for(openai_client.chat.completions.create(
            model="mistral", messages=user("Say hi"), stream=True), WAIT)
        chunks = [chunk async for chunk in stream]
    assert completion.choices[0].message.content == "Hello from Azure AI. Say hi"
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "Hello from Azure AI. Say hi"
    got = fake.last
    assert (got.path, got.query) == ("/chat/completions", {"api-version": "2024-05-01-preview"})
    assert got.headers["Authorization"] == f"Bearer {AZURE_AI_KEY}" and "api-key" not in got.headers
    assert got.body == {"model": "mistral-large", "messages": user("Say hi"), "stream": True}

    status, answer, _ = await post(client, "/v1/embeddings", {"model": "cohere-embed", "input": ["a", "b"]})
    assert status == 200, answer
    assert_valid(answer, "CreateEmbeddingResponse")
    assert fake.last.path == "/embeddings" and fake.last.body == {"model": "embed-v-4-0", "input": ["a", "b"]}


@pytest.fixture
def foundry_dns(monkeypatch):
    """``*.services.ai.azure.com`` resolves to 127.0.0.1 for the sidecar's upstream client (either
    one: both resolve through ``socket.getaddrinfo``, in a thread)."""
    real = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):
        local = "127.0.0.1" if isinstance(host, str) and host.endswith(".services.ai.azure.com") else host
        return real(local, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


async def test_azure_ai_foundry_resource_uses_models_path_and_api_key_header(make_client, aiohttp_server,
                                                                             foundry_dns, monkeypatch):
    fake = await start(aiohttp_server, AzureAIFake(api_key=AZURE_AI_KEY))
    monkeypatch.setenv("AZURE_AI_API_BASE", f"http://my-res.services.ai.azure.com:{fake.server.port}")
    monkeypatch.setenv("AZURE_AI_API_KEY", AZURE_AI_KEY)
    client = await make_client({"model_list": [entry("phi", "azure_ai/Phi-4")]})
    status, answer, _ = await post(client, "/v1/chat/completions", {"model": "phi", "messages": user("hi")})
    assert status == 200, answer
    assert_valid(answer, "CreateChatCompletionResponse")
    got = fake.last
    assert got.path == "/models/chat/completions"
    assert got.headers["api-key"] == AZURE_AI_KEY and "Authorization" not in got.headers
    assert got.body == {"model": "Phi-4", "messages": user("hi")}


async def test_azure_ai_without_api_base_is_a_400(make_client, monkeypatch):
    monkeypatch.delenv("AZURE_AI_API_BASE", raising=False)
    client = await make_client({"model_list": [entry("phi", "azure_ai/Phi-4", api_key=AZURE_AI_KEY)]})
    status, answer, _ = await post(client, "/v1/chat/completions", {"model": "phi", "messages": user("hi")})
    assert status == 400
    assert "AZURE_AI_API_BASE" in assert_envelope(answer)["message"]


# ---------------------------------------------------------------- text-completion-openai


@pytest.mark.parametrize("key_from", ["api_key", "OPENAI_API_KEY"])
async def test_text_completion_openai_serves_chat_from_completions(make_client, aiohttp_server, monkeypatch,
                                                                   key_from):
    """The key from litellm_params.api_key (over $OPENAI_API_KEY), or from $OPENAI_API_KEY alone."""
    fake = await start(aiohttp_server, TextCompletionFake(api_key=KEY))
    params = {"api_base": fake.base_url}
    if key_from == "api_key":
        params["api_key"] = KEY
        monkeypatch.setenv("OPENAI_API_KEY", "sk-not-this-one-0123456789")
    else:
        monkeypatch.setenv("OPENAI_API_KEY", KEY)
    client = await make_client({"model_list": [entry("davinci", "text-completion-openai/davinci-002", **params)]})
    async with sdk(client) as openai_client:
        completion = await asyncio.wait_for(openai_client.chat.completions.create(
            model="davinci", messages=user("Once upon"), max_completion_tokens=20, stop=["\n"]), WAIT)
        got = fake.last
        stream = await asyncio.wait_for(openai_client.chat.completions.create(
            model="davinci", messages=user("Once upon"), stream=True), WAIT)
        chunks = [chunk async for chunk in stream]
    assert completion.object == "chat.completion"
    assert completion.choices[0].message.content == "Hello from davinci. Once upon"
    assert completion.usage.total_tokens == 12
    assert (got.path, got.headers["Authorization"]) == ("/v1/completions", f"Bearer {KEY}")
    assert got.body == {"model": "davinci-002", "prompt": "Once upon", "max_tokens": 20, "stop": ["\n"]}
    for chunk in chunks:
        assert_valid(chunk.model_dump(exclude_unset=True), "CreateChatCompletionStreamResponse")
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "Hello from davinci. Once upon "
    assert chunks[-1].choices[0].finish_reason == "length"

    # several messages: one prompt each, as LiteLLM sends them
    status, answer, _ = await post(client, "/v1/chat/completions", {
        "model": "davinci", "messages": [{"role": "system", "content": "Story:"}, *user("Once")]})
    assert status == 200, answer
    assert_valid(answer, "CreateChatCompletionResponse")
    assert fake.last.body["prompt"] == ["Story:", "Once"]
    assert [c["message"]["content"] for c in answer["choices"]] == ["Hello from davinci. Story:",
                                                                   "Hello from davinci. Once"]


# ---------------------------------------------------------------- voyage


async def test_voyage_embeddings(make_client, aiohttp_server, monkeypatch):
    fake = await start(aiohttp_server, VoyageFake(api_key=VOYAGE_KEY))
    monkeypatch.setenv("VOYAGE_API_KEY", VOYAGE_KEY)
    client = await make_client({"model_list": [
        entry("voyage", "voyage/voyage-3.5", api_base=fake.base_url, input_type="document")]})
    status, answer, headers = await post(client, "/v1/embeddings", {
        "model": "voyage", "input": ["one", "two words"], "dimensions": 6, "encoding_format": "float"})
    assert status == 200, answer
    assert headers["x-litellm-model-id"] == "dep-voyage"
    assert_valid(answer, "CreateEmbeddingResponse")
    assert [d["embedding"] for d in answer["data"]] == [embedding_vector(0, 6), embedding_vector(1, 6)]
    assert answer["usage"] == {"prompt_tokens": 3, "total_tokens": 3}
    got = fake.last
    assert (got.path, got.headers["Authorization"]) == ("/v1/embeddings", f"Bearer {VOYAGE_KEY}")
    assert got.body == {"input": ["one", "two words"], "model": "voyage-3.5", "input_type": "document",
                        "output_dimension": 6}

    status, answer, _ = await post(client, "/v1/embeddings", {
        "model": "voyage", "input": "q", "encoding_format": "base64", "input_type": "query"})
    assert status == 200, answer
    assert fake.last.body == {"input": "q", "model": "voyage-3.5", "input_type": "query", "encoding_format": "base64"}
    assert list(struct.unpack("<4f", base64.b64decode(answer["data"][0]["embedding"]))) == embedding_vector(0, 4)

    status, answer, _ = await post(client, "/v1/embeddings", {"model": "voyage", "input": [[1, 2]]})
    assert status == 400 and assert_envelope(answer)["param"] == "input"


async def test_voyage_wrong_key_is_a_401_with_voyages_message(make_client, aiohttp_server, monkeypatch):
    fake = await start(aiohttp_server, VoyageFake(api_key=VOYAGE_KEY))
    client = await make_client({"model_list": [
        entry("voyage", "voyage/voyage-3.5", api_base=fake.base_url + "/embeddings", api_key="pa-wrong-key-000000")]})
    status, answer, _ = await post(client, "/v1/embeddings", {"model": "voyage", "input": "x"})
    assert status == 401
    error = assert_envelope(answer)
    assert "Provided API key is invalid." in error["message"] and "pa-wrong-key-000000" not in error["message"]
    assert fake.last.path == "/v1/embeddings"


def test_voyage_default_url_and_key_variables(providers, monkeypatch):
    for name in ("VOYAGE_API_KEY", "VOYAGE_AI_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("VOYAGE_AI_TOKEN", "pa-token-0123456789")
    voyage = providers["voyage"]
    assert str(voyage.url({})) == "https://api.voyageai.com/v1/embeddings"
    assert voyage.ambient_credentials({}) == ["pa-token-0123456789"]
    assert voyage.ambient_credentials({"api_key": "pa-own"}) == []

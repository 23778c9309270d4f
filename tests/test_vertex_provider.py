"""The ``vertex_ai`` provider (plugins/google) through the gateway: Vertex AI's URL with project
and location, bearer tokens from the real google-auth service-account flow against a fake token
endpoint (a test RSA key, checked by the fake), token caching and refresh, ``:predict``
embeddings, and ``vertex_ai/claude-*`` through the anthropic plugin (and without it)."""

from __future__ import annotations

import asyncio
import sys

import msgspec
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fake_google import GoogleFake
from fake_upstreams import start
from openai_helpers import assert_envelope, decode, post, user
from openai_spec import assert_valid

from sidecar import keys
from sidecar.testing import deployment
from sidecar_google.vertex import model_url

WAIT = 10.0
PROJECT, LOCATION = "my-proj", "europe-west4"
SCOPE = "https://www.googleapis.com/auth/cloud-platform"
MODEL_PATH = f"/v1/projects/{PROJECT}/locations/{LOCATION}/publishers/google/models"


def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def service_account(key: rsa.RSAPrivateKey, token_uri: str) -> dict:
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    return {"type": "service_account", "project_id": "sa-project", "private_key_id": "key-1", "private_key": pem,
            "client_email": "sidecar@sa-project.iam.gserviceaccount.com", "client_id": "1234567890",
            "token_uri": token_uri}


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return rsa_key()


@pytest.fixture
async def google(aiohttp_server, key) -> GoogleFake:
    return await start(aiohttp_server, GoogleFake(public_key=key.public_key()))


def entry(name: str, model: str, google: GoogleFake, credentials, **params) -> dict:
    return deployment(name, model, api_base=google.root_url, vertex_project=PROJECT, vertex_location=LOCATION,
                      vertex_credentials=credentials, **params)


@pytest.fixture
async def gateway(make_client, openai_sdk, google, key):
    creds = msgspec.json.encode(service_account(key, google.root_url + "/token")).decode()  # a JSON string
    client = await make_client({"model_list": [
        entry("flash", "vertex_ai/gemini-2.5-flash", google, creds, extra_body={"labels": {"team": "search"}}),
        entry("embed", "vertex_ai/text-embedding-005", google, creds),
        entry("claude", "vertex_ai/claude-sonnet-4-5@20250929", google, creds),
        entry("first-error", "vertex_ai/error-first", google, creds),
    ]})
    sdk = openai_sdk(client, timeout=WAIT)
    return client, sdk, creds


async def test_chat_goes_to_the_vertex_url_with_a_service_account_token(gateway, google):
    _, sdk, _ = gateway
    completion = await asyncio.wait_for(sdk.chat.completions.create(
        model="flash", messages=[{"role": "system", "content": "Be brief."}, *user("Say hi")], max_tokens=50), WAIT)
    assert_valid(completion.model_dump(exclude_unset=True), "CreateChatCompletionResponse")
    assert completion.choices[0].message.content == "Hello from Gemini. Say hi"
    [grant] = google.token_requests
    assert grant["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer"
    claims = grant["claims"]  # signed with the test key: the fake verified it
    assert (claims["iss"], claims["scope"], claims["aud"]) == (  # (google-auth's fixed audience)
        "sidecar@sa-project.iam.gserviceaccount.com", SCOPE, "https://oauth2.googleapis.com/token")
    got = google.last
    assert (got.path, got.query) == (f"{MODEL_PATH}/gemini-2.5-flash:generateContent", {})
    assert got.headers["Authorization"] == f"Bearer {google.issued[0]}"
    assert "x-goog-api-key" not in got.headers
    assert got.body == {"contents": [{"role": "user", "parts": [{"text": "Say hi"}]}],
                        "systemInstruction": {"parts": [{"text": "Be brief."}]},
                        "generationConfig": {"maxOutputTokens": 50},
                        "labels": {"team": "search"}}  # a configured extra_body, as LiteLLM merges it


async def test_stream_and_one_token_for_concurrent_requests(gateway, google):
    _, sdk, _ = gateway

    async def one() -> list:
        stream = await sdk.chat.completions.create(model="flash", messages=user("Say hi"), stream=True,
                                                   stream_options={"include_usage": True})
        return [chunk async for chunk in stream]

    runs = await asyncio.wait_for(asyncio.gather(*(one() for _ in range(5))), WAIT)
    assert len(google.token_requests) == 1 and len(google.issued) == 1  # one shared refresh
    for chunks in runs:
        for chunk in chunks:
            assert_valid(chunk.model_dump(exclude_unset=True), "CreateChatCompletionStreamResponse")
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Hello from Gemini. Say hi"
        assert chunks[-1].usage.total_tokens > 0
    assert {(r.path, r.query["alt"]) for r in google.received} == {(f"{MODEL_PATH}/gemini-2.5-flash:streamGenerateContent", "sse")}


async def test_token_near_expiry_is_refreshed_in_the_background(make_client, aiohttp_server, key):
    google = await start(aiohttp_server, GoogleFake(public_key=key.public_key(), expires_in=200))  # < 5 min left
    creds = service_account(key, google.root_url + "/token")  # a mapping, as YAML gives it
    client = await make_client({"model_list": [entry("m", "vertex_ai/gemini-2.5-flash", google, creds)]})
    body = {"model": "m", "messages": user("hi")}
    assert (await post(client, "/v1/chat/completions", body))[0] == 200
    assert len(google.issued) == 1
    # the token has 200 s left: the next request is served with it at once while a refresh runs
    assert (await post(client, "/v1/chat/completions", body))[0] == 200
    assert google.last.headers["Authorization"] == f"Bearer {google.issued[0]}"
    [dep] = list(client.app[keys.REGISTRY])
    [source] = dep.provider.tokens._sources.values()
    await asyncio.wait_for(asyncio.shield(source.refreshing), WAIT)
    assert len(google.issued) == 2
    assert (await post(client, "/v1/chat/completions", body))[0] == 200
    assert google.last.headers["Authorization"] == f"Bearer {google.issued[1]}"


@pytest.mark.parametrize("how", ["file", "application_default"])
async def test_credentials_file_or_adc_and_project_location_from_env(make_client, google, key, tmp_path, monkeypatch, how):
    path = tmp_path / "sa.json"
    path.write_bytes(msgspec.json.encode(service_account(key, google.root_url + "/token")))
    monkeypatch.setenv("VERTEXAI_LOCATION", "us-east5")
    params = {"model": "vertex_ai/gemini-2.5-flash", "api_base": google.root_url, "num_retries": 0}
    if how == "file":
        params["vertex_credentials"] = str(path)
        monkeypatch.setenv("VERTEXAI_PROJECT", "env-project")
        project = "env-project"
    else:
        monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(path))
        monkeypatch.delenv("VERTEXAI_PROJECT", raising=False)
        project = "sa-project"  # the credential's own project
    client = await make_client({"model_list": [{"model_name": "m", "litellm_params": params}]})
    status, answer, _ = await post(client, "/v1/chat/completions", {"model": "m", "messages": user("hi")})
    assert status == 200, answer
    assert google.last.path == f"/v1/projects/{project}/locations/us-east5/publishers/google/models/gemini-2.5-flash:generateContent"
    assert google.last.headers["Authorization"] == f"Bearer {google.issued[0]}"


def test_vertex_hosts_by_location():
    assert str(model_url(None, "p", "global", "google", "gemini-2.5-pro", "generateContent")) == \
        "https://aiplatform.googleapis.com/v1/projects/p/locations/global/publishers/google/models/gemini-2.5-pro:generateContent"
    assert str(model_url(None, "p", "us-central1", "google", "text-embedding-005", "predict")) == \
        "https://us-central1-aiplatform.googleapis.com/v1/projects/p/locations/us-central1/publishers/google/models/text-embedding-005:predict"


async def test_embeddings_through_predict(gateway, google):
    client, _, _ = gateway
    status, answer, _ = await post(client, "/v1/embeddings", {"model": "embed", "input": ["a", "b"], "dimensions": 4})
    assert status == 200, answer
    assert_valid(answer, "CreateEmbeddingResponse")
    assert [d["embedding"] for d in answer["data"]] == [[1.0, 0.5, 0.5, 0.5], [2.0, 0.5, 0.5, 0.5]]
    assert answer["usage"] == {"prompt_tokens": 4, "total_tokens": 4}
    assert google.last.path == f"{MODEL_PATH}/text-embedding-005:predict"
    assert google.last.body == {"instances": [{"content": "a"}, {"content": "b"}],
                                "parameters": {"outputDimensionality": 4}}


async def test_stream_error_first_is_a_rate_limit(gateway):
    client, _, _ = gateway
    status, answer, _ = await post(client, "/v1/chat/completions",
                                   {"model": "first-error", "messages": user("hi"), "stream": True})
    assert status == 429 and assert_envelope(answer)["type"] == "rate_limit_error"


async def test_a_key_the_token_endpoint_refuses_is_an_auth_error(make_client, google, caplog):
    creds = service_account(rsa_key(), google.root_url + "/token")  # not the key the fake trusts
    client = await make_client({"model_list": [entry("m", "vertex_ai/gemini-2.5-flash", google, creds)]})
    status, answer, _ = await post(client, "/v1/chat/completions", {"model": "m", "messages": user("hi")})
    assert status == 401
    error = assert_envelope(answer)
    assert "invalid_grant" in error["message"] and error["type"] == "authentication_error"
    assert google.issued == [] and not [r for r in google.received if r.path.startswith("/v1/")]
    secret_line = creds["private_key"].splitlines()[1]
    assert secret_line not in error["message"] and secret_line not in caplog.text


async def test_missing_project_is_a_400_naming_it(make_client, google, key, monkeypatch):
    monkeypatch.delenv("VERTEXAI_PROJECT", raising=False)
    creds = {k: v for k, v in service_account(key, google.root_url + "/token").items() if k != "project_id"}
    client = await make_client({"model_list": [{"model_name": "m", "litellm_params": {
        "model": "vertex_ai/gemini-2.5-flash", "api_base": google.root_url, "vertex_credentials": creds,
        "num_retries": 0}}]})
    status, answer, _ = await post(client, "/v1/chat/completions", {"model": "m", "messages": user("hi")})
    assert status == 400 and assert_envelope(answer)["param"] == "vertex_project"


@pytest.mark.parametrize("stream", [False, True])
async def test_claude_on_vertex_without_the_anthropic_plugin_is_a_400(gateway, google, monkeypatch, stream):
    monkeypatch.setitem(sys.modules, "sidecar_anthropic", None)  # import fails, installed or not
    client, _, _ = gateway
    status, answer, _ = await post(client, "/v1/chat/completions",
                                   {"model": "claude", "messages": user("hi"), "stream": stream})
    assert status == 400
    error = assert_envelope(answer)
    assert "anthropic plugin" in error["message"] and "sidecar_anthropic" in error["message"]
    assert error["code"] == "missing_plugin" and google.received == []


@pytest.mark.parametrize("stream", [False, True])
async def test_claude_on_vertex_goes_through_the_anthropic_translation(gateway, google, stream):
    _, sdk, _ = gateway
    if stream:
        chunks = [c async for c in await asyncio.wait_for(sdk.chat.completions.create(
            model="claude", messages=user("Say hi"), stream=True), WAIT)]
        for chunk in chunks:
            assert_valid(chunk.model_dump(exclude_unset=True), "CreateChatCompletionStreamResponse")
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    else:
        completion = await asyncio.wait_for(sdk.chat.completions.create(model="claude", messages=user("Say hi")), WAIT)
        assert_valid(completion.model_dump(exclude_unset=True), "CreateChatCompletionResponse")
        text = completion.choices[0].message.content
    assert text == "Hello from Anthropic. Say hi"
    sent = google.last
    assert sent.path == (f"/v1/projects/{PROJECT}/locations/{LOCATION}/publishers/anthropic/models/"
                         f"claude-sonnet-4-5@20250929:{'streamRawPredict' if stream else 'rawPredict'}")
    assert sent.body["anthropic_version"] == "vertex-2023-10-16" and "model" not in sent.body
    assert sent.body["messages"] == [{"role": "user", "content": [{"type": "text", "text": "Say hi"}]}]
    assert sent.body["max_tokens"] > 0
    assert sent.headers["Authorization"].startswith("Bearer ")


async def test_vertex_params_in_model_group_info(gateway):
    client, _, _ = gateway
    resp = await client.get("/model_group/info")
    rows = {row["model_group"]: row for row in (await resp.json())["data"]}
    assert rows["embed"]["supported_openai_params"] == ["dimensions", "encoding_format"]
    assert "reasoning_effort" in rows["flash"]["supported_openai_params"]
    assert rows["flash"]["providers"] == ["vertex_ai"] and rows["flash"]["mode"] == "chat"
    status, answer, _ = await post(client, "/v1/chat/completions",
                                   {"model": "flash", "messages": user("hi"), "logprobs": True})
    assert status == 400 and assert_envelope(answer)["param"] == "logprobs"
    assert decode(msgspec.json.encode(answer))["error"]["code"] == "unsupported_params"


@pytest.mark.parametrize("model", ["gemini-2.5-flash", "text-embedding-005", "gemini-embedding-001"])
def test_bare_vertex_catalog_models_infer_vertex_ai(model):
    """LiteLLM serves a bare ``gemini-2.5-flash`` through Vertex AI (its catalog says
    ``vertex_ai-language-models``): so does the sidecar, and the whole name goes upstream."""
    from sidecar.infer import infer_provider

    assert infer_provider(model, ["gemini", "vertex_ai", "openai"]) == ("vertex_ai", model)

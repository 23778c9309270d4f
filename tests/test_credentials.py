"""Credentials: a client's own api_base never receives the deployment's key, and keys a
provider reads from the environment are masked like configured ones."""

from __future__ import annotations

import logging

import pytest

from fake_upstreams import AzureFake, OpenAIFake, start
from openai_helpers import user

DEPLOYMENT_KEY = "sk-deployment-key-0123456789"
ENV_KEY = "gsk_envSecretKeyValue99"


async def test_client_api_base_gets_no_deployment_or_environment_key(make_client, aiohttp_server, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", ENV_KEY)
    home = await start(aiohttp_server, OpenAIFake(api_key=DEPLOYMENT_KEY))
    elsewhere = await start(aiohttp_server, OpenAIFake())
    client = await make_client({
        "model_list": [{"model_name": "gpt", "litellm_params": {
            "model": "openai/gpt-4o-mini", "api_base": home.base_url, "api_key": DEPLOYMENT_KEY}}],
        "general_settings": {"allow_client_side_credentials": True},
    })
    body = {"model": "gpt", "messages": user("hi"), "api_base": elsewhere.base_url}
    resp = await client.post("/v1/chat/completions", json=body)
    assert resp.status == 200
    assert not home.received
    assert "Authorization" not in elsewhere.last.headers  # neither the deployment's key nor $OPENAI_API_KEY

    resp = await client.post("/v1/chat/completions", json={**body, "api_key": "sk-client-own-key-1234"})
    assert resp.status == 200
    assert elsewhere.last.headers["Authorization"] == "Bearer sk-client-own-key-1234"

    resp = await client.post("/v1/chat/completions", json={"model": "gpt", "messages": user("hi"),
                                                          "api_key": DEPLOYMENT_KEY})
    assert resp.status == 200 and home.last.headers["Authorization"] == f"Bearer {DEPLOYMENT_KEY}"


async def test_a_key_from_the_environment_is_masked_in_errors_and_logs(make_client, aiohttp_server, monkeypatch,
                                                                       caplog):
    monkeypatch.setenv("OPENAI_API_KEY", ENV_KEY)
    fake = await start(aiohttp_server, OpenAIFake(api_key="sk-the-right-one-000000"))
    client = await make_client({"model_list": [{"model_name": "gpt", "litellm_params": {
        "model": "openai/gpt-4o-mini", "api_base": fake.base_url}}]})
    with caplog.at_level(logging.DEBUG):
        resp = await client.post("/v1/chat/completions", json={"model": "gpt", "messages": user("hi")})
    text = await resp.text()
    assert resp.status == 401
    assert fake.last.headers["Authorization"] == f"Bearer {ENV_KEY}"  # it was used...
    assert "Incorrect API key provided" in text
    assert ENV_KEY not in text and ENV_KEY not in caplog.text  # ...and never shown


async def test_azure_deployment_key_wins_over_an_environment_token(make_client, aiohttp_server, monkeypatch):
    monkeypatch.setenv("AZURE_AD_TOKEN", "env-ad-token-should-not-be-used")
    fake = await start(aiohttp_server, AzureFake(api_key="azure-deployment-key-42"))
    client = await make_client({"model_list": [{"model_name": "az", "litellm_params": {
        "model": "azure/my-deployment", "api_base": fake.root_url, "api_key": "azure-deployment-key-42"}}]})
    resp = await client.post("/v1/chat/completions", json={"model": "az", "messages": user("hi")})
    assert resp.status == 200
    assert fake.last.headers["api-key"] == "azure-deployment-key-42"
    assert "Authorization" not in fake.last.headers


@pytest.mark.parametrize("configured", [None, ""])
async def test_an_empty_configured_key_falls_back_to_the_environment(make_client, aiohttp_server, monkeypatch,
                                                                     configured):
    monkeypatch.setenv("OPENAI_API_KEY", ENV_KEY)
    monkeypatch.setenv("AZURE_API_KEY", "azure-env-key-111")
    fake = await start(aiohttp_server, OpenAIFake())
    azure = await start(aiohttp_server, AzureFake(api_key="azure-env-key-111"))
    client = await make_client({"model_list": [
        {"model_name": "gpt", "litellm_params": {"model": "openai/gpt-4o-mini", "api_base": fake.base_url,
                                                 "api_key": configured}},
        {"model_name": "az", "litellm_params": {"model": "azure/d", "api_base": azure.root_url,
                                                "api_key": configured}}]})
    for name in ("gpt", "az"):
        resp = await client.post("/v1/chat/completions", json={"model": name, "messages": user("hi")})
        assert resp.status == 200, await resp.text()
    assert fake.last.headers["Authorization"] == f"Bearer {ENV_KEY}"
    assert azure.last.headers["api-key"] == "azure-env-key-111"


async def test_a_key_the_client_sent_is_masked_too(make_client, aiohttp_server, caplog):
    fake = await start(aiohttp_server, OpenAIFake(api_key="sk-the-right-one-000000"))
    client = await make_client({
        "model_list": [{"model_name": "gpt", "litellm_params": {"model": "openai/gpt-4o-mini",
                                                                "api_base": fake.base_url}}],
        "general_settings": {"allow_client_side_credentials": True}})
    with caplog.at_level(logging.DEBUG):
        resp = await client.post("/v1/chat/completions", json={
            "model": "gpt", "messages": user("hi"), "api_key": "gsk_clientSecret12345"})
    assert resp.status == 401
    assert "gsk_clientSecret12345" not in await resp.text()
    assert "gsk_clientSecret12345" not in caplog.text


@pytest.mark.parametrize("api_base", ["http://[::1", "http://127.0.0.1:99999/v1"])
async def test_a_malformed_api_base_is_a_400(make_client, api_base):
    client = await make_client({"model_list": [{"model_name": "gpt", "litellm_params": {
        "model": "openai/gpt-4o-mini", "api_base": api_base, "api_key": "sk-x-000000000"}}]})
    resp = await client.post("/v1/chat/completions", json={"model": "gpt", "messages": user("hi")})
    assert resp.status == 400
    error = (await resp.json())["error"]
    assert error["param"] == "api_base" and "99999" not in error["message"] and "::1" not in error["message"]

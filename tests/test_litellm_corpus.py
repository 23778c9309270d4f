"""LiteLLM's own example configs start the sidecar (tests/litellm_corpus.py fetches them).

Each config, rewritten only to point every deployment at a fake upstream (``api_base``; and
``openai/`` before the model where its provider has no plugin installed yet), with dummy values
for its ``os.environ/`` variables, starts and answers one request to its first chat model. Each
also loads unchanged: it starts, or stops only on a provider no installed plugin offers."""

from __future__ import annotations

import os
import re
import sys
import warnings
from typing import Any

import pytest
from fake_anthropic import AnthropicFake
from fake_bedrock import BedrockFake
from fake_ollama import OllamaFake
from fake_upstreams import AzureFake, OpenAIFake, start
from litellm_corpus import LITELLM_VERSION, corpus
from openai_spec import assert_valid

from sidecar import keys
from sidecar.app import create_app
from sidecar.config import ConfigError, parse_config, read_yaml
from sidecar.infer import ProviderUnknown, infer_provider
from sidecar.info import deployment_info
from sidecar.plugins import collect_providers, get_plugin_manager

CONFIGS, WHY = corpus()
if WHY:  # skipped, never silently: the reason is in the warnings summary and on stderr
    sys.stderr.write(f"\ntest_litellm_corpus: skipped: {WHY}\n")
    warnings.warn(f"LiteLLM example configs not tested: {WHY}", stacklevel=1)
NAMES = sorted(CONFIGS) or [pytest.param(None, marks=pytest.mark.skip(reason=f"litellm corpus unavailable: {WHY}"))]
CONFIG_COUNT = 27
NOT_UNCHANGED = {"example_config_yaml/adaptive_router_example.yaml",  # auto_router/: not served
                 "example_config_yaml/load_balancer.yaml"}  # mistralai/...: no such provider
"""The configs that cannot load as written (the README's compatibility section names them)."""
"""How many example configs the pinned wheel ships (4 in ``proxy/``, 23 in ``example_config_yaml/``)."""


def test_the_whole_corpus_is_tested():
    """Under ``make test`` (``SIDECAR_REQUIRE_LITELLM_CORPUS=1``) a corpus that could not be had
    fails instead of skipping: CI must not go green having tested none of LiteLLM's configs."""
    if WHY and not os.environ.get("SIDECAR_REQUIRE_LITELLM_CORPUS"):
        pytest.skip(f"litellm corpus unavailable: {WHY}")
    assert not WHY, WHY
    assert len(CONFIGS) == CONFIG_COUNT, sorted(CONFIGS)
PROVIDERS = sorted(collect_providers(get_plugin_manager()))
_ENV_REF = re.compile(r"os\.environ/([A-Za-z_][A-Za-z0-9_]*)")


def load(name: str, monkeypatch, tmp_path) -> dict[str, Any]:
    """The config as Python data, with dummy values for its variables and a SQLite file."""
    raw = CONFIGS[name].read_bytes()
    for var in set(_ENV_REF.findall(raw.decode())):
        url = var.endswith(("_BASE", "_URL", "_BASE_URL"))
        monkeypatch.setenv(var, "http://127.0.0.1:9/v1" if url else f"dummy-{var.lower()}")
    data = read_yaml(raw, name)
    for var in (data.get("environment_variables") or {}):  # parse_config sets them: restore after
        monkeypatch.setenv(str(var), "")
    monkeypatch.setenv("SIDECAR_DATABASE_URL", f"sqlite:///{tmp_path}/corpus.db")
    return data


def provider_of(params: dict[str, Any]) -> str | None:
    try:
        return infer_provider(params["model"], PROVIDERS)[0]
    except ProviderUnknown:
        return None


def point_at(data: dict[str, Any], openai_base: str, bases: dict[str, str],
             extra: dict[str, dict[str, Any]] | None = None) -> None:
    """Every deployment to a fake of its protocol (``bases`` by provider, else the OpenAI fake):
    ``api_base`` and ``extra`` params by provider (Bedrock's endpoint and the fake's credentials),
    and ``openai/`` before a model no plugin serves."""
    for entry in data.get("model_list") or []:
        params = dict(entry.get("litellm_params") or {"model": entry["model_name"]})
        provider = provider_of(params)
        if provider is None:
            params["model"] = "openai/" + params["model"]
        params["api_base"] = bases.get(provider or "", openai_base)
        params.update((extra or {}).get(provider or "", {}))
        entry["litellm_params"] = params


def first_request(app) -> tuple[str, str, dict[str, Any]]:
    """(path, upstream model, body) for the first chat deployment (a model of unknown mode counts,
    as in LiteLLM), else the first wildcard, else the first embedding deployment."""
    deps = list(app[keys.REGISTRY])
    modes = {dep.id: deployment_info(dep)["mode"] for dep in deps if not dep.is_wildcard}
    chat = [d for d in deps if not d.is_wildcard and modes[d.id] in ("chat", None)]
    if chat:
        return "/v1/chat/completions", chat[0].upstream_model(), {
            "model": chat[0].model_name, "messages": [{"role": "user", "content": "hi"}]}
    wild = [d for d in deps if d.is_wildcard]
    if wild:
        return "/v1/chat/completions", wild[0].upstream_model("gpt-4o-mini"), {
            "model": wild[0].model_name.replace("*", "gpt-4o-mini", 1), "messages": [{"role": "user", "content": "hi"}]}
    embed = next(d for d in deps if modes[d.id] == "embedding")
    return "/v1/embeddings", embed.upstream_model(), {"model": embed.model_name, "input": "hi"}


@pytest.mark.parametrize("name", NAMES)
async def test_litellm_example_config_serves_a_request(name, monkeypatch, tmp_path, aiohttp_server, aiohttp_client):
    openai_fake = await start(aiohttp_server, OpenAIFake())
    bedrock = BedrockFake()
    others = {"azure": AzureFake(), "ollama": OllamaFake(), "anthropic": AnthropicFake(), "bedrock": bedrock}
    for fake in others.values():
        await start(aiohttp_server, fake)
    bases = {name: fake.root_url for name, fake in others.items()}
    data = load(name, monkeypatch, tmp_path)
    point_at(data, openai_fake.base_url, {**bases, "ollama_chat": bases["ollama"]}, {"bedrock": {
        "aws_bedrock_runtime_endpoint": bedrock.root_url, "aws_access_key_id": bedrock.access_key,
        "aws_secret_access_key": bedrock.secret_key, "aws_region_name": bedrock.region}})
    config = parse_config(data, source=f"litellm {LITELLM_VERSION} {name}")
    app = create_app(config)
    path, upstream, body = first_request(app)
    client = await aiohttp_client(app)
    headers = {"Authorization": f"Bearer {config.general.master_key}"} if config.general.master_key else {}
    resp = await client.post(path, json=body, headers=headers)
    assert resp.status == 200, await resp.text()
    answer = await resp.json()
    assert_valid(answer, "CreateChatCompletionResponse" if path.endswith("completions") else "CreateEmbeddingResponse")
    received = openai_fake.received + [r for fake in others.values() for r in fake.received]
    assert len(received) == 1
    assert (received[0].path == f"/model/{upstream.removeprefix('converse/')}/converse"  # (Bedrock: in the path)
            or received[0].body["model"] == upstream or received[0].path.startswith(f"/openai/deployments/{upstream}/"))


@pytest.mark.parametrize("name", NAMES)
def test_litellm_example_config_loads_unchanged(name, monkeypatch, tmp_path):
    data = load(name, monkeypatch, tmp_path)
    config = parse_config(data, source=name)  # never stops on a LiteLLM key or section
    missing = [i for i, entry in enumerate(data.get("model_list") or [])
               if provider_of(entry.get("litellm_params") or {"model": entry["model_name"]}) is None]
    assert bool(missing) == (name in NOT_UNCHANGED), missing
    if not missing:
        app = create_app(config)
        assert len(app[keys.REGISTRY]) == len(config.model_list)
        return
    with pytest.raises(ConfigError) as info:
        create_app(config)
    message = str(info.value)
    assert message.startswith(f"{name}: $.model_list[{missing[0]}].litellm_params.model: "), message
    assert "no installed plugin provides" in message or "prefix" in message

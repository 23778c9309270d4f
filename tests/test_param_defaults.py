"""A deployment's ``litellm_params`` as defaults for OpenAI request params (``temperature: 0.2``),
applied by the core for every provider: what reaches the upstream (the OpenAI fake records it),
the request's own value winning, per attempt (a retry or fallback elsewhere gets that
deployment's defaults, never the first one's), per capability, and checked at start-up."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from openai_helpers import dep, post, user

import sidecar
from sidecar.app import create_app
from sidecar.config import ConfigError
from sidecar.plugins import get_plugin_manager

CHAT = "/v1/chat/completions"
DEFAULTS = {"temperature": 0.2, "max_tokens": 50, "top_p": 0.9, "stop": ["END"], "seed": 7,
            "frequency_penalty": 0.5, "response_format": {"type": "json_object"}}


def sent(fake: Any, model: str) -> list[dict[str, Any]]:
    """The bodies the fake got for the upstream ``model``, in order."""
    return [r.body for r in fake.received if isinstance(r.body, dict) and r.body.get("model") == model]


async def test_defaults_reach_the_upstream_and_the_requests_own_values_win(make_client, openai_fake):
    client = await make_client({"model_list": [dep("m", "openai/gpt-4o-mini", openai_fake.base_url, **DEFAULTS)]})
    status, body, _ = await post(client, CHAT, {"model": "m", "messages": user("hi")})
    assert status == 200, body
    assert {k: openai_fake.last.body.get(k) for k in DEFAULTS} == DEFAULTS
    status, body, _ = await post(client, CHAT, {"model": "m", "messages": user("hi"), "temperature": 0.9,
                                                "stop": None, "max_completion_tokens": 20})
    assert status == 200, body
    got = openai_fake.last.body
    assert got["temperature"] == 0.9 and got["stop"] is None  # the request's own, even an explicit null
    assert got["max_completion_tokens"] == 20 and "max_tokens" not in got  # its synonym was sent: no default
    assert got["seed"] == 7 and got["top_p"] == 0.9


async def test_a_retry_on_another_deployment_gets_its_defaults_not_the_first_ones(make_client, openai_fake):
    first = dep("g", "openai/error-500", openai_fake.base_url, temperature=0.2, top_p=0.5, order=1, num_retries=1)
    second = dep("g", "openai/good", openai_fake.base_url, seed=3, order=2, num_retries=1)
    second["model_info"]["id"] = "dep-g2"
    client = await make_client({"model_list": [first, second]})
    status, body, headers = await post(client, CHAT, {"model": "g", "messages": user("hi")})
    assert status == 200 and headers["x-litellm-model-id"] == "dep-g2", body
    failed, served = sent(openai_fake, "error-500")[0], sent(openai_fake, "good")[0]
    assert (failed["temperature"], failed["top_p"]) == (0.2, 0.5) and "seed" not in failed
    assert served["seed"] == 3 and "temperature" not in served and "top_p" not in served


async def test_a_fallback_group_does_not_inherit_the_first_groups_defaults(make_client, openai_fake):
    client = await make_client({
        "model_list": [dep("main", "openai/error-503", openai_fake.base_url, temperature=0.2, max_tokens=9),
                       dep("backup", "openai/good", openai_fake.base_url, temperature=1.1)],
        "router_settings": {"fallbacks": [{"main": ["backup"]}]},
    })
    status, body, headers = await post(client, CHAT, {"model": "main", "messages": user("hi")})
    assert status == 200 and headers["x-litellm-model-id"] == "dep-backup", body
    assert sent(openai_fake, "error-503")[0]["temperature"] == 0.2
    served = sent(openai_fake, "good")[0]
    assert served["temperature"] == 1.1 and "max_tokens" not in served


async def test_only_the_capabilitys_params_are_applied(make_client, openai_fake):
    client = await make_client({"model_list": [
        dep("e", "openai/text-embedding-3-small", openai_fake.base_url, temperature=0.2, dimensions=4)]})
    status, body, _ = await post(client, "/v1/embeddings", {"model": "e", "input": "hi", "encoding_format": "float"})
    assert status == 200, body
    got = openai_fake.last.body
    assert got["dimensions"] == 4 and "temperature" not in got  # (temperature is no embedding param)


class _Recorder(sidecar.Provider):
    """Keeps each call, to see the typed request a provider is handed."""

    name = "recorder"
    capabilities = frozenset({"chat"})

    def __init__(self) -> None:
        self.calls: list[sidecar.ProviderCall] = []

    def supported_openai_params(self, model, capability=None):
        return ["temperature", "stop"]

    async def chat(self, call):
        self.calls.append(call)
        return sidecar.ChatCompletion(id="c1", model=call.model, choices=[sidecar.Choice(
            index=0, message=sidecar.ResponseMessage(content="ok"), finish_reason="stop")])


class _RecorderPlugin:
    def __init__(self) -> None:
        self.provider = _Recorder()

    @sidecar.hookimpl
    def sidecar_providers(self):
        return [self.provider]


async def test_the_typed_request_carries_the_defaults_and_unaccepted_ones_are_not_sent(aiohttp_client, make_config,
                                                                                         caplog):
    plugin = _RecorderPlugin()
    pm = get_plugin_manager(load_entrypoints=False)
    pm.register(plugin)
    config = make_config({"model_list": [{"model_name": "r", "litellm_params": {
        "model": "recorder/x", "temperature": "0.25", "stop": "END", "seed": 7}}]})
    with caplog.at_level(logging.WARNING, logger="sidecar"):
        client = await aiohttp_client(create_app(config, pm=pm))
    assert "litellm_params seed not sent with chat requests: recorder does not accept it for 'x'" in caplog.text
    status, body, _ = await post(client, CHAT, {"model": "r", "messages": user("hi")})
    assert status == 200, body
    call = plugin.provider.calls[-1]
    assert call.body["temperature"] == call.request.temperature == 0.25  # (YAML's string, as the param's type)
    assert call.body["stop"] == call.request.stop == "END"
    assert "seed" not in call.body
    status, body, _ = await post(client, CHAT, {"model": "r", "messages": user("hi"), "temperature": 1.0})
    assert plugin.provider.calls[-1].request.temperature == 1.0


@pytest.mark.parametrize("value", ["hot", [0.2]])
def test_a_default_of_the_wrong_type_stops_start_up_naming_it(make_config, value):
    config = make_config({"model_list": [{"model_name": "m", "litellm_params": {"model": "mock/x",
                                                                                "temperature": value}}]})
    with pytest.raises(ConfigError, match=r"\$\.model_list\[0\]\.litellm_params\.temperature: Expected `float"):
        create_app(config)


async def test_a_deployment_added_over_the_api_with_a_bad_default_is_a_400(make_client):
    client = await make_client({"model_list": [], "general_settings": {"master_key": "sk-admin-1234"}})
    resp = await client.post("/model/new", headers={"Authorization": "Bearer sk-admin-1234"}, json={
        "model_name": "m", "litellm_params": {"model": "mock/x", "max_tokens": "many"}})
    body = await resp.json()
    assert resp.status == 400 and body["error"]["param"] == "litellm_params.max_tokens", body

"""Plugins: the example third-party plugin found through its entry point, plugins registered by
hand, duplicate provider names, and ``sidecar plugins``."""

from __future__ import annotations

import importlib.metadata
import json

import pytest

from sidecar import Provider, ProviderCall, hookimpl
from sidecar.app import create_app
from sidecar.plugins import PluginError, collect_providers, describe_plugins, get_plugin_manager
from sidecar.provider import CAPABILITY_METHODS
from sidecar.wire import ChatCompletion, Choice, Embedding, EmbeddingResponse, ResponseMessage

from gateway_helpers import PREFIXES, assert_error, assert_valid_stream, run_sidecar, stream_text
from openai_spec import assert_valid

ECHO_CONFIG = {"model_list": [{"model_name": "shout", "litellm_params": {"model": "echo/shout"}},
                              {"model_name": "echo/*", "litellm_params": {"model": "echo/*"}}]}


def test_example_plugin_entry_point():
    eps = importlib.metadata.entry_points(group="llm_sidecar")
    [example] = [ep for ep in eps if ep.name == "example"]
    assert example.value == "sidecar_example"
    assert example.dist is not None and example.dist.version == "0.3.0"


def test_plugin_manager_lists_the_example_plugin():
    pm = get_plugin_manager()
    rows = {row["name"]: row for row in describe_plugins(pm)}
    example = rows["example"]
    assert example["version"] == "0.3.0"
    assert example["distribution"] == "sidecar-example"
    assert example["hooks"] == ["sidecar_providers"]
    assert example["providers"] == [{"name": "echo", "capabilities": ["chat"]},
                                    {"name": "parrot", "capabilities": ["chat", "embedding"]}]
    assert {"mock", "openai", "ollama", "anthropic"} <= set(rows)
    assert rows["anthropic"]["distribution"] == "sidecar-anthropic"
    assert rows["anthropic"]["providers"] == [{"name": "anthropic", "capabilities": ["chat"]}]
    assert rows["ollama"]["distribution"] == "sidecar-ollama"
    assert rows["ollama"]["providers"] == [{"name": "ollama", "capabilities": ["chat", "embedding"]},
                                           {"name": "ollama_chat", "capabilities": ["chat", "embedding"]}]
    assert "echo" in collect_providers(pm)


def test_no_entry_points_when_told():
    pm = get_plugin_manager(load_entrypoints=False)
    assert pm.get_plugins() == set()
    assert collect_providers(pm) == {}


@pytest.mark.parametrize("prefix", PREFIXES)
async def test_example_plugin_serves_chat(make_client, prefix):
    client = await make_client(ECHO_CONFIG)
    resp = await client.post(f"{prefix}/chat/completions",
                             json={"model": "shout", "messages": [{"role": "user", "content": "hello echo"}]})
    assert resp.status == 200, await resp.text()
    data = await resp.json()
    assert_valid(data, "CreateChatCompletionResponse")
    assert data["choices"][0]["message"]["content"] == "HELLO ECHO"
    assert data["model"] == "shout"
    resp = await client.post(f"{prefix}/chat/completions", json={
        "model": "echo/anything", "messages": [{"role": "user", "content": "stream me"}], "stream": True})
    assert resp.status == 200
    chunks = assert_valid_stream(await resp.read())
    assert stream_text(chunks) == "STREAM ME"
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert {c["model"] for c in chunks} == {"anything"}


class RecordingProvider(Provider):
    """A provider that answers with what it was handed, so tests can see the call."""

    name = "fake"
    capabilities = frozenset({"chat", "embedding"})

    def __init__(self) -> None:
        self.calls: list[ProviderCall] = []

    def supported_openai_params(self, model: str, capability: str | None = None) -> list[str]:
        return ["temperature", "stream"]

    async def chat(self, call: ProviderCall) -> ChatCompletion:
        self.calls.append(call)
        return ChatCompletion(id="chatcmpl-fake", model=call.model,
                              choices=[Choice(index=0, message=ResponseMessage(content=f"fake:{call.model}"))])

    async def embeddings(self, call: ProviderCall) -> EmbeddingResponse:
        self.calls.append(call)
        return EmbeddingResponse(data=[Embedding(index=0, embedding=[1.0, 0.0])], model=call.model)


class FakePlugin:
    __version__ = "9.9.9"

    def __init__(self, *providers: Provider) -> None:
        self.providers = list(providers)

    @hookimpl
    def sidecar_providers(self) -> list[Provider]:
        return self.providers


async def test_registered_plugin_serves_requests(make_client):
    provider = RecordingProvider()
    pm = get_plugin_manager(load_entrypoints=False)
    pm.register(FakePlugin(provider), name="fake-plugin")
    client = await make_client({"model_list": [
        {"model_name": "f", "litellm_params": {"model": "fake/upstream-name", "api_key": "sk-upstream",
                                               "custom_knob": 3}}]}, pm=pm)
    resp = await client.post("/v1/chat/completions", json={
        "model": "f", "messages": [{"role": "user", "content": "hi"}], "temperature": 0.5, "top_k": 5,
        "metadata": {"trace": "t"}, "drop_params": True, "seed": 4})
    assert resp.status == 200, await resp.text()
    data = await resp.json()
    assert_valid(data, "CreateChatCompletionResponse")
    assert data["choices"][0]["message"]["content"] == "fake:upstream-name"
    [call] = provider.calls
    assert call.model == "upstream-name"
    # gateway keys never go upstream; unsupported OpenAI params are dropped; other keys pass through
    assert call.body == {"model": "upstream-name", "messages": [{"role": "user", "content": "hi"}],
                         "temperature": 0.5, "top_k": 5}
    assert call.params["api_key"] == "sk-upstream" and call.params["custom_knob"] == 3
    assert call.stream is False
    assert resp.headers["x-litellm-model-id"] == call.deployment_id
    resp = await client.post("/embeddings", json={"model": "f", "input": "x"})
    assert resp.status == 200
    assert_valid(await resp.json(), "CreateEmbeddingResponse")
    # the installed plugins are not loaded: their providers are unknown here
    resp = await client.post("/v1/moderations", json={"model": "f", "input": "x"})
    await assert_error(resp, 400, param="model")
    rows = describe_plugins(pm)
    assert rows == [{"name": "fake-plugin", "distribution": None, "version": "9.9.9",
                     "hooks": ["sidecar_providers"], "providers": [{"name": "fake",
                                                                    "capabilities": ["chat", "embedding"]}]}]


def test_duplicate_provider_names_are_an_error(make_config):
    pm = get_plugin_manager(load_entrypoints=False)
    pm.register(FakePlugin(RecordingProvider()), name="one")
    pm.register(FakePlugin(RecordingProvider()), name="two")
    with pytest.raises(PluginError, match="fake"):
        collect_providers(pm)
    with pytest.raises(PluginError):
        create_app(make_config({"model_list": []}), pm=pm)


def test_duplicate_of_an_installed_provider_is_an_error():
    class Impostor(RecordingProvider):
        name = "mock"

    pm = get_plugin_manager()
    pm.register(FakePlugin(Impostor()), name="impostor")
    with pytest.raises(PluginError, match="mock"):
        collect_providers(pm)


def test_unknown_capability_is_an_error():
    class Odd(RecordingProvider):
        capabilities = frozenset({"chat", "telepathy"})

    pm = get_plugin_manager(load_entrypoints=False)
    pm.register(FakePlugin(Odd()), name="odd")
    with pytest.raises(PluginError, match="telepathy"):
        collect_providers(pm)


def test_a_capability_without_its_method_is_an_error_naming_both():
    class Hollow(RecordingProvider):
        capabilities = frozenset({"chat", "embedding", "rerank"})  # (RecordingProvider has no rerank())

    pm = get_plugin_manager(load_entrypoints=False)
    pm.register(FakePlugin(Hollow()), name="hollow")
    with pytest.raises(PluginError, match=r"'fake' .* declares the 'rerank' capability but does not implement "
                                          r"Provider\.rerank\(\)"):
        collect_providers(pm)


def test_a_method_without_its_capability_is_an_error_naming_both():
    class Undeclared(RecordingProvider):
        capabilities = frozenset({"chat"})  # (RecordingProvider implements embeddings() too)

    pm = get_plugin_manager(load_entrypoints=False)
    pm.register(FakePlugin(Undeclared()), name="undeclared")
    with pytest.raises(PluginError, match=r"provider 'fake' of plugin 'undeclared' .* implements "
                                          r"Provider\.embeddings\(\) but does not declare the 'embedding' capability"):
        collect_providers(pm)


def test_every_installed_provider_implements_what_it_declares():
    for name, provider in collect_providers(get_plugin_manager()).items():
        for capability, method in CAPABILITY_METHODS.items():
            implemented = getattr(type(provider), method) is not getattr(Provider, method)
            assert implemented == (capability in provider.capabilities), (name, capability)


def installed_providers() -> dict[str, tuple[str, str, list[str]]]:
    """provider -> (plugin, version, capabilities), straight from the plugin manager."""
    return {p["name"]: (row["name"], row["version"], p["capabilities"])
            for row in describe_plugins(get_plugin_manager()) for p in row["providers"]}


def test_cli_plugins_json():
    result = run_sidecar("plugins", "--json")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert rows == describe_plugins(get_plugin_manager())
    by_name = {row["name"]: row for row in rows}
    assert by_name["example"]["version"] == "0.3.0"
    assert by_name["example"]["providers"] == [{"name": "echo", "capabilities": ["chat"]},
                                               {"name": "parrot", "capabilities": ["chat", "embedding"]}]
    for row in rows:
        assert row["version"], row
        if row["providers"]:
            assert row["hooks"] == ["sidecar_providers"], row
        else:  # a plugin of other hooks only (otel...)
            assert row["hooks"] and "sidecar_providers" not in row["hooks"], row
    assert by_name["spendlog"]["hooks"] == ["sidecar_commands", "sidecar_configure", "sidecar_routes",
                                            "sidecar_startup"]  # (its call_finished is on a per-app recorder)
    assert by_name["prometheus"]["hooks"] == ["sidecar_configure", "sidecar_routes", "sidecar_startup"]


def test_cli_plugins_table_has_one_line_per_provider():
    result = run_sidecar("plugins")
    assert result.returncode == 0, result.stderr
    header, *lines = result.stdout.splitlines()
    assert header.split() == ["PLUGIN", "VERSION", "PROVIDER", "CAPABILITIES", "HOOKS"]
    expected = installed_providers()
    hook_only = {row["name"]: ",".join(row["hooks"]) for row in describe_plugins(get_plugin_manager())
                 if not row["providers"]}
    assert len(lines) == len(expected) + len(hook_only)
    seen, seen_hook_only = {}, {}
    for line in lines:
        plugin, version, provider, capabilities, hooks = line.split()
        if provider == "-":  # a plugin without providers: one line with its hooks
            assert capabilities == "-"
            seen_hook_only[plugin] = hooks
            continue
        seen[provider] = (plugin, version, capabilities.split(","))
        assert hooks == "sidecar_providers"
    assert seen == expected
    assert seen_hook_only == hook_only
    assert seen_hook_only["spendlog"] == "sidecar_commands,sidecar_configure,sidecar_routes,sidecar_startup"
    assert seen_hook_only["prometheus"] == "sidecar_configure,sidecar_routes,sidecar_startup"
    assert seen["echo"] == ("example", "0.3.0", ["chat"])
    assert seen["mock"] == ("mock", expected["mock"][1], ["audio_speech", "audio_transcription", "chat", "completion",
                                                          "embedding", "image_generation", "moderation", "rerank"])
    assert seen["ollama_chat"] == ("ollama", "0.1.0", ["chat", "embedding"])
    assert seen["anthropic"] == ("anthropic", "0.1.0", ["chat"])
    # columns line up under the header
    column = header.index("PROVIDER")
    assert all(line[column - 1] == " " and line[column] != " " for line in lines)


def test_serve_is_handed_the_plugins_the_command_line_loaded(monkeypatch):
    """Plugins are found once per process: the manager that built the subcommands serves."""
    import sidecar.logs
    import sidecar.serve
    from sidecar.cli import main

    handed = []
    monkeypatch.setattr(sidecar.logs, "configure", lambda *a, **k: None)
    monkeypatch.setattr(sidecar.serve, "serve", lambda *a, **k: handed.append(k["pm"]) or 0)
    assert main(["serve", "--port", "0"]) == 0
    pm = handed[0]
    assert pm is not None and pm.get_plugin("spendlog") is not None  # (a shipped plugin)
    assert pm.deferred["mock"] == "mock"  # (a provider plugin, imported when a deployment names it)

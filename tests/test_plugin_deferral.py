"""Plugins that declare their providers (``llm_sidecar.providers``) are imported the first time a
deployment names one: the installed ones, and fake distributions on ``sys.path``."""

from __future__ import annotations

import importlib.metadata
import itertools
import json
import re
import subprocess
import sys
import textwrap

import pytest

from sidecar import Provider, hookimpl, keys
from sidecar.app import create_app
from sidecar.config import ConfigError
from sidecar.plugins import PluginError, collect_providers, describe_plugins, get_plugin_manager, installed_plugins
from sidecar.sync import load_stored_deployments

from gateway_helpers import run_sidecar
from registry_helpers import AUTH, add, cfg, error_of

_names = itertools.count()

PROVIDER_MODULE = """
from sidecar import Provider, hookimpl

class Made(Provider):
    capabilities = frozenset({{"chat"}})

    def __init__(self, name):
        self.name = name

    async def chat(self, call):
        raise NotImplementedError

@hookimpl
def sidecar_providers():
    return [Made(name) for name in {provides!r}]
{extra}
"""


def install_fake(tmp_path, monkeypatch, declares: list[str], provides: list[str] | None = None,
                 extra: str = "", body: str | None = None) -> str:
    """A distribution on ``sys.path`` whose plugin module declares ``declares`` and provides
    ``provides`` (default: the same); its module's name, unique to the test."""
    module = f"deferred_fake_{next(_names)}"
    code = body if body is not None else PROVIDER_MODULE.format(provides=provides or declares, extra=extra)
    (tmp_path / f"{module}.py").write_text(textwrap.dedent(code))
    info = tmp_path / f"{module}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: 0.1\n")
    declared = "".join(f"{name} = {module}\n" for name in declares)
    (info / "entry_points.txt").write_text(f"[llm_sidecar]\n{module} = {module}\n\n[llm_sidecar.providers]\n{declared}")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, module, raising=False)
    return module


def test_the_installed_provider_plugins_wait_until_a_deployment_names_one():
    """In a fresh process: the default config's app imports the mock plugin and the plugins of
    other hooks only; a name is known without an import; looking one up imports its plugin."""
    code = textwrap.dedent("""
        import json, sys
        from sidecar.app import create_app
        from sidecar.config import load_config
        from sidecar import keys
        def plugins():
            return sorted(m for m in sys.modules if m.startswith("sidecar_") and "." not in m)
        app = create_app(load_config("config/sidecar.yaml"))
        pm, providers = app[keys.PLUGIN_MANAGER], app[keys.PROVIDERS]
        at_start, names = plugins(), sorted(providers)
        known = plugins()
        gemini = providers["gemini"].name
        print(json.dumps({"at_start": at_start, "known": known, "names": names, "after": plugins(),
                          "gemini": gemini, "registered": pm.has_plugin("google"),
                          "version": pm.distributions["google"].version}))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    seen = json.loads(out.stdout)
    assert seen["at_start"] == ["sidecar_mock", "sidecar_otel", "sidecar_prometheus", "sidecar_spendlog"]
    assert seen["known"] == seen["at_start"]
    assert {"mock", "openai", "azure", "anthropic", "gemini", "vertex_ai", "bedrock", "cohere", "ollama",
            "echo", "parrot"} <= set(seen["names"])
    assert seen["after"] == sorted(seen["at_start"] + ["sidecar_google"])
    assert seen["gemini"] == "gemini" and seen["registered"]
    assert seen["version"] == importlib.metadata.version("llm-sidecar-google")


def test_a_declared_plugin_is_imported_registered_and_listed_on_lookup(tmp_path, monkeypatch):
    module = install_fake(tmp_path, monkeypatch, ["deferred_a", "deferred_b"])
    pm = get_plugin_manager()
    providers = collect_providers(pm)
    assert "deferred_a" in providers and "deferred_b" in set(providers)
    assert module not in sys.modules and not pm.has_plugin(module)
    assert installed_plugins(pm) == len(importlib.metadata.entry_points(group="llm_sidecar"))
    assert providers["deferred_b"].name == "deferred_b"
    assert module in sys.modules and pm.has_plugin(module)
    assert pm.load_deferred(module) is pm.load_deferred(module)  # (imported and made once)
    assert collect_providers(pm)["deferred_a"].name == "deferred_a"  # (a later app calls it as any plugin)
    [row] = [r for r in describe_plugins(pm) if r["name"] == module]
    assert row == {"name": module, "distribution": module, "version": "0.1", "hooks": ["sidecar_providers"],
                   "providers": [{"name": "deferred_a", "capabilities": ["chat"]},
                                 {"name": "deferred_b", "capabilities": ["chat"]}]}


def test_describe_plugins_imports_every_deferred_plugin(tmp_path, monkeypatch):
    module = install_fake(tmp_path, monkeypatch, ["deferred_listed"])
    pm = get_plugin_manager()
    names = {r["name"] for r in describe_plugins(pm)}
    assert module in names and {"google", "bedrock", "openai", "example"} <= names


@pytest.mark.parametrize(("declares", "provides", "extra", "message"), [
    (["deferred_x"], ["deferred_y"], "",
     r"declares the providers \['deferred_x'\] in the llm_sidecar.providers entry points but provides \['deferred_y'\]"),
    (["deferred_x"], None, "\n@hookimpl\ndef sidecar_startup(app):\n    pass\n",
     r"may implement sidecar_providers and no other hook; it implements sidecar_providers, sidecar_startup"),
    (["deferred_x"], None, "\nraise ImportError('no such wheel')\n",
     r"plugin 'deferred_fake_\d+' \(deferred_fake_\d+\) failed to load: ImportError: no such wheel"),
])
def test_a_broken_declared_plugin_fails_on_lookup_naming_itself(tmp_path, monkeypatch, declares, provides, extra,
                                                               message):
    install_fake(tmp_path, monkeypatch, declares, provides, extra)
    providers = collect_providers(get_plugin_manager())
    with pytest.raises(PluginError, match=message):
        providers["deferred_x"]


def test_two_plugins_declaring_one_provider_stop_start_up(tmp_path, monkeypatch):
    install_fake(tmp_path, monkeypatch, ["deferred_twice"])
    install_fake(tmp_path, monkeypatch, ["deferred_twice"])
    with pytest.raises(PluginError, match=r"two plugins provide 'deferred_twice' \(deferred_fake_\d+, deferred_fake_\d+\)"):
        get_plugin_manager()


class ChatOnly(Provider):
    """A provider that is looked up, never called."""

    capabilities = frozenset({"chat"})

    def __init__(self, name: str) -> None:
        self.name = name

    async def chat(self, call):
        raise NotImplementedError


class Offers:
    """A plugin registered by hand, offering providers of these names."""

    def __init__(self, *names: str) -> None:
        self.names = names

    @hookimpl
    def sidecar_providers(self):
        return [ChatOnly(name) for name in self.names]


def test_a_registered_plugin_may_not_take_a_declared_name():
    pm = get_plugin_manager()
    pm.register(Offers("gemini"), name="impostor")
    with pytest.raises(PluginError, match="two plugins provide 'gemini'"):
        collect_providers(pm)


async def test_a_model_added_over_http_imports_its_provider_plugin(make_client, tmp_path):
    client = await make_client(cfg(tmp_path))
    pm = client.app[keys.PLUGIN_MANAGER]
    assert not pm.has_plugin("cohere")
    added = await add(client, {"model_name": "command", "litellm_params": {"model": "cohere/command-a-03-2025",
                                                                          "api_key": "sk-cohere-test"}})
    assert added["litellm_params"]["model"] == "cohere/command-a-03-2025"
    assert pm.has_plugin("cohere")
    assert client.app[keys.REGISTRY].get(added["model_info"]["id"]).provider.name == "cohere"


def test_a_failed_plugin_is_unregistered_and_fails_the_same_way_again(tmp_path, monkeypatch):
    module = install_fake(tmp_path, monkeypatch, ["deferred_x"], extra="\n@hookimpl\ndef sidecar_startup(app):\n    pass\n")
    pm = get_plugin_manager()
    providers = collect_providers(pm)
    for _ in range(2):
        with pytest.raises(PluginError, match=f"plugin '{module}' declares its providers .* it implements "
                                              "sidecar_providers, sidecar_startup"):
            providers["deferred_x"]
        assert not pm.has_plugin(module)


async def test_a_model_added_for_a_broken_plugin_is_a_500_naming_it(make_client, tmp_path, monkeypatch):
    module = install_fake(tmp_path, monkeypatch, ["deferred_broken"], extra="\nraise ImportError('no such wheel')\n")
    client = await make_client(cfg(tmp_path), pm=get_plugin_manager())
    resp = await client.post("/model/new", headers=AUTH,
                             json={"model_name": "b", "litellm_params": {"model": "deferred_broken/m"}})
    error = await error_of(resp, 500, "no such wheel")
    assert error["code"] == "plugin_error" and error["param"] == "litellm_params.model"
    assert error["message"] == (f"provider 'deferred_broken' is unavailable: plugin '{module}' ({module}) "
                                "failed to load: ImportError: no such wheel")


BROKEN = "\nraise ImportError('no such wheel')\n"
UNAVAILABLE = r"provider 'deferred_broken' is unavailable: plugin '\w+' \(\w+\) failed to load: ImportError: no such wheel"


def test_a_config_deployment_of_a_broken_plugin_stops_start_up_naming_it(tmp_path, monkeypatch, gateway_config):
    install_fake(tmp_path, monkeypatch, ["deferred_broken"], extra=BROKEN)
    config = gateway_config({"model_list": [{"model_name": "b", "litellm_params": {"model": "deferred_broken/m"}}]})
    with pytest.raises(ConfigError, match=r"model_list\[0\]\.litellm_params\.model: " + UNAVAILABLE):
        create_app(config, get_plugin_manager())


async def test_a_stored_deployment_of_a_broken_plugin_is_skipped_with_a_warning(make_client, tmp_path, monkeypatch,
                                                                                caplog):
    install_fake(tmp_path, monkeypatch, ["deferred_broken"], extra=BROKEN)
    client = await make_client(cfg(tmp_path), pm=get_plugin_manager())
    app = client.app
    await app[keys.DATABASE].insert_deployment("stored-broken", "b", {"model": "deferred_broken/m"}, {})
    await load_stored_deployments(app[keys.DATABASE], app[keys.REGISTRY])
    assert app[keys.REGISTRY].get("stored-broken") is None
    assert re.search(r"skipping stored deployment stored-broken \(b\): " + UNAVAILABLE, caplog.text)


def test_a_declared_plugin_pluggy_refuses_is_a_plugin_error_each_time(tmp_path, monkeypatch):
    body = PROVIDER_MODULE.format(provides=["deferred_x"], extra="").replace(
        "def sidecar_providers():", "def sidecar_providers(app):")  # (an argument the spec does not have)
    module = install_fake(tmp_path, monkeypatch, ["deferred_x"], body=body)
    pm = get_plugin_manager()
    providers = collect_providers(pm)
    for _ in range(2):
        with pytest.raises(PluginError, match=f"plugin '{module}' is broken: PluginValidationError"):
            providers["deferred_x"]
        assert not pm.has_plugin(module)


def test_the_cli_names_a_broken_declared_plugin_without_a_traceback(tmp_path, monkeypatch):
    module = install_fake(tmp_path, monkeypatch, ["deferred_broken"], extra=BROKEN)
    env = {"PYTHONPATH": str(tmp_path), "SIDECAR_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}"}
    listed = run_sidecar("plugins", env=env)
    assert listed.returncode == 1
    reason = f"plugin '{module}' ({module}) failed to load: ImportError: no such wheel"
    assert listed.stderr.splitlines() == [reason, f"sidecar: {reason}"]  # (the log's line, then the command's)
    config = tmp_path / "sidecar.yaml"
    config.write_text("model_list:\n  - model_name: m\n    litellm_params: {model: mock/m}\n")
    synced = run_sidecar("sync", "--models", "--providers", "deferred_broken", "--config", str(config), env=env)
    assert synced.returncode == 1, synced.stderr  # (nothing could be synced)
    assert synced.stdout.strip().startswith(f"deferred_broken: plugin failed to load, skipped (plugin '{module}'")
    assert "Traceback" not in synced.stderr + listed.stderr


def test_a_wrapper_of_sidecar_providers_is_left_out_where_implementations_are_called():
    class Wraps:
        @hookimpl(wrapper=True)
        def sidecar_providers(self):
            return (yield)

    pm = get_plugin_manager(load_entrypoints=False)
    pm.register(Offers("wrapped_echo"), name="offers")
    pm.register(Wraps(), name="wraps")
    assert list(collect_providers(pm)) == ["wrapped_echo"]
    rows = {row["name"]: row["providers"] for row in describe_plugins(pm)}
    assert rows == {"offers": [{"name": "wrapped_echo", "capabilities": ["chat"]}], "wraps": []}

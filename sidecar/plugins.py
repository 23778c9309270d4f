"""The plugin manager: pluggy, with providers found through the ``llm_sidecar`` entry points."""

from __future__ import annotations

import importlib.metadata
import warnings
from types import ModuleType
from typing import Any

import pluggy

from sidecar import hookspecs
from sidecar.provider import CAPABILITIES, CAPABILITY_METHODS, SUPPORTED_PARAMS_SIGNATURE, Provider, takes_capability


class PluginError(Exception):
    """A plugin is broken (duplicate provider name, bad capability, ...)."""


def get_plugin_manager(load_entrypoints: bool = True) -> pluggy.PluginManager:
    """A fresh plugin manager with the hookspecs; with installed plugins unless told not to."""
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    if load_entrypoints:
        try:
            pm.load_setuptools_entrypoints(hookspecs.PROJECT_NAME)
        except Exception as exc:
            raise PluginError(f"plugin {_failed_entry_point(pm)} failed to load: {type(exc).__name__}: {exc}") from exc
    return pm


def _failed_entry_point(pm: pluggy.PluginManager) -> str:
    """The first entry point of the group that is not registered: the one that failed."""
    for ep in importlib.metadata.entry_points(group=hookspecs.PROJECT_NAME):
        if pm.get_plugin(ep.name) is None and not pm.is_blocked(ep.name):
            return f"{ep.name!r} ({ep.value})"
    return "(unknown)"


def collect_providers(pm: pluggy.PluginManager) -> dict[str, Provider]:
    """Every provider of every plugin, by name; checks names are unique and that capabilities
    are known and match the methods the provider implements (both ways); warns (once per
    class) about a deprecated form of the contract a provider still uses."""
    providers: dict[str, Provider] = {}
    warned: frozenset[type] = frozenset()
    for batch in pm.hook.sidecar_providers():
        for provider in batch or ():
            if not provider.name:
                raise PluginError(f"provider {provider!r} has no name")
            if provider.name in providers:
                raise PluginError(f"two plugins provide {provider.name!r}")
            check_capabilities(pm, provider)
            warned = _warn_deprecated(type(provider), warned)
            providers[provider.name] = provider
    return providers


def _warn_deprecated(cls: type, warned: frozenset[type]) -> frozenset[type]:
    """One DeprecationWarning per provider class still using an older form of the contract
    (it keeps working), pointing at the plugin's own code; returns the classes warned about so far."""
    if cls in warned or takes_capability(cls):
        return warned
    code = getattr(cls.supported_openai_params, "__code__", None)
    warnings.warn_explicit(
        f"{cls.__module__}.{cls.__qualname__}.supported_openai_params(self, model) is deprecated: define "
        f"{SUPPORTED_PARAMS_SIGNATURE}, which answers per capability (chat, embedding...); until then its one "
        "list serves every capability", DeprecationWarning,
        code.co_filename if code else cls.__module__, code.co_firstlineno if code else 0, module=cls.__module__)
    return warned | {cls}


def check_capabilities(pm: pluggy.PluginManager, provider: Provider) -> None:
    """A provider declares known capabilities, and overrides the Provider method of each it
    declares (:data:`~sidecar.provider.CAPABILITY_METHODS`) and of no other."""
    unknown = set(provider.capabilities) - set(CAPABILITIES)
    if unknown:
        raise PluginError(f"provider {provider.name!r} declares unknown capabilities {sorted(unknown)}")
    cls = type(provider)
    implemented = {c for c, method in CAPABILITY_METHODS.items() if getattr(cls, method, None) is not getattr(Provider, method)}
    where = f"provider {provider.name!r} of plugin {_plugin_of(pm, cls)} ({cls.__module__}.{cls.__qualname__})"
    missing = sorted(set(provider.capabilities) - implemented)
    if missing:
        raise PluginError(f"{where} declares the {missing[0]!r} capability but does not implement "
                          f"Provider.{CAPABILITY_METHODS[missing[0]]}()")
    undeclared = sorted(implemented - set(provider.capabilities))
    if undeclared:
        raise PluginError(f"{where} implements Provider.{CAPABILITY_METHODS[undeclared[0]]}() but does not "
                          f"declare the {undeclared[0]!r} capability: add it to `capabilities`, or remove the method")


def _plugin_of(pm: pluggy.PluginManager, cls: type) -> str:
    """The registered name of the plugin a provider class comes from (by module), for messages."""
    module = cls.__module__
    for name, plugin in pm.list_name_plugin():
        own = getattr(plugin, "__name__", None) if isinstance(plugin, ModuleType) else type(plugin).__module__
        if own and (module == own or module.startswith(own + ".")):
            return repr(name)
    return repr(module.split(".")[0])


def describe_plugins(pm: pluggy.PluginManager) -> list[dict[str, Any]]:
    """What ``sidecar plugins`` shows, from pluggy's own data (as datasette does)."""
    dists = {id(plugin): dist for plugin, dist in pm.list_plugin_distinfo()}
    rows = []
    for plugin in pm.get_plugins():
        name = pm.get_name(plugin) or repr(plugin)
        dist = dists.get(id(plugin))
        hooks = sorted(caller.name for caller in pm.get_hookcallers(plugin) or ())
        impl = getattr(plugin, "sidecar_providers", None)
        providers = [
            {"name": p.name, "capabilities": sorted(p.capabilities)} for p in (impl() if impl else [])
        ]
        rows.append({
            "name": name,
            "distribution": dist.project_name if dist else None,
            "version": dist.version if dist else _module_version(plugin),
            "hooks": hooks,
            "providers": providers,
        })
    return sorted(rows, key=lambda r: r["name"])


def _module_version(plugin: object) -> str | None:
    """The version of a plugin registered without an entry point: its distribution's, else its
    ``__version__`` (a plugin may be an object, not a module)."""
    module = getattr(plugin, "__name__", None) or type(plugin).__module__
    try:
        return importlib.metadata.version(module.split(".")[0])
    except (importlib.metadata.PackageNotFoundError, ValueError):
        version = getattr(plugin, "__version__", None)
        return str(version) if version is not None else None

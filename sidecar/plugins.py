"""The plugin manager: pluggy, with providers found through the ``llm_sidecar`` entry points.

A plugin may also declare its providers by name in the ``llm_sidecar.providers`` entry points
(``gemini = sidecar_google``: the provider, then the module its ``llm_sidecar`` entry point names).
Such a plugin is not imported at start-up: it is imported, registered and checked the first time
one of its providers is looked up (a deployment names it), so a sidecar imports only the
providers its deployments use. It may implement no hook but ``sidecar_providers``, and must
provide exactly the providers it declares.
"""

from __future__ import annotations

import importlib.metadata
import logging
import warnings
from collections.abc import Iterator, Mapping
from types import ModuleType
from typing import Any

import pluggy

from sidecar import hookspecs
from sidecar.provider import CAPABILITIES, CAPABILITY_METHODS, SUPPORTED_PARAMS_SIGNATURE, Provider, takes_capability

log = logging.getLogger("sidecar")

PROVIDERS_GROUP = f"{hookspecs.PROJECT_NAME}.providers"
"""The entry points that declare a plugin's providers by name, so it is imported on demand."""


class PluginError(Exception):
    """A plugin is broken (duplicate provider name, bad capability, ...)."""


class PluginManager(pluggy.PluginManager):
    """pluggy's, with the hookspecs, and the plugins that declared their providers
    (:data:`PROVIDERS_GROUP`) left unimported until one of their providers is needed."""

    def __init__(self) -> None:
        super().__init__(hookspecs.PROJECT_NAME)
        self.add_hookspecs(hookspecs)
        self.deferred: dict[str, str] = {}
        """Provider name -> the name of the plugin that declared it (imported or not yet)."""
        self._waiting: dict[str, tuple[importlib.metadata.EntryPoint, importlib.metadata.Distribution]] = {}
        self._on_demand: dict[str, dict[str, Provider]] = {}
        self._broken: dict[str, str] = {}
        self.distributions: dict[str, importlib.metadata.Distribution] = {}
        """Plugin name -> its distribution, for the plugins registered from entry points (pluggy's
        own list has no public way in)."""

    def load_entry_points(self) -> None:
        """Register every installed plugin, but defer those that declared their providers."""
        plugins, declared = _scan()
        for ep, dist in plugins.values():
            if ep.name in self._waiting or self.has_plugin(ep.name) or self.is_blocked(ep.name):
                continue
            if ep.value in declared:
                self._waiting[ep.name] = (ep, dist)
                self.deferred.update((provider, ep.name) for provider in declared[ep.value])
                continue
            self.register(_import(ep), name=ep.name)
            self.distributions[ep.name] = dist

    def load_deferred(self, plugin: str) -> dict[str, Provider]:
        """Import and register the deferred ``plugin`` (once); its providers by name, checked. A
        plugin that fails is left unregistered, and every later lookup fails the same way."""
        if plugin in self._on_demand:
            return self._on_demand[plugin]
        if plugin in self._broken:
            raise PluginError(self._broken[plugin])
        try:
            providers = self._import_deferred(plugin)
        except PluginError as exc:
            self._broken[plugin] = str(exc)
            log.error("%s", exc)  # (once: later lookups fail with the same message, unlogged)
            raise
        self._on_demand[plugin] = providers
        return providers

    def _import_deferred(self, plugin: str) -> dict[str, Provider]:
        ep, dist = self._waiting[plugin]
        declared = sorted(p for p, owner in self.deferred.items() if owner == plugin)
        module = _import(ep)
        try:
            self.register(module, name=plugin)  # (pluggy checks its hooks against their specs here)
            hooks = sorted(caller.name for caller in self.get_hookcallers(module) or ())
            if hooks != ["sidecar_providers"]:
                raise PluginError(f"plugin {plugin!r} declares its providers in the {PROVIDERS_GROUP} entry points, "
                                  f"so it is imported only when one is needed, and may implement sidecar_providers "
                                  f"and no other hook; it implements {', '.join(hooks) or 'none'}")
            providers: dict[str, Provider] = {}
            for impl in _providers_impls(self):
                if impl.plugin is module:
                    _add_batch(self, impl.function(), providers, frozenset())
            if sorted(providers) != declared:
                raise PluginError(f"plugin {plugin!r} declares the providers {declared} in the {PROVIDERS_GROUP} "
                                  f"entry points but provides {sorted(providers)}")
        except Exception as exc:
            self.unregister(name=plugin)  # (None when register itself refused it)
            if isinstance(exc, PluginError):
                raise
            raise PluginError(f"plugin {plugin!r} is broken: {type(exc).__name__}: {exc}") from exc
        self.distributions[plugin] = dist
        return providers


def get_plugin_manager(load_entrypoints: bool = True) -> PluginManager:
    """A fresh plugin manager with the hookspecs; with installed plugins unless told not to
    (those that declared their providers deferred)."""
    pm = PluginManager()
    if load_entrypoints:
        pm.load_entry_points()
    return pm


def _import(ep: importlib.metadata.EntryPoint) -> Any:
    """The plugin an entry point names, imported; a failure is a PluginError naming it."""
    try:
        return ep.load()
    except Exception as exc:
        raise PluginError(f"plugin {ep.name!r} ({ep.value}) failed to load: {type(exc).__name__}: {exc}") from exc


def _scan() -> tuple[dict[str, tuple[importlib.metadata.EntryPoint, importlib.metadata.Distribution]],
                     dict[str, list[str]]]:
    """One pass over the installed distributions: the plugins' entry points (with their
    distribution) by name, and the providers declared for each plugin module."""
    plugins: dict[str, tuple[importlib.metadata.EntryPoint, importlib.metadata.Distribution]] = {}
    owners: dict[str, set[str]] = {}
    for dist in importlib.metadata.distributions():
        for ep in dist.entry_points:
            if ep.group == hookspecs.PROJECT_NAME:
                plugins.setdefault(ep.name, (ep, dist))
            elif ep.group == PROVIDERS_GROUP:
                owners.setdefault(ep.name, set()).add(ep.value)
    declared: dict[str, list[str]] = {}
    for provider, modules in owners.items():
        if len(modules) > 1:
            raise PluginError(f"two plugins provide {provider!r} ({', '.join(sorted(modules))})")
        declared.setdefault(modules.pop(), []).append(provider)
    return plugins, declared


class Providers(Mapping[str, Provider]):
    """Every installed provider by name. A deferred plugin (:class:`PluginManager`) is imported
    the first time one of its providers is looked up; ``in``, ``len`` and the names import nothing."""

    def __init__(self, pm: pluggy.PluginManager, loaded: dict[str, Provider]) -> None:
        self._pm = pm
        self._loaded = loaded
        self._deferred = {name: plugin for name, plugin in _deferred(pm).items() if name not in loaded}

    def __getitem__(self, name: str) -> Provider:
        provider = self._loaded.get(name)
        if provider is None:
            plugin = self._deferred.get(name)
            if plugin is None:
                raise KeyError(name)
            self._loaded.update(self._pm.load_deferred(plugin))
            provider = self._loaded[name]
        return provider

    def __contains__(self, name: object) -> bool:
        return name in self._loaded or name in self._deferred

    def __iter__(self) -> Iterator[str]:  # (the names stay put: iterating the items imports as it goes)
        yield from self._loaded
        yield from (name for name in self._deferred if name not in self._loaded)

    def __len__(self) -> int:
        return len(self._loaded) + sum(1 for name in self._deferred if name not in self._loaded)


def collect_providers(pm: pluggy.PluginManager) -> Providers:
    """Every provider of every plugin, by name (a deferred plugin's when first looked up); checks
    names are unique and that capabilities are known and match the methods the provider
    implements (both ways); warns (once per class) about a deprecated form of the contract a
    provider still uses."""
    providers: dict[str, Provider] = {}
    warned: frozenset[type] = frozenset()
    deferred = _deferred(pm)
    for impl in _providers_impls(pm):
        batch = impl.function()
        for provider in batch or ():
            owner = deferred.get(provider.name)
            if owner is not None and owner != impl.plugin_name:
                raise PluginError(f"two plugins provide {provider.name!r}")
        warned = _add_batch(pm, batch, providers, warned)
    return Providers(pm, providers)


def installed_plugins(pm: pluggy.PluginManager) -> int:
    """How many plugins ``pm`` has: registered, or deferred (not imported yet)."""
    return len({pm.get_name(plugin) for plugin in pm.get_plugins()} | set(_deferred(pm).values()))


def _providers_impls(pm: pluggy.PluginManager) -> list[pluggy.HookImpl]:
    """The ``sidecar_providers`` implementations, in pluggy's calling order (wrappers left out)."""
    return [impl for impl in reversed(pm.hook.sidecar_providers.get_hookimpls())
            if not (impl.wrapper or impl.hookwrapper)]


def _deferred(pm: pluggy.PluginManager) -> dict[str, str]:
    """The providers ``pm`` defers (none for a plain pluggy manager a caller made)."""
    return getattr(pm, "deferred", {})


def _add_batch(pm: pluggy.PluginManager, batch: list[Provider] | None, providers: dict[str, Provider],
               warned: frozenset[type]) -> frozenset[type]:
    """Check one plugin's providers and add them to ``providers``; the classes warned about so far."""
    for provider in batch or ():
        if not provider.name:
            raise PluginError(f"provider {provider!r} has no name")
        if provider.name in providers:
            raise PluginError(f"two plugins provide {provider.name!r}")
        check_capabilities(pm, provider)
        warned = _warn_deprecated(type(provider), warned)
        providers[provider.name] = provider
    return warned


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
    """What ``sidecar plugins`` shows, from pluggy's own data (as datasette does); deferred
    plugins are imported to be shown."""
    for plugin in sorted(set(_deferred(pm).values())):
        pm.load_deferred(plugin)
    offered = {id(impl.plugin): impl.function() or [] for impl in _providers_impls(pm)}
    rows = []
    for plugin in pm.get_plugins():
        name = pm.get_name(plugin) or repr(plugin)
        dist = getattr(pm, "distributions", {}).get(name)
        hooks = sorted(caller.name for caller in pm.get_hookcallers(plugin) or ())
        providers = [{"name": p.name, "capabilities": sorted(p.capabilities)} for p in offered.get(id(plugin), [])]
        rows.append({
            "name": name,
            "distribution": dist.metadata["Name"] if dist else None,
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

"""The CLI's view of the registry, with no server: config file plus database.

``sidecar list`` prints model groups; ``sidecar sync --models`` asks each configured provider's
plugin for its live model list and stores it (the shipped catalog stays the fallback).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from typing import Any, TextIO

import aiohttp

from sidecar.app import config_deployments
from sidecar.config import Config, load_config
from sidecar.db import Database
from sidecar.errors import SidecarError
from sidecar.info import all_groups, catalog_facts
from sidecar.plugins import PluginError, collect_providers, get_plugin_manager
from sidecar.registry import Registry
from sidecar.sync import load_stored_deployments


async def open_registry(config: Config) -> tuple[Registry, Database]:
    """The registry as a server on this config and database would build it."""
    registry = Registry(collect_providers(get_plugin_manager()))
    registry.put_many(config_deployments(config, registry))
    db = await Database.open(config.database_path)
    await load_stored_deployments(db, registry)
    return registry, db


def _money(per_token: Any) -> str:
    return f"{float(per_token) * 1_000_000:.2f}" if per_token else "-"


def _capabilities(group: dict[str, Any], registry: Registry) -> str:
    if group["mode"]:
        caps = [group["mode"]]
    else:
        caps = sorted({c for d in registry.group(group["model_group"]) for c in d.provider.capabilities})
    flags = [f for f in ("function_calling", "vision") if group[f"supports_{f}"]]
    return ", ".join(caps + flags)


async def list_groups(config_file: str) -> list[tuple[str, ...]]:
    """Rows for ``sidecar list``: group, providers, context, $ per 1M in/out, capabilities."""
    config = load_config(config_file)
    registry, db = await open_registry(config)
    try:
        synced = await db.synced_models()
    finally:
        await db.close()
    rows = [("GROUP", "PROVIDER", "CONTEXT", "$/1M IN", "$/1M OUT", "CAPABILITIES")]
    for g in all_groups(registry, synced):
        rows.append((g["model_group"], ",".join(g["providers"]),
                     f"{int(g['max_input_tokens']):,}" if g["max_input_tokens"] else "-",
                     _money(g["input_cost_per_token"]), _money(g["output_cost_per_token"]),
                     _capabilities(g, registry)))
    return rows


async def sync_models(config_file: str, only: Sequence[str] | None, out: TextIO = sys.stderr,
                      timeout: float = 30.0) -> dict[str, int | str]:
    """Fetch and store each provider's model list; returns {provider: count or error text}."""
    config = load_config(config_file)
    registry, db = await open_registry(config)
    try:
        return await _sync(registry, db, only, out, timeout)
    finally:
        await db.close()  # also on errors: an open aiosqlite thread keeps the process from exiting


async def _sync(registry: Registry, db: Database, only: Sequence[str] | None, out: TextIO,
                timeout: float) -> dict[str, int | str]:
    targets: dict[str, dict[str, Any]] = {}
    for dep in registry:
        targets.setdefault(dep.provider.name, dep.litellm_params)
    for name in only or ():
        if name not in registry.providers:
            raise SidecarError(400, f"no installed plugin provides {name!r}; installed: {', '.join(sorted(registry.providers))}")
        targets.setdefault(name, {})
    if only:
        targets = {k: v for k, v in targets.items() if k in only}
    results: dict[str, int | str] = {}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session:
        for done, (name, params) in enumerate(targets.items(), start=1):
            _progress(out, done - 1, len(targets), f"{name}: asking")
            try:
                provider = registry.providers[name]
            except PluginError as exc:  # (its plugin, imported on demand, is broken; the log has said why)
                results[name] = f"plugin failed to load, skipped ({exc})"
                _progress(out, done, len(targets), f"{name}: {results[name]}")
                continue
            try:
                names = await asyncio.wait_for(provider.list_models(params, session), timeout)
            except Exception as exc:  # any failure: report (without its text, which may hold URLs) and go on
                message = getattr(exc, "message", None) or type(exc).__name__
                results[name] = f"unreachable, skipped ({message})"
                _progress(out, done, len(targets), f"{name}: {results[name]}")
                continue
            if not names:
                results[name] = "no model list offered, skipped"
                _progress(out, done, len(targets), f"{name}: {results[name]}")
                continue
            await db.replace_synced_models(name, {m: _facts(name, m) for m in names})
            results[name] = len(names)
            _progress(out, done, len(targets), f"{name}: {len(names)} models")
    out.write("\n")
    return results


def _facts(provider: str, model: str) -> dict[str, Any]:
    facts = catalog_facts(provider, model)
    facts["litellm_provider"] = provider
    return {k: v for k, v in facts.items() if v is not None}


def _progress(out: TextIO, done: int, total: int, label: str, width: int = 24) -> None:
    filled = width * done // max(total, 1)
    out.write(f"\r[{'#' * filled}{'-' * (width - filled)}] {done}/{total} {label}\033[K")
    if done == total:
        out.write("\n")
    out.flush()

"""Info endpoints: ``/model/info``, ``/model_group/info``, ``/v1/models``, ``/api/models``.

Each answer is encoded once per registry version and served from :class:`InfoCache`.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from sidecar import keys
from sidecar.errors import SidecarError
from sidecar.http import bytes_response, encoder, query_flag
from sidecar.info import all_groups, deployment_info, model_info_row, named_group, wildcard_names
from sidecar.provider import CAPABILITIES
from sidecar.registry import Deployment, Registry
from sidecar.wire import ModelCard, ModelList

def _cached(request: web.Request, key: Any, build) -> web.Response:
    cache = request.app[keys.INFO_CACHE]
    body = cache.get(key)
    if body is None:
        body = cache.put(key, encoder.encode(build()))
    return bytes_response(body)


async def model_info(request: web.Request) -> web.Response:
    """``{"data": [{model_name, litellm_params, model_info}]}``, credentials removed."""
    registry = request.app[keys.REGISTRY]
    synced = request.app[keys.SYNCED_MODELS]
    wanted = request.query.get("litellm_model_id")
    if wanted:
        dep = registry.get(wanted)
        if dep is None:
            raise SidecarError(404, f"no deployment with id {wanted!r}", param="litellm_model_id",
                               code="model_not_found")
        return _cached(request, ("model_info", wanted), lambda: {"data": [model_info_row(dep, synced)]})
    return _cached(request, ("model_info", None),
                   lambda: {"data": [model_info_row(d, synced) for d in registry]})


async def model_group_info(request: web.Request) -> web.Response:
    registry = request.app[keys.REGISTRY]
    synced = request.app[keys.SYNCED_MODELS]
    group = request.query.get("model_group")
    if group:
        return _cached(request, ("group", group), lambda: {"data": named_group(registry, group, synced)})
    return _cached(request, ("group", None), lambda: {"data": all_groups(registry, synced)})


# ---------------------------------------------------------------- /v1/models


def _visible(dep: Deployment, team_id: str | None) -> bool:
    """Team models (``model_info.team_id``) are listed only for their team when one is asked."""
    owner = dep.model_info.get("team_id")
    return team_id is None or owner is None or owner == team_id


def model_ids(registry: Registry, synced: dict, *, team_id: str | None, wildcard_routes: bool,
              access_groups: bool, aliases: dict[str, str] | None = None,
              only_access_groups: bool = False) -> list[tuple[str, str]]:
    """(id, owner) pairs for ``/v1/models``: groups, names wildcards cover, access groups, and
    ``aliases`` (``router_settings.model_group_alias`` without the hidden ones), each owned by its
    group's provider; an alias of a group with no deployment (for this team) is not listed.
    ``only_access_groups``: the access group names alone (LiteLLM's ``only_model_access_groups``)."""
    out: dict[str, str] = {}
    for dep in registry:
        if not _visible(dep, team_id):
            continue
        if only_access_groups:
            for group in dep.model_info.get("access_groups") or ():
                out.setdefault(str(group), "access_group")
            continue
        if dep.is_wildcard:
            for name, _ in wildcard_names(dep, synced):
                if not registry.group(name):
                    out.setdefault(name, dep.provider.name)
            if wildcard_routes:
                out.setdefault(dep.model_name, dep.provider.name)
        else:
            out.setdefault(dep.model_name, dep.provider.name)
        if access_groups:
            for group in dep.model_info.get("access_groups") or ():
                out.setdefault(str(group), "access_group")
    for alias, target in () if only_access_groups else (aliases or {}).items():
        if alias not in out and not registry.resolve(alias)[0]:  # a group's own name is the group
            owner = next((d.provider.name for d in registry.resolve(target)[0] if _visible(d, team_id)), None)
            if owner is not None:
                out[alias] = owner
    return list(out.items())


def listed_aliases(request: web.Request) -> dict[str, str]:
    """The aliases ``/v1/models`` shows: ``model_group_alias`` entries not marked ``hidden``."""
    policy = request.app[keys.ROUTER].policy
    return {a: t for a, t in policy.aliases.items() if a not in policy.hidden_aliases}


async def list_models(request: web.Request) -> web.Response:
    """OpenAI's model list. ``return_wildcard_routes`` adds patterns themselves; ``team_id`` hides
    other teams' models; ``include_model_access_groups`` adds access group names."""
    q = request.query
    team_id = q.get("team_id") or None
    wildcard_routes = query_flag(request, "return_wildcard_routes")
    access_groups = query_flag(request, "include_model_access_groups")
    only_groups = query_flag(request, "only_model_access_groups")
    app = request.app
    created = int(app[keys.STATE].started_at)

    def build() -> ModelList:
        ids = model_ids(app[keys.REGISTRY], app[keys.SYNCED_MODELS], team_id=team_id,
                        wildcard_routes=wildcard_routes, access_groups=access_groups,
                        aliases=listed_aliases(request), only_access_groups=only_groups)
        return ModelList(data=[ModelCard(id=i, created=created, owned_by=owner) for i, owner in ids])

    return _cached(request, ("models", team_id, wildcard_routes, access_groups, only_groups), build)


async def retrieve_model(request: web.Request) -> web.Response:
    """``GET /v1/models/{id}`` (the SDK's ``models.retrieve``): a name the sidecar serves,
    exact, through a wildcard or a listed alias, else 404."""
    name = request.match_info["model_id"]
    deps, _ = request.app[keys.REGISTRY].resolve(name)
    if not deps and name in (aliases := listed_aliases(request)):
        deps, _ = request.app[keys.REGISTRY].resolve(aliases[name])
    if not deps:
        raise SidecarError(404, f"model {name!r} not found", param="model", code="model_not_found")
    created = int(request.app[keys.STATE].started_at)
    return bytes_response(encoder.encode(ModelCard(id=name, created=created, owned_by=deps[0].provider.name)))


# ---------------------------------------------------------------- /api/models (vLLora's shape)

def api_model(dep: Deployment, name: str, captured: str | None, synced: dict) -> dict[str, Any]:
    info = deployment_info(dep, captured, synced)
    mode = info.get("mode")
    # a known mode is the capability, even one the gateway has no endpoint for (``responses``,
    # ``realtime``): listing the provider's set would call gpt-5-codex an embedding model
    capabilities = [mode] if mode else sorted(dep.provider.capabilities)
    per_million = lambda v: round(float(v) * 1_000_000, 6) if v is not None else None  # noqa: E731
    return {
        "id": name,
        "provider": dep.provider.name,
        "capabilities": capabilities,
        "context_window": info.get("max_input_tokens"),
        "max_output_tokens": info.get("max_output_tokens"),
        "pricing": {"input": per_million(info.get("input_cost_per_token")),
                    "output": per_million(info.get("output_cost_per_token"))},
        "features": [f.removeprefix("supports_") for f, v in info.items() if f.startswith("supports_") and v is True],
    }


async def api_models(request: web.Request) -> web.Response:
    """``{"models": [...]}``; ``?provider=`` and ``?capability=`` filter."""
    provider = request.query.get("provider") or None
    capability = request.query.get("capability")  # (empty is not a capability either: a 400)
    if capability is not None and capability not in CAPABILITIES:
        raise SidecarError(400, f"unknown capability {capability!r}; valid: {', '.join(CAPABILITIES)}",
                           param="capability", code="invalid_value")
    app = request.app

    def build() -> dict[str, Any]:
        registry, synced = app[keys.REGISTRY], app[keys.SYNCED_MODELS]
        rows: dict[str, dict[str, Any]] = {}
        for dep in registry:
            if dep.is_wildcard:
                names = wildcard_names(dep, synced)
            else:
                names = [(dep.model_name, None)]
            for name, captured in names:
                if name in rows or (provider and dep.provider.name != provider):
                    continue
                row = api_model(dep, name, captured, synced)
                if capability is None or capability in row["capabilities"]:
                    rows[name] = row
        return {"models": list(rows.values())}

    return _cached(request, ("api_models", provider, capability), build)

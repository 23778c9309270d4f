"""Model info: catalog facts, plugin declarations and operator overrides, combined.

A deployment's info = shipped catalog (or models stored by ``sidecar sync``) for its upstream
model, then what its provider plugin declares (``supported_openai_params``, provider name),
then the deployment's own ``model_info`` (custom prices, context of a self-hosted model).

Groups combine their deployments' info by these rules: ``providers`` is the ordered union;
token limits and costs the maximum; ``supports_*`` true if any deployment supports it; ``tpm``
and ``rpm`` the sum (null when none is set); ``mode`` the first one known;
``supported_openai_params`` the params every deployment accepts.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Mapping
from typing import Any

from sidecar import catalog
from sidecar.config import SUPPORTS_FLAGS
from sidecar.provider import accepted_params
from sidecar.registry import Deployment, Registry, capture, own_model_info
from sidecar.secrets import is_secret_param, strip_url_credentials

NUMERIC_FIELDS = (
    "max_tokens", "max_input_tokens", "max_output_tokens", "input_cost_per_token", "output_cost_per_token",
    "cache_creation_input_token_cost", "cache_read_input_token_cost",
)
INFO_CACHE_PER_DEPLOYMENT = 256
"""Entries kept per deployment (its model info and prices: two per name a wildcard served), oldest
out first."""

SyncedModels = Mapping[str, Mapping[str, Mapping[str, Any]]]


def catalog_facts(provider: str, model: str, synced: SyncedModels | None = None) -> dict[str, Any]:
    """What is known of ``model`` at ``provider``: synced data first, the shipped catalog after."""
    facts = dict(catalog.lookup(model, provider) or {})
    stored = (synced or {}).get(provider, {}).get(model)
    if stored:
        facts.update({k: v for k, v in stored.items() if v is not None})
    return facts


def deployment_info(dep: Deployment, captured: str | None = None, synced: SyncedModels | None = None) -> dict[str, Any]:
    """The full ``model_info`` of a deployment (for a wildcard, of the name it captured)."""
    return info_for_model(dep, dep.upstream_model(captured), synced, resolved=captured is not None)


_MODE_CAPABILITY = {"embedding": "embedding", "completion": "completion", "moderation": "moderation",
                    "image_generation": "image_generation", "rerank": "rerank",
                    "audio_transcription": "audio_transcription", "audio_speech": "audio_speech"}
"""A model's ``mode`` -> the capability whose params its info shows (chat for the rest)."""


def info_for_model(dep: Deployment, model: str, synced: SyncedModels | None = None,
                   resolved: bool = True) -> dict[str, Any]:
    """``deployment_info`` for the upstream ``model`` a request was sent to; cached on the
    deployment (a changed deployment is a new object, so the cache never goes stale)."""
    cache_key = (model, id(synced))
    cached = dep.info_cache.get(cache_key)
    if cached is not None:
        return cached
    info: dict[str, Any] = {"id": dep.id, "db_model": dep.db_model, "key": model}
    info.update({f: None for f in NUMERIC_FIELDS})
    info.update({"litellm_provider": dep.provider.name, "mode": None})
    info.update({f: False for f in SUPPORTS_FLAGS})
    if not dep.is_wildcard or resolved:
        facts = catalog_facts(dep.provider.name, model, synced)
        facts.pop("litellm_provider", None)  # the plugin serving it is the provider here
        info.update({k: v for k, v in facts.items() if v is not None})
    info.update(own_model_info(dep.model_info))
    if info.get("max_tokens") is None:
        info["max_tokens"] = info.get("max_output_tokens")
    info["tpm"] = dep.tpm
    info["rpm"] = dep.rpm
    info["supported_openai_params"] = accepted_params(dep.provider, model, _MODE_CAPABILITY.get(info["mode"], "chat"))
    info["id"], info["db_model"] = dep.id, dep.db_model
    _keep(dep, cache_key, info)
    return info


def public_params(dep: Deployment) -> dict[str, Any]:
    """``litellm_params`` without credentials (keys, tokens, passwords, cloud credentials,
    api_base, and user:password or query tokens inside any URL)."""
    return _without_secrets(dep.litellm_params, dep.provider.secret_params())


def _without_secrets(value: Any, extra: frozenset[str] = frozenset()) -> Any:
    """``value`` with secret keys dropped and URLs stripped, at any depth (``extra_body`` and
    other nested dicts hold keys too)."""
    if isinstance(value, dict):
        return {k: _without_secrets(v) for k, v in value.items()
                if not (k in extra or is_secret_param(str(k)))}
    if isinstance(value, list):
        return [_without_secrets(v) for v in value]
    return strip_url_credentials(value) if isinstance(value, str) and "://" in value else value


def model_info_row(dep: Deployment, synced: SyncedModels | None = None) -> dict[str, Any]:
    return {"model_name": dep.model_name, "litellm_params": public_params(dep),
            "model_info": deployment_info(dep, synced=synced)}


def group_info(name: str, deps: Iterable[tuple[Deployment, str | None]], synced: SyncedModels | None = None) -> dict[str, Any]:
    """One ``/model_group/info`` row, combining its deployments by the module's rules."""
    infos = [(dep, deployment_info(dep, captured, synced)) for dep, captured in deps]
    providers = list(dict.fromkeys(dep.provider.name for dep, _ in infos))

    def most(field: str, default: Any = None) -> Any:
        values = [i[field] for _, i in infos if isinstance(i.get(field), int | float)]
        return max(values) if values else default

    def total(field: str) -> int | None:
        values = [i[field] for _, i in infos if isinstance(i.get(field), int)]
        return sum(values) if values else None

    params: list[str] = list(infos[0][1]["supported_openai_params"]) if infos else []
    for _, i in infos[1:]:
        accepted = set(i["supported_openai_params"])
        params = [p for p in params if p in accepted]
    return {
        "model_group": name,
        "providers": providers,
        "max_input_tokens": most("max_input_tokens"),
        "max_output_tokens": most("max_output_tokens"),
        "input_cost_per_token": most("input_cost_per_token", 0.0),
        "output_cost_per_token": most("output_cost_per_token", 0.0),
        "mode": next((i["mode"] for _, i in infos if i.get("mode")), None),
        "tpm": total("tpm"),
        "rpm": total("rpm"),
        "supports_parallel_function_calling": any(i.get("supports_parallel_function_calling") for _, i in infos),
        "supports_vision": any(i.get("supports_vision") for _, i in infos),
        "supports_function_calling": any(i.get("supports_function_calling") for _, i in infos),
        "supported_openai_params": params,
    }


def wildcard_names(dep: Deployment, synced: SyncedModels | None) -> list[tuple[str, str]]:
    """(name, captured) for each concrete name a pattern deployment serves, from the catalog
    and synced model lists."""
    prefix, _, suffix = dep.model_name.partition("*")
    model = dep.upstream_model()
    m_prefix, star, m_suffix = model.partition("*")
    if not star:
        return []
    known = set(catalog.models_for_provider(dep.provider.name)) | set((synced or {}).get(dep.provider.name, {}))
    names = []
    for name in sorted(known):
        captured = capture(m_prefix, m_suffix, name)
        if captured is not None:
            names.append((prefix + captured + suffix, captured))
    return names


def all_groups(registry: Registry, synced: SyncedModels | None = None) -> list[dict[str, Any]]:
    """Every group's row; a wildcard group is followed by a row per concrete model the catalog
    (or ``sidecar sync``) knows for it, as LiteLLM expands ``anthropic/*``."""
    rows = []
    for name in registry.group_names():
        deps = registry.group(name)
        rows.append(group_info(name, [(d, None) for d in deps], synced))
        if "*" in name:
            for concrete, captured in wildcard_names(deps[0], synced):
                if not registry.group(concrete):
                    rows.append(group_info(concrete, [(d, captured) for d in deps], synced))
    return rows


def named_group(registry: Registry, name: str, synced: SyncedModels | None = None) -> list[dict[str, Any]]:
    """``?model_group=``: an exact group, or the name as a wildcard deployment would serve it."""
    exact = registry.group(name)
    if exact:
        return [group_info(name, [(d, None) for d in exact], synced)]
    deps, captured = registry.resolve(name)
    return [group_info(name, [(d, captured) for d in deps], synced)] if deps else []


def token_prices(dep: Deployment, model: str, synced: SyncedModels | None = None) -> tuple[float, float, float]:
    """The deployment's prices for the upstream ``model``: per input token, per output token, per
    query (a rerank's search units); cached on the deployment beside :func:`info_for_model`'s."""
    key = ("prices", model, id(synced))
    prices = dep.info_cache.get(key)
    if prices is None:
        info = info_for_model(dep, model, synced)
        prices = (float(info.get("input_cost_per_token") or 0.0), float(info.get("output_cost_per_token") or 0.0),
                  float(info.get("input_cost_per_query") or 0.0))
        _keep(dep, key, prices)
    return prices


def _keep(dep: Deployment, key: Any, value: Any) -> None:
    """Cache ``value`` on the deployment, the oldest entry dropped past the bound (a wildcard
    sees unbounded names)."""
    if len(dep.info_cache) >= INFO_CACHE_PER_DEPLOYMENT:
        dep.info_cache.pop(next(iter(dep.info_cache)))
    dep.info_cache[key] = value


def response_cost(prices: tuple[float, float, float], prompt_tokens: int, completion_tokens: int,
                  queries: float = 0) -> float:
    """What a call cost at ``prices`` (:func:`token_prices`)."""
    return prompt_tokens * prices[0] + completion_tokens * prices[1] + queries * prices[2]


class InfoCache:
    """Encoded answers of the info endpoints, valid for one registry version.

    A request costs a dict lookup however many deployments there are; a registry change
    (``version`` bump) empties it. Bounded, since query strings vary.
    """

    def __init__(self, registry: Registry, max_entries: int = 512) -> None:
        self.registry = registry
        self.max_entries = max_entries
        self._version = -1
        self._entries: OrderedDict[Any, bytes] = OrderedDict()

    def get(self, key: Any) -> bytes | None:
        if self._version != self.registry.version:
            self._entries.clear()
            self._version = self.registry.version
            return None
        body = self._entries.get(key)
        if body is not None:
            self._entries.move_to_end(key)
        return body

    def put(self, key: Any, body: bytes) -> bytes:
        if self._version == self.registry.version:
            self._entries[key] = body
            if len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        return body

"""The live set of deployments, and how a requested model name finds one.

A deployment is one ``model_list`` entry (config) or one added over the API (database). Exact
``model_name``s win over wildcard patterns (``openai/*``); longer patterns win over shorter ones.
Every change bumps ``version``, which the info endpoints key their caches on.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import msgspec

from sidecar.defaults import BadDefault, Defaults, param_defaults
from sidecar.errors import SidecarError
from sidecar.infer import ProviderUnknown, infer_provider
from sidecar.plugins import PluginError
from sidecar.provider import Provider, supported_params
from sidecar.secrets import KNOWN_SECRETS, secret_values

_canonical = msgspec.json.Encoder(order="sorted")
log = logging.getLogger("sidecar")


@dataclass(slots=True)
class Deployment:
    id: str
    model_name: str
    litellm_params: dict[str, Any]
    model_info: dict[str, Any]
    provider: Provider
    db_model: bool = False
    tpm: int | None = None
    rpm: int | None = None
    secrets: tuple[str, ...] = ()
    stored_params: dict[str, Any] = field(default_factory=dict, repr=False)
    """``litellm_params`` as written (``os.environ/`` references kept): what the database holds."""
    info_cache: dict[Any, Any] = field(default_factory=dict, repr=False)
    route: Any = field(default=None, repr=False)
    """What the router reads of this deployment (limits, weight, order...), worked out on first use."""
    upstream: str = ""
    """``litellm_params.model`` without its provider prefix (all of it when the provider was inferred)."""
    defaults: dict[str, Defaults] = field(default_factory=dict, repr=False)
    """Per capability, the OpenAI request params ``litellm_params`` sets (:mod:`sidecar.defaults`)."""

    @property
    def is_wildcard(self) -> bool:
        return "*" in self.model_name

    def upstream_model(self, captured: str | None = None) -> str:
        """The model name sent upstream: ``litellm_params.model`` without the provider prefix."""
        model = self.upstream
        return model.replace("*", captured, 1) if captured is not None and "*" in model else model


def capture(prefix: str, suffix: str, name: str) -> str | None:
    """What the ``*`` of the pattern ``prefix*suffix`` matches in ``name`` (never empty), or None."""
    if len(name) > len(prefix) + len(suffix) and name.startswith(prefix) and name.endswith(suffix):
        return name[len(prefix):len(name) - len(suffix)]
    return None


def own_model_info(model_info: dict[str, Any]) -> dict[str, Any]:
    """``model_info`` as the operator wrote it: without ``id`` and ``db_model``, which the
    sidecar manages (the id lives in its own column)."""
    return {k: v for k, v in model_info.items() if k not in ("id", "db_model")}


def split_model(model: str, providers: Mapping[str, Provider]) -> tuple[Provider, str]:
    """``openai/gpt-4o`` -> (the openai provider, ``gpt-4o``); a bare ``gpt-4o`` -> (the catalog's
    provider, ``gpt-4o``) (:mod:`sidecar.infer`); else a 400 naming what is installed."""
    try:
        name, upstream = infer_provider(model, providers)
    except ProviderUnknown as exc:
        raise SidecarError(400, str(exc), param="litellm_params.model", code=exc.code) from None
    try:
        return providers[name], upstream
    except PluginError as exc:  # (its plugin, imported on demand, is broken: the server's fault)
        raise SidecarError(500, f"provider {name!r} is unavailable: {exc}", param="litellm_params.model",
                           code="plugin_error") from None


def config_deployment_id(model_name: str, raw_params: Mapping[str, Any]) -> str:
    """A stable id for a config deployment: the hash of its name and params as written."""
    return hashlib.sha256(_canonical.encode([model_name, raw_params])).hexdigest()


def new_deployment_id() -> str:
    return str(uuid.uuid4())


def build_deployment(
    providers: Mapping[str, Provider],
    *,
    model_name: str,
    litellm_params: dict[str, Any],
    model_info: dict[str, Any] | None,
    id: str,
    db_model: bool,
    tpm: int | None = None,
    rpm: int | None = None,
    stored_params: dict[str, Any] | None = None,
) -> Deployment:
    provider, upstream = split_model(litellm_params["model"], providers)
    try:
        defaults = param_defaults(litellm_params, provider.capabilities)
    except BadDefault as exc:
        raise SidecarError(400, str(exc), param=f"litellm_params.{exc.key}", code="invalid_value") from None
    if defaults and "*" not in model_name:
        _warn_unsupported_defaults(model_name, provider, upstream, defaults)
    info = dict(model_info or {})
    info["id"] = id
    secrets = secret_values(litellm_params, provider.secret_params(), provider.ambient_credentials(litellm_params))
    KNOWN_SECRETS.add(secrets)  # before the deployment is stored or logged anywhere
    return Deployment(
        id=id, model_name=model_name, litellm_params=litellm_params, model_info=info,
        provider=provider, db_model=db_model,
        tpm=_first_given(tpm, litellm_params.get("tpm"), info.get("tpm")),
        rpm=_first_given(rpm, litellm_params.get("rpm"), info.get("rpm")),
        secrets=secrets, stored_params=stored_params if stored_params is not None else litellm_params,
        upstream=upstream, defaults=defaults,
    )


def _warn_unsupported_defaults(model_name: str, provider: Provider, model: str, defaults: dict[str, Defaults]) -> None:
    """One warning for the defaults the provider does not accept for the model: never sent."""
    for capability, found in defaults.items():
        accepted = supported_params(provider, model, capability)
        skipped = sorted(k for k in found.values if k not in accepted)
        if skipped:
            log.warning("model %r: litellm_params %s not sent with %s requests: %s does not accept %s for %r",
                        model_name, ", ".join(skipped), capability, provider.name,
                        "it" if len(skipped) == 1 else "them", model)


def _first_given(*values: Any) -> Any:
    """LiteLLM reads rpm/tpm at the entry's top level, in litellm_params and in model_info."""
    return next((v for v in values if v is not None), None)


class Registry:
    """Deployments by id, by exact name and by pattern."""

    def __init__(self, providers: Mapping[str, Provider]) -> None:
        self.providers = providers
        self.version = 0
        self._by_id: dict[str, Deployment] = {}
        self._exact: dict[str, list[Deployment]] = {}
        self._patterns: list[tuple[str, str, list[Deployment]]] = []
        self._names: list[str] = []
        self.write_lock = asyncio.Lock()
        """Held by the management endpoints from reading a deployment to applying its change,
        so concurrent changes (two PATCHes, a delete and an update) never lose one another."""

    def __len__(self) -> int:
        return len(self._by_id)

    def __iter__(self):
        return iter(self._by_id.values())

    def get(self, deployment_id: str) -> Deployment | None:
        return self._by_id.get(deployment_id)

    def put_many(self, deployments: Iterable[Deployment]) -> None:
        for dep in deployments:
            self._by_id[dep.id] = dep
        self._reindex()

    def put(self, dep: Deployment) -> None:
        self.put_many([dep])

    def replace_stored(self, deployments: Iterable[Deployment]) -> None:
        """Make ``deployments`` the API-added ones (those from the config file stay)."""
        self._by_id = {id: dep for id, dep in self._by_id.items() if not dep.db_model}
        self.put_many(deployments)

    def remove(self, deployment_id: str) -> Deployment | None:
        dep = self._by_id.pop(deployment_id, None)
        if dep is not None:
            self._reindex()
        return dep

    def _reindex(self) -> None:
        exact: dict[str, list[Deployment]] = {}
        patterns: dict[str, list[Deployment]] = {}
        for dep in self._by_id.values():
            (patterns if dep.is_wildcard else exact).setdefault(dep.model_name, []).append(dep)
        self._exact = exact
        self._patterns = sorted(
            ((name.split("*", 1)[0], name.split("*", 1)[1], deps) for name, deps in patterns.items()),
            key=lambda p: len(p[0]) + len(p[1]), reverse=True,
        )
        self._names = list(dict.fromkeys(dep.model_name for dep in self._by_id.values()))
        self.version += 1

    def group_names(self) -> list[str]:
        """Model group names, in first-seen order."""
        return list(self._names)

    def group(self, name: str) -> list[Deployment]:
        """The deployments whose ``model_name`` is exactly ``name``."""
        return self._exact.get(name) or [d for p, s, deps in self._patterns if p + "*" + s == name for d in deps]

    def resolve(self, name: str) -> tuple[list[Deployment], str | None]:
        """Deployments serving ``name``, and the part a wildcard captured (None if exact)."""
        deps = self._exact.get(name)
        if deps:
            return deps, None
        for prefix, suffix, deps in self._patterns:
            captured = capture(prefix, suffix, name)
            if captured is not None:
                return deps, captured
        return [], None

    def not_found(self, name: str) -> SidecarError:
        """The 404 for a model name nothing serves, naming some that are served."""
        return SidecarError(404, f"model {name!r} not found; available models: {self._some_names()}",
                            param="model", code="model_not_found")

    def _some_names(self, limit: int = 20) -> str:
        """The first ``limit`` group names, for a 404 that stays small with 10,000 groups."""
        names = self._names
        if not names:
            return "none"
        more = len(names) - limit
        return ", ".join(names[:limit]) + (f" and {more} more (GET /v1/models lists them)" if more > 0 else "")

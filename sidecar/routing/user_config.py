"""``user_config``: a router config sent in the request body (LiteLLM's per-request Router).

Refused unless ``general_settings.allow_client_side_credentials`` is true, as credentials in
the body are. When allowed, the config is checked like the config file (errors are 400s naming
the field), ``os.environ/`` references are refused (they would read the sidecar's environment),
its deployments use only the credentials it carries (none from the environment), and every
``api_base`` must pass ``allowed_api_base_hosts``. Routers are cached by the config's hash in a
bounded LRU, so a client repeating its config pays for it once.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from typing import Any

import msgspec
from aiohttp import web

from sidecar import keys
from sidecar.config import ENV_PREFIX, ConfigError, parse_config
from sidecar.dispatch import check_api_base
from sidecar.errors import SidecarError
from sidecar.provider import NO_AMBIENT_CREDENTIALS
from sidecar.registry import Registry
from sidecar.routing.policy import RouterPolicy
from sidecar.routing.router import Router
from sidecar.routing.state import RouterState

CACHE_SIZE = 64
_canonical = msgspec.json.Encoder(order="sorted")


class UserRouters:
    """Routers built from ``user_config``s, most recently used last, at most ``size``."""

    def __init__(self, size: int = CACHE_SIZE) -> None:
        self.size = size
        self.routers: OrderedDict[str, Router] = OrderedDict()

    def get(self, digest: str) -> Router | None:
        router = self.routers.get(digest)
        if router is not None:
            self.routers.move_to_end(digest)
        return router

    def put(self, digest: str, router: Router) -> None:
        self.routers[digest] = router
        while len(self.routers) > self.size:
            self.routers.popitem(last=False)


def user_router(request: web.Request, value: Any) -> Router:
    app = request.app
    general = app[keys.CONFIG].general
    if not general.allow_client_side_credentials:
        raise SidecarError(400, "'user_config' is not allowed in the request body; the operator can allow it "
                                "with general_settings.allow_client_side_credentials: true",
                           param="user_config", code="client_side_credentials_not_allowed")
    if not isinstance(value, dict):
        raise SidecarError(400, "`user_config` must be an object: a router config with a model_list",
                           param="user_config", code="invalid_value")
    try:
        digest = hashlib.sha256(_canonical.encode(value)).hexdigest()
    except (TypeError, msgspec.EncodeError):
        raise SidecarError(400, "`user_config` holds a value that is not JSON", param="user_config") from None
    cache = app[keys.USER_ROUTERS]
    router = cache.get(digest)
    if router is None:
        router = _build(app, value)
        cache.put(digest, router)
    return router


def _build(app: web.Application, value: dict[str, Any]) -> Router:
    from sidecar.app import config_deployments

    _refuse_env_references(value, "user_config")
    settings = {k: v for k, v in value.items() if k != "model_list"}
    try:
        config = parse_config({"model_list": value.get("model_list") or [], "router_settings": settings},
                              source="user_config")
        if config.warnings:  # what a config file may carry with a warning, a request may not: nobody reads it
            raise SidecarError(400, "user_config: " + "; ".join(config.warnings).replace("router_settings.", ""),
                               param="user_config", code="invalid_user_config")
        for entry in config.model_list:
            entry.litellm_params[NO_AMBIENT_CREDENTIALS] = True
            try:
                check_api_base(entry.litellm_params, app[keys.CONFIG].general.allowed_api_base_hosts)
            except SidecarError as err:
                err.param = "user_config.model_list.litellm_params.api_base"
                raise
        registry = Registry(app[keys.PROVIDERS])
        registry.put_many(config_deployments(config, registry))
        policy = RouterPolicy.from_settings(config.router)
    except ConfigError as exc:
        path = (exc.path or "").replace("$.router_settings", "$").lstrip("$.") or None
        text = str(exc).removeprefix("user_config: ").replace("$.router_settings", "$")
        raise SidecarError(400, f"user_config: {text}", param=f"user_config.{path}" if path else "user_config",
                           code="invalid_user_config") from None
    except ValueError as exc:
        raise SidecarError(400, f"user_config: {exc}", param="user_config", code="invalid_user_config") from None
    if not len(registry):
        raise SidecarError(400, "`user_config` has no model_list: the router it describes serves nothing",
                           param="user_config.model_list", code="invalid_user_config")
    router = Router(registry, policy, RouterState(samples=policy.samples), app[keys.SYNCED_MODELS])
    hooks = app[keys.HOOKS]
    router.pre_call, router.events = hooks.pre_call, hooks.events
    return router


def _refuse_env_references(value: Any, where: str) -> None:
    if isinstance(value, str) and value.startswith(ENV_PREFIX):
        raise SidecarError(400, f"{where}: os.environ/ references are not allowed in a request",
                           param=where, code="invalid_user_config")
    if isinstance(value, dict):
        for k, v in value.items():
            _refuse_env_references(v, f"{where}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _refuse_env_references(v, f"{where}[{i}]")

"""What the router is told: ``router_settings`` (over ``litellm_settings``) worked out once,
per-deployment settings from ``litellm_params``, and the router keys a request body may carry."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sidecar.config import RouterSettings
from sidecar.errors import KINDS, bad_request
from sidecar.routing.state import Limits

DEFAULT_NUM_RETRIES = 2
DEFAULT_COOLDOWN_SECONDS = 5.0
DEFAULT_MAX_FALLBACKS = 5
DEFAULT_TIMEOUT = 600.0
RETRYABLE = frozenset({"rate_limit", "timeout", "server"})
"""Kinds retried by default; a ``retry_policy`` gives any kind its own count."""

# LiteLLM's names for the kinds, in retry_policy (``<Name>Retries``) and allowed_fails_policy (``<Name>AllowedFails``)
KIND_NAMES = {
    "BadRequestError": "bad_request", "AuthenticationError": "auth", "PermissionDeniedError": "permission",
    "NotFoundError": "not_found", "RateLimitError": "rate_limit", "TimeoutError": "timeout",
    "InternalServerError": "server", "ServiceUnavailableError": "server",
    "ContextWindowExceededError": "context_window", "ContentPolicyViolationError": "content_policy",
}
MOCK_FALLBACK_KINDS = {
    "mock_testing_fallbacks": "server",
    "mock_testing_context_window_fallbacks": "context_window",
    "mock_testing_content_policy_fallbacks": "content_policy",
}
ROUTER_BODY_KEYS = frozenset({"num_retries", "timeout", "request_timeout", "fallbacks", "disable_fallbacks",
                              "fastest_response", *MOCK_FALLBACK_KINDS})
"""Body keys the router reads; they never go upstream."""


def _kind_policy(policy: dict[str, int] | None, suffix: str, where: str) -> dict[str, int]:
    """``{"RateLimitErrorRetries": 3}`` -> ``{"rate_limit": 3}``; an unknown name is a 400/ConfigError text."""
    out: dict[str, int] = {}
    for name, value in (policy or {}).items():
        base = name[:-len(suffix)] if name.endswith(suffix) else None
        if name == f"Default{suffix}":
            out.update({kind: value for kind in KINDS if kind not in out})
            continue
        if base not in KIND_NAMES:
            known = ", ".join(sorted(k + suffix for k in KIND_NAMES))
            raise ValueError(f"{where}.{name}: unknown key; expected one of {known}")
        out[KIND_NAMES[base]] = value
    return out


def fallback_map(entries: list[dict[str, Any]] | None) -> dict[str, list[str]]:
    """LiteLLM's ``[{"gpt-4o": ["claude", "gpt-4o-mini"]}]`` as ``{"gpt-4o": [...]}``."""
    out: dict[str, list[str]] = {}
    for entry in entries or []:
        for group, targets in entry.items():
            out.setdefault(str(group), []).extend([targets] if isinstance(targets, str) else [str(t) for t in targets])
    return out


@dataclass(slots=True)
class RouterPolicy:
    strategy: str = "simple-shuffle"
    ttl: float = 3600.0
    latency_buffer: float = 0.0
    samples: int = 10
    num_retries: int = DEFAULT_NUM_RETRIES
    retries_by_kind: dict[str, int] = field(default_factory=dict)
    allowed_fails: int | None = None
    allowed_fails_by_kind: dict[str, int] = field(default_factory=dict)
    cooldown_time: float = DEFAULT_COOLDOWN_SECONDS
    disable_cooldowns: bool = False
    retry_after: float = 0.0
    timeout: float | None = None
    stream_timeout: float | None = None
    fallbacks: dict[str, list[str]] = field(default_factory=dict)
    context_window_fallbacks: dict[str, list[str]] = field(default_factory=dict)
    content_policy_fallbacks: dict[str, list[str]] = field(default_factory=dict)
    default_fallbacks: list[str] = field(default_factory=list)
    max_fallbacks: int = DEFAULT_MAX_FALLBACKS
    pre_call_checks: bool = False
    default_parallel: int | None = None
    aliases: dict[str, str] = field(default_factory=dict)
    hidden_aliases: frozenset[str] = frozenset()

    @classmethod
    def from_settings(cls, rs: RouterSettings) -> RouterPolicy:
        """The policy of ``router_settings``; ValueError names a key that cannot be acted on."""
        args = rs.routing_strategy_args or {}
        aliases, hidden = {}, set()
        for alias, target in (rs.model_group_alias or {}).items():
            if isinstance(target, dict):
                if not isinstance(target.get("model"), str):
                    raise ValueError(f"$.router_settings.model_group_alias.{alias}.model: expected a group name")
                aliases[alias] = target["model"]
                if target.get("hidden"):
                    hidden.add(alias)
            else:
                aliases[alias] = target
        for name in ("ttl", "lowest_latency_buffer", "max_latency_list_size"):
            value = args.get(name)
            if value is not None and (not isinstance(value, int | float) or isinstance(value, bool) or value < 0):
                raise ValueError(f"$.router_settings.routing_strategy_args.{name}: expected a number >= 0")
        return cls(
            strategy=rs.routing_strategy or "simple-shuffle",
            ttl=float(args.get("ttl", 3600.0)),
            latency_buffer=float(args.get("lowest_latency_buffer", 0.0)),
            samples=max(int(args.get("max_latency_list_size", 10)), 1),
            num_retries=rs.num_retries if rs.num_retries is not None else DEFAULT_NUM_RETRIES,
            retries_by_kind=_kind_policy(rs.retry_policy, "Retries", "$.router_settings.retry_policy"),
            allowed_fails=rs.allowed_fails,
            allowed_fails_by_kind=_kind_policy(rs.allowed_fails_policy, "AllowedFails",
                                               "$.router_settings.allowed_fails_policy"),
            cooldown_time=rs.cooldown_time if rs.cooldown_time is not None else DEFAULT_COOLDOWN_SECONDS,
            disable_cooldowns=bool(rs.disable_cooldowns),
            retry_after=rs.retry_after or 0.0,
            timeout=rs.timeout,
            stream_timeout=rs.stream_timeout,
            fallbacks=fallback_map(rs.fallbacks),
            context_window_fallbacks=fallback_map(rs.context_window_fallbacks),
            content_policy_fallbacks=fallback_map(rs.content_policy_fallbacks),
            default_fallbacks=list(rs.default_fallbacks or []),
            max_fallbacks=rs.max_fallbacks if rs.max_fallbacks is not None else DEFAULT_MAX_FALLBACKS,
            pre_call_checks=bool(rs.enable_pre_call_checks),
            default_parallel=rs.default_max_parallel_requests,
            aliases=aliases,
            hidden_aliases=frozenset(hidden),
        )

    def retries_for(self, kind: str, deployment_retries: int | None, request_retries: int | None) -> int:
        """Retries allowed after a failure of ``kind``: a ``retry_policy`` entry for the kind wins;
        else the request's ``num_retries``, the deployment's, the router's, for retryable kinds."""
        if kind in self.retries_by_kind:
            return self.retries_by_kind[kind]
        if kind not in RETRYABLE:
            return 0
        for value in (request_retries, deployment_retries):
            if value is not None:
                return value
        return self.num_retries


@dataclass(slots=True)
class RouteInfo:
    """The router's view of one deployment (worked out once, kept on the Deployment)."""

    limits: Limits
    weight: float | None
    order: int
    cooldown_time: float | None
    num_retries: int | None
    timeout: float | None
    stream_timeout: float | None
    max_input_tokens: int | None
    price: float


def route_info(dep: Any, policy: RouterPolicy, price: Callable[[Any], float]) -> RouteInfo:
    """``dep.route``, worked out on first use (a changed deployment is a new object);
    ``price(dep)`` gives what cost-based routing compares."""
    info = dep.route
    if info is None:
        p, mi = dep.litellm_params, dep.model_info
        parallel = p.get("max_parallel_requests") or policy.default_parallel
        max_input = mi.get("max_input_tokens")
        info = dep.route = RouteInfo(
            limits=Limits(rpm=dep.rpm, tpm=dep.tpm, parallel=parallel),
            weight=_number(p.get("weight")), order=int(p.get("order") or 0),
            cooldown_time=_number(p.get("cooldown_time")), num_retries=p.get("num_retries"),
            timeout=_number(p.get("timeout")), stream_timeout=_number(p.get("stream_timeout")),
            max_input_tokens=int(max_input) if isinstance(max_input, int | float) else None,
            price=price(dep),
        )
    return info


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


@dataclass(slots=True)
class RequestOptions:
    """The router keys of one request body (and the ``x-litellm-timeout`` header)."""

    num_retries: int | None = None
    timeout: float | None = None
    fallbacks: list[str] | None = None
    disable_fallbacks: bool = False
    mock_failure: str | None = None
    fastest_response: bool = False


_NO_OPTIONS = RequestOptions()


def request_options(body: dict[str, Any], header_timeout: str | None) -> RequestOptions:
    """The request's router keys, type-checked: a wrong type is a 400 naming the key."""
    if header_timeout is None and ROUTER_BODY_KEYS.isdisjoint(body):
        return _NO_OPTIONS
    opts = RequestOptions()
    retries = body.get("num_retries")
    if retries is not None:
        if not isinstance(retries, int) or isinstance(retries, bool) or retries < 0:
            raise bad_request("`num_retries` must be a whole number >= 0", param="num_retries", code="invalid_value")
        opts.num_retries = retries
    for name in ("timeout", "request_timeout"):
        value = body.get(name)
        if value is not None:
            opts.timeout = _positive(value, name)
    if header_timeout is not None:
        try:
            opts.timeout = _positive(float(header_timeout), "x-litellm-timeout")
        except ValueError:
            raise bad_request("the x-litellm-timeout header must be a number of seconds > 0",
                              param="x-litellm-timeout", code="invalid_value") from None
    fallbacks = body.get("fallbacks")
    if fallbacks is not None:
        opts.fallbacks = _fallback_names(fallbacks)
    opts.disable_fallbacks = _flag(body, "disable_fallbacks")
    opts.fastest_response = _flag(body, "fastest_response")
    for key, kind in MOCK_FALLBACK_KINDS.items():
        if _flag(body, key):
            opts.mock_failure = kind
    return opts


def _positive(value: Any, name: str) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
        raise bad_request(f"`{name}` must be a number of seconds > 0", param=name, code="invalid_value")
    return float(value)


def _flag(body: dict[str, Any], name: str) -> bool:
    value = body.get(name)
    if value is not None and not isinstance(value, bool):
        raise bad_request(f"`{name}` must be true or false", param=name, code="invalid_value")
    return bool(value)


def _fallback_names(value: Any) -> list[str]:
    """A body's ``fallbacks``: group names, or LiteLLM's ``[{"model": "g"}]`` / ``[{"g": [...]}]``."""
    if not isinstance(value, list):
        raise bad_request("`fallbacks` must be a list of model group names", param="fallbacks", code="invalid_value")
    names: list[str] = []
    for item in value:
        if isinstance(item, str):
            names.append(item)
        elif isinstance(item, dict) and isinstance(item.get("model"), str):
            names.append(item["model"])
        elif isinstance(item, dict) and all(isinstance(v, list) for v in item.values()):
            names.extend(str(t) for targets in item.values() for t in targets)
        else:
            raise bad_request("`fallbacks` must be a list of model group names", param="fallbacks",
                              code="invalid_value")
    return names

"""From a decoded OpenAI request to a provider call for a chosen deployment: check params and
credentials, build the upstream body; a provider's errors leave scrubbed of credentials."""

from __future__ import annotations

import fnmatch
import logging
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

import msgspec
from aiohttp import web

from sidecar import keys
from sidecar.defaults import apply_defaults
from sidecar.errors import ProviderError, SidecarError
from sidecar.provider import CORE_PARAMS, NO_AMBIENT_CREDENTIALS, Provider, ProviderCall, supported_params
from sidecar.registry import Deployment
from sidecar.secrets import is_secret_param, longest_first, scrub, secret_values
from sidecar.wire import CREDENTIAL_BODY_KEYS, GATEWAY_KEYS

log = logging.getLogger("sidecar")

@lru_cache(maxsize=4096)
def _supported(provider: Provider, model: str, capability: str) -> tuple[frozenset[str], tuple[str, ...]]:
    """The params ``provider`` takes for ``model`` and ``capability``, and the core's params it
    does not list (:data:`~sidecar.provider.CORE_PARAMS`): the core serves those for it."""
    supported = frozenset(supported_params(provider, model, capability))
    return supported, tuple(k for k in CORE_PARAMS.get(capability, ()) if k not in supported)


def flatten_extra_body(body: dict[str, Any]) -> dict[str, Any]:
    """A literal ``extra_body`` object (sent by raw clients and LiteLLM-style callers; the
    OpenAI SDK merges it itself) is merged into the body, as LiteLLM does: its keys then pass
    the same checks as any other (credentials, gateway keys, supported params)."""
    extra = body.get("extra_body")
    if not isinstance(extra, dict):
        return body
    flat = {k: v for k, v in body.items() if k != "extra_body"}
    flat.update(extra)
    return flat


def build_call(
    request: web.Request,
    body: dict[str, Any],
    typed: Any,
    dep: Deployment,
    captured: str | None,
    capability: str,
    openai_params: frozenset[str],
    params: dict[str, Any],
) -> ProviderCall:
    """The call to hand ``dep``'s provider: capability, credentials and params checked, the
    upstream body built. ``params`` are the deployment's ``litellm_params`` as the router set
    them for this attempt (its timeouts)."""
    app = request.app
    config = app[keys.CONFIG]
    provider = dep.provider
    if capability not in provider.capabilities:
        raise SidecarError(400, f"model {dep.model_name!r} ({provider.name}) does not support {capability}; "
                                f"its provider offers: {', '.join(sorted(provider.capabilities))}",
                           param="model", code="unsupported_capability")
    secrets = dep.secrets
    sent_credentials = CREDENTIAL_BODY_KEYS.intersection(body)
    if sent_credentials:
        name = sorted(sent_credentials)[0]
        if not config.general.allow_client_side_credentials:
            raise SidecarError(400, f"{name!r} is not allowed in the request body; the operator can allow it "
                                    "with general_settings.allow_client_side_credentials: true",
                               param=name, code="client_side_credentials_not_allowed")
        sent = {k: body[k] for k in sent_credentials}
        check_api_base(sent, config.general.allowed_api_base_hosts)
        params = client_side_params(params, sent)
        secrets = longest_first((*dep.secrets, *secret_values(sent, sent)))
    upstream_model = dep.upstream_model(captured)
    out = {k: v for k, v in body.items() if k not in GATEWAY_KEYS and k not in sent_credentials}
    out["model"] = upstream_model
    supported, core_served = _supported(provider, upstream_model, capability)
    if core_served:  # the core serves these for the provider (wants_base64, sidecar.sse): it never sees them
        served = [k for k in core_served if k in out]
        if served:
            for k in served:
                del out[k]
            typed = msgspec.structs.replace(typed, **{k: msgspec.UNSET for k in served})
    unsupported = [k for k in out if k in openai_params and k not in supported]
    if unsupported:
        drop = _first_set(body.get("drop_params"), params.get("drop_params"), config.router.drop_params)
        if not drop:
            raise SidecarError(
                400, f"{provider.name} does not support the parameter {unsupported[0]!r} for model "
                     f"{upstream_model!r}; remove it, or set drop_params: true (in the request, "
                     "litellm_params or router_settings) to drop unsupported parameters",
                param=unsupported[0], code="unsupported_params")
        for k in unsupported:
            del out[k]
    if dep.defaults:  # (worked out once per deployment: most have none)
        defaults = dep.defaults.get(capability)
        if defaults is not None:
            typed = apply_defaults(defaults, out, typed, supported)
    # (by position, in the field order: keywords cost a dict per call)
    return ProviderCall(upstream_model, out, typed, params, app[keys.CLIENT_SESSION], dep.id, bool(out.get("stream")),
                        secrets)


def wants_base64(body: dict[str, Any], call: ProviderCall) -> bool:
    """Whether the core encodes this embedding answer's vectors as base64: the client asked for
    it and the provider was not handed ``encoding_format`` (it does not list it)."""
    return body.get("encoding_format") == "base64" and "encoding_format" not in call.body


_CLIENT_URLS = ("api_base", "base_url", "aws_sts_endpoint")
"""Client-sent keys that name a server the sidecar would call."""


def check_api_base(sent: dict[str, Any], allowed: list[str] | None) -> None:
    """A client-sent ``api_base`` (or ``base_url``, ``aws_sts_endpoint``) must name a host that
    ``general_settings.allowed_api_base_hosts`` allows, when that is set, so the sidecar cannot
    be pointed at addresses the operator did not mean (its own network, a metadata service)."""
    if allowed is None:
        return
    for name in _CLIENT_URLS:
        value = sent.get(name)
        if value is None:
            continue
        host = host_of(str(value))
        if not host or not any(fnmatch.fnmatchcase(host, p.lower()) or fnmatch.fnmatchcase(host.split(":")[0], p.lower())
                               for p in allowed):
            raise SidecarError(400, f"the {name!r} sent names a host general_settings.allowed_api_base_hosts "
                                    "does not allow", param=name, code="api_base_not_allowed")


def host_of(url: str) -> str:
    """``https://Host:443/v1`` -> ``host:443``; '' for what is not an http(s) URL."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return ""
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return ""
    return f"{parts.hostname.lower()}:{port}" if port else parts.hostname.lower()


_OTHER_SERVER = frozenset({"api_base", "base_url"})
_AWS_IDENTITY = frozenset(k for k in CREDENTIAL_BODY_KEYS if k.startswith("aws_") and k != "aws_region_name")
"""An AWS identity's keys (keys, profile, role and STS params): a client that sends any of these gets none of the deployment's (a
role, a session name, an STS endpoint of its choosing would otherwise be assumed, named or
called with the deployment's or the machine's credentials; its own keys would be mixed with the
deployment's session token or role)."""


def client_side_params(params: dict[str, Any], sent: dict[str, Any]) -> dict[str, Any]:
    """The deployment's params with the client's credentials over them. A client that points
    the call at its own server (``api_base``/``base_url``) gets none of the deployment's
    secrets, which would be sent to that server; one that names another AWS identity (a role,
    a profile, an STS param) gets none of the deployment's AWS credentials. Neither gets any the
    provider would take from the environment (:data:`NO_AMBIENT_CREDENTIALS`): only what it sent."""
    if not _OTHER_SERVER.isdisjoint(sent):
        params = {k: v for k, v in params.items() if not is_secret_param(k)}
        params[NO_AMBIENT_CREDENTIALS] = True
    elif not _AWS_IDENTITY.isdisjoint(sent):
        params = {k: v for k, v in params.items() if k not in _AWS_IDENTITY}
        params[NO_AMBIENT_CREDENTIALS] = True
    return {**params, **sent}


def _first_set(*values: Any) -> bool:
    for value in values:
        if value is not None:
            return bool(value)
    return False


def scrubbed(err: SidecarError, dep: Deployment, call: ProviderCall, call_id: str = "") -> SidecarError:
    """``err`` with the call's credentials masked; an upstream failure is logged once."""
    err.message = scrub(err.message, call.secrets)
    if isinstance(err, ProviderError):
        log_upstream_failure(dep, err, call_id)
    return err


def log_upstream_failure(dep: Deployment, err: SidecarError, call_id: str = "") -> None:
    """One line for the operator; ``err.message`` is already scrubbed of the deployment's secrets."""
    log.warning("deployment %s (%s, %s) failed: %s %s", dep.id, dep.model_name, dep.provider.name,
                getattr(err, "upstream_status", err.status), err.message,
                extra={"call_id": call_id} if call_id else None)  # (not in the message: repeats are limited)

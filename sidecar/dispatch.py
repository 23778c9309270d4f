"""From a decoded OpenAI request to a provider call: pick the deployment, check params and
credentials, build the upstream body, and run the provider with its errors scrubbed."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from functools import lru_cache
from typing import Any, TypeVar

from aiohttp import web

from sidecar import keys
from sidecar.errors import ProviderError, SidecarError
from sidecar.info import info_for_model, response_cost
from sidecar.provider import NO_AMBIENT_CREDENTIALS, Provider, ProviderCall
from sidecar.registry import Deployment
from sidecar.secrets import is_secret_param, longest_first, scrub, secret_values
from sidecar.wire import CREDENTIAL_BODY_KEYS, GATEWAY_KEYS

T = TypeVar("T")
log = logging.getLogger("sidecar")

@lru_cache(maxsize=4096)
def _supported(provider: Provider, model: str) -> frozenset[str]:
    return frozenset(provider.supported_openai_params(model))


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


def prepare_call(
    request: web.Request,
    body: dict[str, Any],
    typed: Any,
    model: str,
    capability: str,
    openai_params: frozenset[str],
) -> tuple[Deployment, ProviderCall]:
    """The deployment for ``model`` and the call to hand its provider."""
    app = request.app
    config = app[keys.CONFIG]
    dep, captured = app[keys.REGISTRY].pick(model)
    provider = dep.provider
    if capability not in provider.capabilities:
        raise SidecarError(400, f"model {model!r} ({provider.name}) does not support {capability}; "
                                f"its provider offers: {', '.join(sorted(provider.capabilities))}",
                           param="model", code="unsupported_capability")
    params = dep.litellm_params
    secrets = dep.secrets
    sent_credentials = CREDENTIAL_BODY_KEYS.intersection(body)
    if sent_credentials:
        name = sorted(sent_credentials)[0]
        if not config.general.allow_client_side_credentials:
            raise SidecarError(400, f"{name!r} is not allowed in the request body; the operator can allow it "
                                    "with general_settings.allow_client_side_credentials: true",
                               param=name, code="client_side_credentials_not_allowed")
        sent = {k: body[k] for k in sent_credentials}
        params = client_side_params(params, sent)
        secrets = longest_first((*dep.secrets, *secret_values(sent, sent)))
    upstream_model = dep.upstream_model(captured)
    out = {k: v for k, v in body.items() if k not in GATEWAY_KEYS and k not in sent_credentials}
    out["model"] = upstream_model
    supported = _supported(provider, upstream_model)
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
    call = ProviderCall(
        model=upstream_model, body=out, request=typed, params=params,
        session=app[keys.CLIENT_SESSION], deployment_id=dep.id, stream=bool(out.get("stream")), secrets=secrets,
    )
    return dep, call


def client_side_params(params: dict[str, Any], sent: dict[str, Any]) -> dict[str, Any]:
    """The deployment's params with the client's credentials over them. A client that points
    the call at its own server (``api_base``/``base_url``) gets none of the deployment's
    credentials, which would be sent to that server, nor any the provider would take from the
    environment (:data:`NO_AMBIENT_CREDENTIALS`)."""
    if "api_base" in sent or "base_url" in sent:
        params = {k: v for k, v in params.items() if not is_secret_param(k)}
        params[NO_AMBIENT_CREDENTIALS] = True
    return {**params, **sent}


def _first_set(*values: Any) -> bool:
    for value in values:
        if value is not None:
            return bool(value)
    return False


async def run_provider(dep: Deployment, coro_fn: Callable[[ProviderCall], Awaitable[T]], call: ProviderCall) -> T:
    """Await the provider; its errors leave with the deployment's credentials masked."""
    try:
        return await coro_fn(call)
    except SidecarError as err:
        err.message = scrub(err.message, call.secrets)
        if isinstance(err, ProviderError):
            log_upstream_failure(dep, err)
        raise
    except NotImplementedError:
        raise SidecarError(400, f"provider {dep.provider.name!r} does not implement this endpoint",
                           param="model", code="unsupported_capability") from None


def log_upstream_failure(dep: Deployment, err: SidecarError) -> None:
    """One line for the operator; ``err.message`` is already scrubbed of the deployment's secrets."""
    log.warning("deployment %s (%s, %s) failed: %s %s", dep.id, dep.model_name, dep.provider.name,
                getattr(err, "upstream_status", err.status), err.message)


def model_id_headers(dep: Deployment) -> dict[str, str]:
    return {"x-litellm-model-id": dep.id}


def response_headers(request: web.Request, dep: Deployment, call: ProviderCall, usage: Any) -> dict[str, str]:
    """``x-litellm-model-id``, and ``x-litellm-response-cost`` (USD, from the deployment's
    per-token prices) when the answer reports usage."""
    headers = model_id_headers(dep)
    if usage is not None:
        info = info_for_model(dep, call.model, request.app[keys.SYNCED_MODELS])
        prompt = getattr(usage, "prompt_tokens", 0) or 0
        completion = getattr(usage, "completion_tokens", 0) or 0
        headers["x-litellm-response-cost"] = repr(response_cost(info, prompt, completion))
    return headers

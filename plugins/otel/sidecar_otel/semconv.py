"""OpenTelemetry's GenAI semantic conventions as the sidecar fills them in: plain attribute dicts
built from a request's body and its :class:`sidecar.CallEvent` s (nothing from OpenTelemetry is
imported here).

Only what the conventions name and a few ``sidecar.*`` routing facts go on a span: never a
message's content, a credential or an ``api_base`` (so no ``server.address`` either).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sidecar import CallEvent

__all__ = ["attempt_attributes", "final_attributes", "operation", "outcome_attributes", "provider_name", "request_attributes"]

OPERATIONS = {"chat": "chat", "completion": "text_completion", "embedding": "embeddings"}
"""``gen_ai.operation.name`` of each capability the conventions know; the others keep their own
name (``image_generation``, ``audio_speech``, ``rerank``...), as the conventions allow."""

PROVIDERS = {
    "openai": "openai", "text-completion-openai": "openai", "azure": "azure.ai.openai",
    "azure_ai": "azure.ai.inference", "anthropic": "anthropic", "bedrock": "aws.bedrock",
    "gemini": "gcp.gemini", "vertex_ai": "gcp.vertex_ai", "cohere": "cohere", "cohere_chat": "cohere",
    "mistral": "mistral_ai", "groq": "groq", "deepseek": "deepseek", "xai": "x_ai", "perplexity": "perplexity",
    "watsonx": "ibm.watsonx.ai", "ollama_chat": "ollama",
}
"""``gen_ai.provider.name`` of each sidecar provider the conventions list; others keep their name."""

_NUMBERS: tuple[tuple[str, str, type], ...] = (
    ("temperature", "gen_ai.request.temperature", float),
    ("top_p", "gen_ai.request.top_p", float),
    ("top_k", "gen_ai.request.top_k", int),
    ("max_tokens", "gen_ai.request.max_tokens", int),
    ("max_completion_tokens", "gen_ai.request.max_tokens", int),
    ("frequency_penalty", "gen_ai.request.frequency_penalty", float),
    ("presence_penalty", "gen_ai.request.presence_penalty", float),
    ("seed", "gen_ai.request.seed", int),
    ("dimensions", "gen_ai.embeddings.dimension.count", int),
)


def operation(capability: str) -> str:
    return OPERATIONS.get(capability, capability)


def provider_name(provider: str) -> str:
    return PROVIDERS.get(provider, provider)


def request_attributes(capability: str, group: str, body: Mapping[str, Any], stream: bool) -> dict[str, Any]:
    """What the client asked: the operation, the model group and the sampling settings."""
    attrs: dict[str, Any] = {"gen_ai.operation.name": operation(capability), "gen_ai.request.model": group}
    if stream:
        attrs["gen_ai.request.stream"] = True
    for key, name, kind in _NUMBERS:
        value = body.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            attrs[name] = kind(value)
    n = body.get("n")
    if isinstance(n, int) and not isinstance(n, bool) and n != 1:
        attrs["gen_ai.request.choice.count"] = n
    stop = body.get("stop")
    if isinstance(stop, str):
        attrs["gen_ai.request.stop_sequences"] = [stop]
    elif isinstance(stop, list) and stop and all(isinstance(s, str) for s in stop):
        attrs["gen_ai.request.stop_sequences"] = stop
    effort = body.get("reasoning_effort")
    if isinstance(effort, str):
        attrs["gen_ai.request.reasoning.level"] = effort
    encoding = body.get("encoding_format")
    if isinstance(encoding, str):
        attrs["gen_ai.request.encoding_formats"] = [encoding]
    return attrs


def outcome_attributes(event: CallEvent) -> dict[str, Any]:
    """What an attempt got: the provider, the model, the usage and cost, or the error."""
    attrs: dict[str, Any] = {"sidecar.model_group": event.group}
    if event.provider is not None:
        attrs["gen_ai.provider.name"] = attrs["gen_ai.system"] = provider_name(event.provider)
    if event.deployment_id is not None:
        attrs["sidecar.deployment_id"] = event.deployment_id
    if event.ok and event.model is not None:
        attrs["gen_ai.response.model"] = event.model
    for value, name in ((event.prompt_tokens, "gen_ai.usage.input_tokens"),
                        (event.completion_tokens, "gen_ai.usage.output_tokens"),
                        (event.cached_tokens, "gen_ai.usage.cache_read.input_tokens"),
                        (event.reasoning_tokens, "gen_ai.usage.reasoning.output_tokens")):
        if value:
            attrs[name] = value
    if event.cost is not None:
        attrs["sidecar.cost"] = event.cost
    if not event.ok:
        attrs["error.type"] = error_type(event)
        if event.error_code:
            attrs["sidecar.error_code"] = event.error_code
    return attrs


def attempt_attributes(event: CallEvent, request: Mapping[str, Any]) -> dict[str, Any]:
    """An upstream attempt's span: the request's settings, the upstream model, the outcome."""
    attrs = {**request, **outcome_attributes(event), "sidecar.attempt": event.attempt}
    if event.model is not None:
        attrs["gen_ai.request.model"] = event.model
    if event.stream and event.time_to_first_token is not None:
        attrs["gen_ai.response.time_to_first_chunk"] = event.upstream_duration
    if event.upstream_status is not None:
        attrs["http.response.status_code"] = event.upstream_status
    elif event.ok:
        attrs["http.response.status_code"] = 200
    for flag, name in ((event.retry, "sidecar.retry"), (event.fallback, "sidecar.fallback"),
                       (event.cooled_down, "sidecar.cooled_down")):
        if flag:
            attrs[name] = True
    return attrs


def final_attributes(event: CallEvent) -> dict[str, Any]:
    """The request's span at its end: the outcome the client got, through how many attempts."""
    attempts = event.attempt if event.deployment_id is not None else 0  # (refused before any attempt)
    attrs = {**outcome_attributes(event), "sidecar.attempts": attempts,
             "http.response.status_code": event.status}
    if event.fallback:
        attrs["sidecar.fallback"] = True
    if event.time_to_first_token is not None:
        attrs["gen_ai.response.time_to_first_chunk"] = event.time_to_first_token
    return attrs


def error_type(event: CallEvent) -> str:
    """``error.type``: the router's kind of failure (``rate_limit``, ``timeout``...), else the
    error's code, else the status."""
    return event.error_kind or event.error_code or str(event.status)

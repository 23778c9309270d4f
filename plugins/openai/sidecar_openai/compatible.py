"""The OpenAI wire protocol, spoken to OpenAI itself or any compatible server."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import aiohttp
import msgspec
import yarl

from sidecar import (
    NO_AMBIENT_CREDENTIALS,
    OPENAI_CHAT_PARAMS,
    ApiAccess,
    OPENAI_COMPLETION_PARAMS,
    OPENAI_EMBEDDING_PARAMS,
    Provider,
    ProviderCall,
    ProviderError,
    is_secret_param,
    timeout_for,
)
from sidecar_openai.endpoints import TEXT_COMPLETION_ONLY_PARAMS, with_endpoints

CHAT_PARAMS = [
    "frequency_penalty", "logit_bias", "logprobs", "top_logprobs", "max_tokens", "max_completion_tokens",
    "modalities", "prediction", "n", "presence_penalty", "seed", "stop", "stream", "stream_options",
    "temperature", "top_p", "tools", "tool_choice", "function_call", "functions", "max_retries",
    "extra_headers", "parallel_tool_calls", "audio", "response_format", "user", "reasoning_effort",
    "service_tier", "store", "web_search_options", "verbosity", "safety_identifier", "prompt_cache_key",
    "prompt_cache_retention",
]
EMBEDDING_PARAMS = ["encoding_format", "dimensions", "user"]
MEDIA_PARAMS = {
    "moderation": [],
    "image_generation": ["background", "moderation", "n", "output_compression", "output_format", "partial_images",
                         "quality", "response_format", "size", "stream", "style", "user"],
    "audio_speech": ["instructions", "response_format", "speed", "stream_format", "voice"],
    "audio_transcription": ["chunking_strategy", "include", "language", "prompt", "response_format", "stream",
                            "temperature", "timestamp_granularities"],
}
"""The optional params of OpenAI's other requests (their bodies go upstream as sent)."""
COMPAT_CHAT_PARAMS = [
    "frequency_penalty", "logit_bias", "logprobs", "top_logprobs", "max_tokens", "max_completion_tokens",
    "n", "presence_penalty", "seed", "stop", "stream", "stream_options", "temperature", "top_p", "tools",
    "tool_choice", "parallel_tool_calls", "response_format", "user", "extra_headers",
]

# litellm_params that configure the connection; every other key is a default for the body (the
# core applies those that are OpenAI params, per capability and only where accepted: OPENAI_PARAMS).
CONNECTION_PARAMS = frozenset({
    "model", "api_key", "api_base", "base_url", "api_version", "organization", "timeout",
    "stream_timeout", "max_retries", "tpm", "rpm", "drop_params", "extra_headers", "azure_ad_token",
    "mock_response", "mock_delay", "model_info", "use_in_pass_through", "merge_reasoning_content_in_choices",
    NO_AMBIENT_CREDENTIALS,
})

# LiteLLM's deployment-level keys (routing, retries, pricing, logging): never request params,
# so not sent upstream either (OpenAI answers 400 to an unknown argument). Pricing keys
# (``input_cost_per_token``, ``cache_read_input_token_cost``...) are recognised by their "cost".
LITELLM_ONLY_PARAMS = frozenset({
    "custom_llm_provider", "num_retries", "weight", "order", "tags", "region_name", "allowed_model_region",
    "base_model", "litellm_credential_name", "configurable_clientside_auth_params", "cooldown_time",
    "max_parallel_requests", "supports_system_message", "headers", "ssl_verify", "request_timeout",
    "client_side_timeout", "tiered_pricing", "max_budget", "budget_duration", "use_litellm_proxy",
    "allowed_openai_params", "litellm_metadata", "metadata", "litellm_trace_id", "mock_timeout",
    "fallbacks", "context_window_fallback_dict", "retry_policy", "stream_timeout_by_service_tier",
    "timeout_by_service_tier", "itpm", "otpm", "model_alias_map", "auto_router_config",
    "api_type", "tenant_id", "client_id", "azure_username", "azure_scope",
})


@lru_cache(maxsize=1024)
def _body_default_keys(keys: tuple[str, ...]) -> tuple[str, ...]:
    """The ``litellm_params`` keys that are body defaults (decided once per set of keys)."""
    return tuple(k for k in keys if _is_body_default(k))


OPENAI_PARAMS = OPENAI_CHAT_PARAMS | OPENAI_COMPLETION_PARAMS | OPENAI_EMBEDDING_PARAMS
"""OpenAI request params: as ``litellm_params`` defaults, the core's to apply (to ``call.body``)."""


def _is_body_default(key: str) -> bool:
    """Whether a ``litellm_params`` key is a default this plugin puts into the request body: a
    provider-specific one (vLLM's ``top_k``, ``extra_body``...). Credentials (by their name:
    ``*_key``, ``*_token``, ``client_secret``, ``aws_*``...) never are."""
    if key in CONNECTION_PARAMS or key in LITELLM_ONLY_PARAMS or key in OPENAI_PARAMS or "cost" in key.split("_"):
        return False
    return not is_secret_param(key)


_encode = msgspec.json.Encoder().encode


class _ModelList(msgspec.Struct):
    data: list[dict[str, Any]] = []


_models = msgspec.json.Decoder(_ModelList)


@dataclass(frozen=True, slots=True)
class Compatible:
    """A service speaking OpenAI's protocol: its prefix, default base URL and key variable."""

    name: str
    api_base: str | None
    key_env: str | None
    capabilities: frozenset[str] = frozenset({"chat", "embedding"})
    full_params: bool = False
    base_env: str | None = None  # the variable LiteLLM reads for the api_base (``CEREBRAS_API_BASE``...)
    stream_usage: bool = False
    """Whether a stream asks the upstream for its usage chunk even when the client did not (the
    router then counts the real tokens; the core drops the chunk for that client): for servers
    known to take ``stream_options``, as some others refuse it."""


MEDIA = frozenset({"image_generation", "audio_speech", "audio_transcription"})

COMPATIBLE = [
    Compatible("openai", "https://api.openai.com/v1", "OPENAI_API_KEY",
               frozenset({"chat", "completion", "embedding", "moderation", *MEDIA}), full_params=True,
               stream_usage=True),
    Compatible("groq", "https://api.groq.com/openai/v1", "GROQ_API_KEY", frozenset({"chat"})),
    Compatible("together_ai", "https://api.together.xyz/v1", "TOGETHERAI_API_KEY",
               frozenset({"chat", "completion", "embedding"})),
    Compatible("mistral", "https://api.mistral.ai/v1", "MISTRAL_API_KEY"),
    Compatible("deepseek", "https://api.deepseek.com/v1", "DEEPSEEK_API_KEY", frozenset({"chat"})),
    Compatible("openrouter", "https://openrouter.ai/api/v1", "OPENROUTER_API_KEY", frozenset({"chat", "completion"})),
    Compatible("fireworks_ai", "https://api.fireworks.ai/inference/v1", "FIREWORKS_AI_API_KEY",
               frozenset({"chat", "completion", "embedding"})),
    Compatible("xai", "https://api.x.ai/v1", "XAI_API_KEY", frozenset({"chat"})),
    Compatible("perplexity", "https://api.perplexity.ai", "PERPLEXITYAI_API_KEY", frozenset({"chat"})),
    Compatible("hosted_vllm", None, "HOSTED_VLLM_API_KEY", frozenset({"chat", "completion", "embedding"}),
               full_params=True, stream_usage=True),
    Compatible("cerebras", "https://api.cerebras.ai/v1", "CEREBRAS_API_KEY", frozenset({"chat"}),
               base_env="CEREBRAS_API_BASE"),
    Compatible("deepinfra", "https://api.deepinfra.com/v1/openai", "DEEPINFRA_API_KEY", base_env="DEEPINFRA_API_BASE"),
    Compatible("nvidia_nim", "https://integrate.api.nvidia.com/v1", "NVIDIA_NIM_API_KEY", base_env="NVIDIA_NIM_API_BASE"),
    Compatible("lm_studio", None, "LM_STUDIO_API_KEY", base_env="LM_STUDIO_API_BASE"),
    Compatible("sambanova", "https://api.sambanova.ai/v1", "SAMBANOVA_API_KEY", base_env="SAMBANOVA_API_BASE"),
]


class OpenAICompatibleProvider(Provider):
    """Sends the client's body on, and normalises answers to OpenAI's spec. This class holds the
    connection (URL, headers, body); the capability methods come from the mixins of
    :mod:`sidecar_openai.endpoints`: a subclass mixes in those of its capabilities, and
    :func:`compatible_provider` builds the class for a :class:`Compatible` spec."""

    def __init__(self, spec: Compatible) -> None:
        self.spec = spec
        self.access = ApiAccess(spec.name, key_envs=(spec.key_env,) if spec.key_env else (),
                                base_envs=(spec.base_env,) if spec.base_env else (), default_base=spec.api_base)
        self.name = spec.name
        self.capabilities = spec.capabilities
        self.description = f"OpenAI protocol at {spec.api_base or 'your api_base'}"

    # ---------------------------------------------------------------- contract

    def supported_openai_params(self, model: str, capability: str | None = None) -> list[str]:
        """Per capability when asked (embeddings take ``encoding_format``, chat does not); without
        one (callers of the one-argument form), by the model's catalog mode, else both lists."""
        from sidecar import OPENAI_COMPLETION_PARAMS, catalog_lookup

        if capability in MEDIA_PARAMS:
            return list(MEDIA_PARAMS[capability])
        chat = CHAT_PARAMS if self.spec.full_params else COMPAT_CHAT_PARAMS
        if capability == "completion":
            return [p for p in chat + TEXT_COMPLETION_ONLY_PARAMS if p in OPENAI_COMPLETION_PARAMS]
        if "completion" in self.capabilities and capability is None:  # (one list for every capability)
            chat = chat + TEXT_COMPLETION_ONLY_PARAMS
        if capability == "embedding":
            return list(EMBEDDING_PARAMS)
        if capability is not None or "embedding" not in self.capabilities:
            return list(chat)
        mode = (catalog_lookup(model, self.name) or {}).get("mode")
        if mode == "embedding":
            return list(EMBEDDING_PARAMS)
        if mode == "chat":
            return list(chat)
        return list(dict.fromkeys(chat + EMBEDDING_PARAMS))  # unknown model: either endpoint

    async def list_models(self, params: Mapping[str, Any], session: aiohttp.ClientSession) -> list[str]:
        url, headers = self.endpoint(params, "", "models")
        try:
            async with session.get(url, headers=headers, timeout=timeout_for(params, False)) as resp:
                if resp.status >= 400:
                    raise ProviderError(resp.status, f"{self.name} upstream answered {resp.status} to GET /models")
                listing = _models.decode(await resp.read())
        except (aiohttp.ClientError, TimeoutError) as exc:
            from sidecar import connection_error

            raise connection_error(exc, self.name) from None
        return sorted(str(m["id"]) for m in listing.data if "id" in m)

    # ---------------------------------------------------------------- wire details

    def upstream_body(self, call: ProviderCall) -> dict[str, Any]:
        """The client's body (with the OpenAI params' defaults the core applied), over
        provider-specific defaults given as extra ``litellm_params`` (as LiteLLM does)."""
        params = call.params
        keys = _body_default_keys(tuple(params))
        if not keys:
            return call.body
        defaults = {k: params[k] for k in keys}
        extra = defaults.pop("extra_body", None)  # LiteLLM merges a configured extra_body into the body
        if isinstance(extra, dict):
            defaults.update(extra)
        return {**defaults, **call.body}

    def stream_body(self, call: ProviderCall) -> dict[str, Any]:
        """:meth:`upstream_body` for a streamed chat or completion: asking for the usage chunk
        where the upstream takes it (:meth:`asks_stream_usage`), so the router counts the tokens."""
        body = self.upstream_body(call)
        options = body.get("stream_options")
        if not self.asks_stream_usage(call.params) or (isinstance(options, dict) and options.get("include_usage")):
            return body
        return {**body, "stream_options": {**(options if isinstance(options, dict) else {}), "include_usage": True}}

    def asks_stream_usage(self, params: Mapping[str, Any]) -> bool:
        return self.spec.stream_usage

    def endpoint(self, params: Mapping[str, Any], model: str, path: str) -> tuple[str | yarl.URL, dict[str, str]]:
        return self.access.url(params, "/" + path), self.headers(params)

    def ambient_credentials(self, params: Mapping[str, Any]) -> list[str]:
        return self.access.ambient(params)

    def headers(self, params: Mapping[str, Any]) -> dict[str, str]:
        organization = params.get("organization")
        return self.access.headers(params, {"OpenAI-Organization": str(organization)} if organization else None)


def compatible_provider(spec: Compatible) -> OpenAICompatibleProvider:
    """The provider for ``spec``: with the endpoint methods of its capabilities, and no other."""
    return with_endpoints(OpenAICompatibleProvider, spec.capabilities)(spec)

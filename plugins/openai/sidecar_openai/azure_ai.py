"""``azure_ai/``: Azure AI Foundry models (Mistral, Llama, Phi, DeepSeek, Cohere...) through the
Azure AI model inference API, which speaks OpenAI's chat and embeddings.

As LiteLLM does: ``api_base`` (or ``$AZURE_AI_API_BASE``) is required; a Foundry resource
(``*.services.ai.azure.com``) is served under ``/models``, any other endpoint (serverless
``*.models.ai.azure.com``, ``*.inference.ai.azure.com``) at ``api_base`` itself; a path the
``api_base`` already ends with is not repeated, its query is kept, and ``api_version`` becomes
``?api-version=``. The key (``api_key`` or ``$AZURE_AI_API_KEY``) goes in the ``api-key`` header
for ``*.services.ai.azure.com`` and ``*.openai.azure.com`` hosts, as ``Authorization: Bearer``
elsewhere.

Claude (``azure_ai/claude-*``) is served by Foundry's Anthropic endpoint,
``<resource>/anthropic/v1/messages``, with the key as ``x-api-key`` and ``api-key`` (as LiteLLM
sends it), translated by the anthropic plugin's public API (``sidecar_anthropic``); without
that plugin installed such a call is a 400 naming it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from functools import lru_cache
from types import ModuleType
from typing import Any

import yarl

from sidecar import ChatCompletion, ProviderCall, ProviderError
from sidecar_openai.compatible import Compatible, OpenAICompatibleProvider
from sidecar_openai.endpoints import Chat, Embeddings

_KEY_HEADER_HOSTS = (".services.ai.azure.com", ".openai.azure.com")


@lru_cache(maxsize=1024)
def foundry_url(base: str, path: str, api_version: str | None) -> yarl.URL:
    """The URL of ``path`` (``chat/completions``, ``embeddings``) for an Azure AI ``base``."""
    try:
        url = yarl.URL(base)
        url.port  # noqa: B018 - a port out of range raises here
    except (ValueError, TypeError):
        raise ProviderError(400, "litellm_params.api_base is not a valid URL", param="api_base",
                            code="invalid_api_base") from None
    if not url.host:
        raise ProviderError(400, "litellm_params.api_base is not a valid URL", param="api_base",
                            code="invalid_api_base")
    ending = f"models/{path}" if "services.ai.azure.com" in url.host else path
    url = url.with_path(_join_without_overlap(url.path, ending)).with_query(url.query)
    if api_version and "api-version" not in url.query:
        url = url.update_query({"api-version": api_version})
    return url


def _join_without_overlap(base_path: str, ending: str) -> str:
    """``/models`` + ``models/chat/completions`` -> ``/models/chat/completions``: the segments the
    base already ends with are not repeated (LiteLLM's rule)."""
    base = [s for s in base_path.split("/") if s]
    end = [s for s in ending.split("/") if s]
    for i in range(len(base)):
        tail = base[i:]
        if tail == end[:len(tail)]:
            return "/" + "/".join(base[:i] + end)
    return "/" + "/".join(base + end)


_ANTHROPIC_SUFFIXES = ("/anthropic/v1/messages", "/anthropic/v1", "/anthropic", "/models")


@lru_cache(maxsize=1024)
def anthropic_url(base: str) -> yarl.URL:
    """Foundry's Messages API for an ``api_base``: the resource root, or a URL already ending in
    ``/anthropic``, ``/anthropic/v1/messages`` or ``/models`` (the other models' path), gives
    ``<root>/anthropic/v1/messages``."""
    try:
        url = yarl.URL(base)
        url.port  # noqa: B018 - a port out of range raises here
    except (ValueError, TypeError):
        url = None
    if url is None or not url.host:
        raise ProviderError(400, "litellm_params.api_base is not a valid URL", param="api_base",
                            code="invalid_api_base")
    path = url.path.rstrip("/")
    for suffix in _ANTHROPIC_SUFFIXES:
        if path.endswith(suffix):
            path = path[:-len(suffix)]
            break
    return url.with_path(f"{path}/anthropic/v1/messages").with_query(None)


def is_claude(model: str) -> bool:
    return model.lower().startswith("claude")


def anthropic_plugin() -> ModuleType | None:
    """The anthropic plugin's translation, when it is installed."""
    try:
        import sidecar_anthropic
    except ImportError:
        return None
    return sidecar_anthropic


def uses_key_header(base: str) -> bool:
    host = (yarl.URL(base).host or "").lower()
    return host.endswith(_KEY_HEADER_HOSTS)


class AzureAIProvider(Chat, Embeddings, OpenAICompatibleProvider):
    """Azure AI Foundry's OpenAI-compatible model inference API."""

    def __init__(self) -> None:
        super().__init__(Compatible("azure_ai", None, "AZURE_AI_API_KEY", frozenset({"chat", "embedding"}),
                                    base_env="AZURE_AI_API_BASE"))
        self.description = "Azure AI Foundry models (model inference API)"

    def supported_openai_params(self, model: str, capability: str | None = None) -> list[str]:
        plugin = anthropic_plugin() if is_claude(model) and capability in (None, "chat") else None
        if plugin is not None:
            return plugin.supported_params(model, self.name)
        return super().supported_openai_params(model, capability)

    async def chat(self, call: ProviderCall) -> ChatCompletion | AsyncIterator[Any]:
        if is_claude(call.model):
            return await self._claude(call)
        return await super().chat(call)

    async def _claude(self, call: ProviderCall) -> ChatCompletion | AsyncIterator[Any]:
        """Claude through Foundry's Anthropic endpoint, translated by the anthropic plugin."""
        plugin = anthropic_plugin()
        if plugin is None:
            raise ProviderError(400, f"azure_ai/{call.model} speaks Anthropic's Messages API: install the anthropic "
                                     "plugin (sidecar-anthropic, plugins/anthropic) to serve it",
                                param="model", code="missing_plugin", kind="bad_request")
        params = call.params
        base = self.access.base(params)
        if not base:
            raise ProviderError(400, "azure_ai needs litellm_params.api_base (or $AZURE_AI_API_BASE): your "
                                     "Azure AI endpoint", param="api_base", code="missing_api_base")
        headers = {"Content-Type": "application/json", "anthropic-version": plugin.API_VERSION}
        key = self.access.key(params)
        if key:
            headers["x-api-key"] = headers["api-key"] = str(key)
        headers.update(plugin.extra_headers(params))
        return await plugin.messages_chat(call, anthropic_url(str(base)), headers, self.name)

    def endpoint(self, params: Mapping[str, Any], model: str, path: str) -> tuple[yarl.URL, dict[str, str]]:
        base = self.access.base(params)
        if not base:
            raise ProviderError(400, "azure_ai needs litellm_params.api_base (or $AZURE_AI_API_BASE): your "
                                     "Azure AI endpoint", param="api_base", code="missing_api_base")
        version = params.get("api_version")
        return foundry_url(str(base), path, str(version) if version else None), self._headers(params, str(base))

    def _headers(self, params: Mapping[str, Any], base: str) -> dict[str, str]:
        headers = self.headers(params)
        if uses_key_header(base) and "Authorization" in headers:
            headers["api-key"] = headers.pop("Authorization").removeprefix("Bearer ")
        return headers

"""``azure_ai/``: Azure AI Foundry models (Mistral, Llama, Phi, DeepSeek, Cohere...) through the
Azure AI model inference API, which speaks OpenAI's chat and embeddings.

As LiteLLM does: ``api_base`` (or ``$AZURE_AI_API_BASE``) is required; a Foundry resource
(``*.services.ai.azure.com``) is served under ``/models``, any other endpoint (serverless
``*.models.ai.azure.com``, ``*.inference.ai.azure.com``) at ``api_base`` itself; a path the
``api_base`` already ends with is not repeated, its query is kept, and ``api_version`` becomes
``?api-version=``. The key (``api_key`` or ``$AZURE_AI_API_KEY``) goes in the ``api-key`` header
for ``*.services.ai.azure.com`` and ``*.openai.azure.com`` hosts, as ``Authorization: Bearer``
elsewhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import yarl

from sidecar import ProviderError
from sidecar_openai.compatible import Compatible, OpenAICompatibleProvider

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


def uses_key_header(base: str) -> bool:
    host = (yarl.URL(base).host or "").lower()
    return host.endswith(_KEY_HEADER_HOSTS)


class AzureAIProvider(OpenAICompatibleProvider):
    """Azure AI Foundry's OpenAI-compatible model inference API."""

    def __init__(self) -> None:
        super().__init__(Compatible("azure_ai", None, "AZURE_AI_API_KEY", frozenset({"chat", "embedding"}),
                                    base_env="AZURE_AI_API_BASE"))
        self.description = "Azure AI Foundry models (model inference API)"

    def endpoint(self, params: Mapping[str, Any], model: str, path: str) -> tuple[yarl.URL, dict[str, str]]:
        base = params.get("api_base") or params.get("base_url") or self._env_base(params)
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

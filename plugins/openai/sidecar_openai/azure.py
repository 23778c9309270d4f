"""Azure OpenAI: deployment URLs, ``api-version``, and the ``api-key`` header."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from sidecar import NO_AMBIENT_CREDENTIALS, ProviderError
from sidecar_openai.compatible import MEDIA, Compatible, OpenAICompatibleProvider
from sidecar_openai.endpoints import Chat, Embeddings, Images, Speech, TextCompletions, Transcriptions

DEFAULT_API_VERSION = "2024-10-21"
STREAM_OPTIONS_SINCE = "2024-09-01"


class AzureProvider(Chat, TextCompletions, Embeddings, Images, Speech, Transcriptions, OpenAICompatibleProvider):
    """``azure/<deployment>``: ``api_base`` is the resource (``https://NAME.openai.azure.com``)."""

    def __init__(self) -> None:
        super().__init__(Compatible("azure", None, "AZURE_API_KEY",
                                    frozenset({"chat", "completion", "embedding", *MEDIA}), full_params=True))
        self.description = "Azure OpenAI deployments"

    def endpoint(self, params: Mapping[str, Any], model: str, path: str) -> tuple[str, dict[str, str]]:
        base = params.get("api_base") or os.environ.get("AZURE_API_BASE")
        if not base:
            raise ProviderError(400, "azure needs litellm_params.api_base (https://<resource>.openai.azure.com)",
                                param="api_base", code="missing_api_base")
        version = self._version(params)
        base = str(base).rstrip("/")
        if path == "models":
            url = f"{base}/openai/models"
        elif "/openai/deployments/" in base:
            url = f"{base}/{path}"
        else:
            url = f"{base}/openai/deployments/{quote(model, safe='')}/{path}"
        return f"{url}?api-version={quote(str(version))}", self.headers(params)

    @staticmethod
    def _version(params: Mapping[str, Any]) -> str:
        return str(params.get("api_version") or os.environ.get("AZURE_API_VERSION") or DEFAULT_API_VERSION)

    def asks_stream_usage(self, params: Mapping[str, Any]) -> bool:
        """Azure takes ``stream_options`` from API version 2024-09-01 on; older ones refuse it."""
        return self._version(params) >= STREAM_OPTIONS_SINCE

    @staticmethod
    def _credential(params: Mapping[str, Any]) -> tuple[str, Any]:
        """What authenticates the call: the deployment's own ``azure_ad_token`` or ``api_key``
        first, then ``AZURE_AD_TOKEN``, then ``AZURE_API_KEY`` from the environment (not when
        the client routed the call to its own server: ``NO_AMBIENT_CREDENTIALS``)."""
        if params.get("azure_ad_token"):
            return "token", params["azure_ad_token"]
        if params.get("api_key"):
            return "key", params["api_key"]
        if params.get(NO_AMBIENT_CREDENTIALS):
            return "", None
        if os.environ.get("AZURE_AD_TOKEN"):
            return "token", os.environ["AZURE_AD_TOKEN"]
        if os.environ.get("AZURE_API_KEY"):
            return "key", os.environ["AZURE_API_KEY"]
        return "", None

    def ambient_credentials(self, params: Mapping[str, Any]) -> list[str]:
        kind, value = self._credential(params)
        return [str(value)] if kind and value not in params.values() else []

    def headers(self, params: Mapping[str, Any]) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        kind, value = self._credential(params)
        if kind == "token":
            headers["Authorization"] = f"Bearer {value}"
        elif kind == "key":
            headers["api-key"] = str(value)
        extra = params.get("extra_headers")
        if isinstance(extra, dict):
            headers.update({str(k): str(v) for k, v in extra.items()})
        return headers

"""Azure OpenAI: deployment URLs, ``api-version``, and the ``api-key`` header."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from sidecar import ProviderError
from sidecar_openai.compatible import Compatible, OpenAICompatibleProvider

DEFAULT_API_VERSION = "2024-10-21"


class AzureProvider(OpenAICompatibleProvider):
    """``azure/<deployment>``: ``api_base`` is the resource (``https://NAME.openai.azure.com``)."""

    def __init__(self) -> None:
        super().__init__(Compatible("azure", None, "AZURE_API_KEY", frozenset({"chat", "embedding"}), full_params=True))
        self.description = "Azure OpenAI deployments"

    def endpoint(self, params: Mapping[str, Any], model: str, path: str) -> tuple[str, dict[str, str]]:
        base = params.get("api_base") or os.environ.get("AZURE_API_BASE")
        if not base:
            raise ProviderError(400, "azure needs litellm_params.api_base (https://<resource>.openai.azure.com)",
                                param="api_base", code="missing_api_base")
        version = params.get("api_version") or os.environ.get("AZURE_API_VERSION") or DEFAULT_API_VERSION
        base = str(base).rstrip("/")
        if path == "models":
            url = f"{base}/openai/models"
        elif "/openai/deployments/" in base:
            url = f"{base}/{path}"
        else:
            url = f"{base}/openai/deployments/{quote(model, safe='')}/{path}"
        return f"{url}?api-version={quote(str(version))}", self.headers(params)

    def headers(self, params: Mapping[str, Any]) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        token = params.get("azure_ad_token") or os.environ.get("AZURE_AD_TOKEN")
        key = params.get("api_key") or os.environ.get("AZURE_API_KEY")
        if token:
            headers["Authorization"] = f"Bearer {token}"
        elif key:
            headers["api-key"] = str(key)
        extra = params.get("extra_headers")
        if isinstance(extra, dict):
            headers.update({str(k): str(v) for k, v in extra.items()})
        return headers

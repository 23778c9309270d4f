"""Cohere's v2 API for llm-sidecar, as LiteLLM maps it.

Providers (the prefix of ``litellm_params.model``): ``cohere`` and ``cohere_chat`` (LiteLLM's
name for Cohere's chat models, which the catalog gives bare names such as ``command-a-03-2025``);
both chat through ``/v2/chat``, embed through ``/v2/embed`` and rerank through ``/v2/rerank``.
``api_base`` (default ``https://api.cohere.com``) is the host; the key is ``api_key``, else
``$COHERE_API_KEY``, else ``$CO_API_KEY``, sent as ``Authorization: Bearer``.
"""

from __future__ import annotations

from sidecar import Provider, hookimpl
from sidecar_cohere.provider import CohereProvider

__version__ = "0.1.0"


@hookimpl
def sidecar_providers() -> list[Provider]:
    return [CohereProvider("cohere"), CohereProvider("cohere_chat")]

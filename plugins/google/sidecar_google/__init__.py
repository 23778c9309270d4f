"""Google's Gemini models for llm-sidecar.

Providers (the prefix of ``litellm_params.model``):

- ``gemini``: the Gemini API (``generativelanguage.googleapis.com``), API key in ``x-goog-api-key``
  (``sidecar_google.gemini``);
- ``vertex_ai``: Vertex AI, bearer tokens from google-auth (``sidecar_google.vertex``); its
  ``claude-*`` models go to the anthropic plugin (``sidecar_google.vertex.claude_call``).

Both translate OpenAI's chat requests to ``generateContent`` (``sidecar_google.request``) and its
answers and SSE streams back (``sidecar_google.response``).
"""

from __future__ import annotations

from sidecar import Provider, hookimpl
from sidecar_google.gemini import GeminiProvider
from sidecar_google.vertex import VertexProvider

__version__ = "0.1.0"


@hookimpl
def sidecar_providers() -> list[Provider]:
    return [GeminiProvider(), VertexProvider()]

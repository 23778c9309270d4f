"""Ollama's native API for llm-sidecar, as LiteLLM maps it.

Providers (the prefix of ``litellm_params.model``):

- ``ollama``: chat served by ``/api/generate`` (the messages become one prompt);
- ``ollama_chat``: chat served by ``/api/chat`` (messages, tools, images, thinking).

Both embed with ``/api/embed``. ``api_base`` (else ``$OLLAMA_API_BASE``, else
``http://localhost:11434``) is the server; ``api_key`` (else ``$OLLAMA_API_KEY``), when set, goes
as ``Authorization: Bearer`` (ollama.com, or a server behind an authenticating proxy).
"""

from __future__ import annotations

from sidecar import Provider, hookimpl
from sidecar_ollama.provider import OllamaProvider

__version__ = "0.1.0"


@hookimpl
def sidecar_providers() -> list[Provider]:
    return [OllamaProvider("ollama"), OllamaProvider("ollama_chat")]

"""llm-sidecar: an OpenAI-compatible LLM gateway with pip-installable provider plugins.

Plugin authors need only what this module exports (docs/plugins.md lists it):

- the contract: ``hookimpl`` to mark hook implementations, ``Provider`` to subclass,
  ``ProviderCall`` for what a provider is handed (its ``session``: an ``HttpSession``), ``ProviderError`` (with its ``KINDS``) to raise,
  ``CAPABILITIES`` (and ``CAPABILITY_METHODS``, each one's Provider method) and ``NO_AMBIENT_CREDENTIALS``;
- the wire Structs a provider returns (``ChatCompletion``, ``ChatCompletionChunk``,
  ``EmbeddingResponse``...; from :mod:`sidecar.wire`, :mod:`sidecar.wire_completions` and
  :mod:`sidecar.wire_media`);
- the upstream HTTP helpers (``post_json``, ``open_stream``, ``iter_sse_batches``,
  ``iter_ndjson_batches``, ``iter_bytes``, ``error_from_body``, ``connection_error``,
  ``timeout_for``; :mod:`sidecar.upstream`);
- for an upstream with its own wire format, ``translate_stream`` (its stream's events as OpenAI
  chunks, driving a ``StreamTranslator``), ``text_inputs`` (embeddings ``input`` as texts),
  ``message_text`` and ``tool_arguments`` (a message's text, a tool call's arguments decoded);
  :mod:`sidecar.translate`;
- ``ApiAccess`` (an upstream's API key and base URL from ``litellm_params`` or the environment,
  masked, as URL and headers) and ``join_url``; :mod:`sidecar.access`;
- the secret helpers (``is_secret_param``, ``secret_values``, ``scrub``; :mod:`sidecar.secrets`),
  the model catalog's ``catalog_lookup``, and small fixtures for offline answers and tests
  (``mock_images``, ``tiny_png``, ``silent_wav``);
- for the hooks beyond providers: ``CallEvent`` and ``PreCall`` (what they see), ``SidecarError``
  (to refuse a request) and ``public`` (a plugin route served without the master key); for a
  plugin's CLI command, ``config_database_path`` and ``ConfigError``.

Everything but the contract is imported on first use, so ``import sidecar`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

from sidecar.errors import KINDS, ProviderError
from sidecar.hookspecs import hookimpl
from sidecar.provider import (
    CAPABILITIES,
    CAPABILITY_METHODS,
    NO_AMBIENT_CREDENTIALS,
    HttpSession,
    Provider,
    ProviderCall,
)

__version__ = "0.1.0"

_LAZY: dict[str, tuple[str, str]] = {}
"""Exported name -> (module, its name there)."""
for _module, _names in {
    "sidecar.wire": (
        "ChatCompletion", "ChatCompletionChunk", "ChatCompletionRequest", "ChatMessage", "Choice", "ChunkChoice",
        "Delta", "Embedding", "EmbeddingRequest", "EmbeddingResponse", "EmbeddingUsage", "FunctionCall",
        "ModerationRequest", "ModerationResponse", "ModerationResult", "MODERATION_CATEGORIES",
        "OPENAI_CHAT_PARAMS", "OPENAI_EMBEDDING_PARAMS", "ResponseMessage", "ToolCall", "Usage", "raw_vector",
        "normalise_finish_reason",
    ),
    "sidecar.wire_completions": (
        "OPENAI_COMPLETION_PARAMS", "TextChoice", "TextChunkChoice", "TextCompletion", "TextCompletionChunk",
        "TextCompletionRequest", "prompts_of",
    ),
    "sidecar.wire_media": (
        "Image", "ImageGenerationRequest", "ImagesResponse", "RawAnswer", "SpeechRequest", "TranscriptionRequest",
        "TranscriptionResponse",
    ),
    "sidecar.upstream": (
        "ErrorParser", "connection_error", "error_from_body", "iter_bytes", "iter_ndjson_batches", "iter_sse_batches",
        "iter_sse_data", "iter_sse_payloads", "open_stream", "post_json", "timeout_for",
    ),
    "sidecar.translate": ("StreamTranslator", "message_text", "text_inputs", "tool_arguments", "translate_stream"),
    "sidecar.secrets": ("MASK", "is_secret_param", "scrub", "secret_values"),
    "sidecar.access": ("ApiAccess", "join_url"),
    "sidecar.events": ("CallEvent", "PreCall"),
    "sidecar.hooks": ("public",),
    "sidecar.appview": ("add_upstream_headers", "callback_enabled", "callback_settings", "config_database_path",
                        "database_path", "general_setting", "litellm_setting", "worker_count"),
    "sidecar.errors": ("SidecarError",),
    "sidecar.routing.choose": ("estimate_input_tokens",),
    "sidecar.config": ("ConfigError",),
    "sidecar.rerank": (
        "RerankBilledUnits", "RerankMeta", "RerankRequest", "RerankResponse", "RerankResult", "document_text",
        "with_documents",
    ),
}.items():
    _LAZY.update({name: (_module, name) for name in _names})
_LAZY["catalog_lookup"] = ("sidecar.catalog", "lookup")
_LAZY.update({"mock_images": ("sidecar.mocking", "images"), "silent_wav": ("sidecar.mocking", "silent_wav"),
              "tiny_png": ("sidecar.mocking", "tiny_png")})

__all__ = ["CAPABILITIES", "CAPABILITY_METHODS", "KINDS", "NO_AMBIENT_CREDENTIALS", "HttpSession", "Provider", "ProviderCall",
           "ProviderError",
           "hookimpl", "__version__", *sorted(_LAZY)]


def __getattr__(name: str) -> Any:
    """The lazily exported names (PEP 562): their module is imported on first use."""
    found = _LAZY.get(name)
    if found is None:
        raise AttributeError(f"module 'sidecar' has no attribute {name!r}")
    value = getattr(importlib.import_module(found[0]), found[1])
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)

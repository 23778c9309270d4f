"""Anthropic's Messages API (Claude) for llm-sidecar, translated as LiteLLM translates it.

Provider: ``anthropic/<model>``, ``POST {api_base}/v1/messages`` (``api_base`` else
``$ANTHROPIC_API_BASE`` else ``https://api.anthropic.com``), key ``api_key`` else
``$ANTHROPIC_API_KEY`` as ``x-api-key``, ``anthropic-version: 2023-06-01``, ``extra_headers``
(``anthropic-beta``...) passed on.

The translation is this plugin's public API, for other hosts of Claude (``azure_ai/claude-*``
in the openai plugin; Vertex AI later):

- :func:`build_request`: an OpenAI chat body as the Messages API body (and whether
  ``response_format`` became the JSON tool);
- :func:`completion_of`: a decoded :class:`Message` as a ChatCompletion;
- :class:`StreamState` / :func:`chunks_of`: a stream's events as OpenAI chunks;
- :func:`messages_chat`: all of it, for a call, a URL and headers;
- :func:`supported_params`: the OpenAI params a Claude model accepts.
"""

from __future__ import annotations

from sidecar import Provider, hookimpl
from sidecar_anthropic.answer import Message, completion_of, usage_of
from sidecar_anthropic.convert import API_VERSION, build_request
from sidecar_anthropic.errors import error_from_answer
from sidecar_anthropic.provider import AnthropicProvider, extra_headers, messages_chat, supported_params
from sidecar_anthropic.stream import StreamState, chunks_of

__version__ = "0.1.0"
__all__ = ["API_VERSION", "AnthropicProvider", "Message", "StreamState", "build_request", "chunks_of",
           "completion_of", "error_from_answer", "extra_headers", "messages_chat", "supported_params", "usage_of"]


@hookimpl
def sidecar_providers() -> list[Provider]:
    return [AnthropicProvider()]

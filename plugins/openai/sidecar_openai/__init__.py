"""OpenAI, Azure OpenAI and OpenAI-compatible servers for llm-sidecar.

Providers (the prefix of ``litellm_params.model``):

- ``openai``: api.openai.com, or any OpenAI-compatible server (vLLM, Ollama's ``/v1``, LM
  Studio, llama.cpp...) given by ``api_base``.
- ``azure``: Azure OpenAI deployment URLs, ``api_version``, ``api-key`` header.
- ``groq``, ``together_ai``, ``mistral``, ``deepseek``, ``openrouter``, ``fireworks_ai``, ``xai``,
  ``perplexity``, ``hosted_vllm``: OpenAI-compatible services with their default ``api_base``
  and API key variable, as in LiteLLM.
"""

from __future__ import annotations

from sidecar import hookimpl
from sidecar_openai.azure import AzureProvider
from sidecar_openai.compatible import COMPATIBLE, OpenAICompatibleProvider

__version__ = "0.1.0"


@hookimpl
def sidecar_providers() -> list[OpenAICompatibleProvider]:
    return [AzureProvider(), *(OpenAICompatibleProvider(spec) for spec in COMPATIBLE)]

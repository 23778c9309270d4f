"""OpenAI, Azure OpenAI and OpenAI-compatible servers for llm-sidecar.

Providers (the prefix of ``litellm_params.model``):

- ``openai``: api.openai.com, or any OpenAI-compatible server (vLLM, Ollama's ``/v1``, LM
  Studio, llama.cpp...) given by ``api_base``.
- ``azure``: Azure OpenAI deployment URLs, ``api_version``, ``api-key`` header.
- ``groq``, ``together_ai``, ``mistral``, ``deepseek``, ``openrouter``, ``fireworks_ai``, ``xai``,
  ``perplexity``, ``hosted_vllm``, ``cerebras``, ``deepinfra``, ``nvidia_nim``, ``lm_studio``,
  ``sambanova``: OpenAI-compatible services with their default ``api_base`` and API key
  variable, as in LiteLLM.
- ``azure_ai``: Azure AI Foundry's model inference API (``sidecar_openai.azure_ai``).
- ``text-completion-openai``: OpenAI's legacy ``/v1/completions`` (``sidecar_openai.text_completion``).
- ``voyage``: Voyage AI embeddings (``sidecar_openai.voyage``).
"""

from __future__ import annotations

from sidecar import Provider, hookimpl
from sidecar_openai.azure import AzureProvider
from sidecar_openai.azure_ai import AzureAIProvider
from sidecar_openai.compatible import COMPATIBLE, compatible_provider
from sidecar_openai.text_completion import TextCompletionProvider
from sidecar_openai.voyage import VoyageProvider

__version__ = "0.1.0"


@hookimpl
def sidecar_providers() -> list[Provider]:
    return [AzureProvider(), AzureAIProvider(), TextCompletionProvider(), VoyageProvider(),
            *(compatible_provider(spec) for spec in COMPATIBLE)]

"""``voyage/``: Voyage AI's embeddings (``POST https://api.voyageai.com/v1/embeddings``).

OpenAI's ``dimensions`` becomes Voyage's ``output_dimension`` and ``encoding_format: "base64"``
its ``encoding_format: "base64"`` (float32, as OpenAI's); ``"float"`` is Voyage's default and is
not sent. Voyage's own keys (``input_type``, ``truncation``, ``output_dtype``) pass through, from
the request or as ``litellm_params`` defaults. The answer is OpenAI's embedding list, with
``usage.total_tokens`` as ``prompt_tokens`` too. Keys: ``api_key``, else ``$VOYAGE_API_KEY``
(``$VOYAGE_AI_API_KEY``, ``$VOYAGE_AI_TOKEN``), as LiteLLM reads them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from sidecar import (
    ApiAccess,
    Embedding,
    EmbeddingResponse,
    EmbeddingUsage,
    Provider,
    ProviderCall,
    ProviderError,
    post_json,
    timeout_for,
)

DEFAULT_API_BASE = "https://api.voyageai.com/v1"
KEY_ENVS = ("VOYAGE_API_KEY", "VOYAGE_AI_API_KEY", "VOYAGE_AI_TOKEN")
ACCESS = ApiAccess("voyage", key_envs=KEY_ENVS, default_base=DEFAULT_API_BASE, endpoints=("/embeddings",))
VOYAGE_KEYS = ("input_type", "truncation", "output_dtype", "output_dimension")
"""Voyage's request keys besides ``input`` and ``model``: taken from the request or ``litellm_params``."""


class _Usage(msgspec.Struct):
    total_tokens: int = 0


class _Answer(msgspec.Struct):
    data: list[Embedding]
    model: str = ""
    usage: _Usage = msgspec.field(default_factory=_Usage)


_answer = msgspec.json.Decoder(_Answer)
_encode = msgspec.json.Encoder().encode


class VoyageProvider(Provider):
    name = "voyage"
    capabilities = frozenset({"embedding"})
    description = "Voyage AI embeddings"

    def supported_openai_params(self, model: str, capability: str | None = None) -> list[str]:
        return ["encoding_format", "dimensions"]

    def ambient_credentials(self, params: Mapping[str, Any]) -> list[str]:
        return ACCESS.ambient(params)

    def upstream_body(self, call: ProviderCall) -> dict[str, Any]:
        sent = call.body
        inputs = sent["input"]
        if not isinstance(inputs, str) and inputs and not isinstance(inputs[0], str):
            raise ProviderError(400, "voyage embeds text only: send `input` as a string or a list of strings",
                                param="input", code="invalid_input")
        body: dict[str, Any] = {"input": inputs, "model": call.model}
        for key in VOYAGE_KEYS:
            value = sent.get(key, call.params.get(key))
            if value is not None:
                body[key] = value
        if sent.get("dimensions") is not None:
            body["output_dimension"] = sent["dimensions"]
        if sent.get("encoding_format") == "base64":
            body["encoding_format"] = "base64"
        return body

    def url(self, params: Mapping[str, Any]) -> Any:
        """``api_base`` + ``/embeddings`` (not doubled), else Voyage's own URL."""
        return ACCESS.url(params, "/embeddings")

    async def embeddings(self, call: ProviderCall) -> EmbeddingResponse:
        answer = await post_json(call.session, self.url(call.params), _encode(self.upstream_body(call)),
                                 ACCESS.headers(call.params),
                                 timeout_for(call.params, False), _answer, self.name)
        tokens = answer.usage.total_tokens
        return EmbeddingResponse(data=answer.data, model=answer.model or call.model,
                                 usage=EmbeddingUsage(prompt_tokens=tokens, total_tokens=tokens))

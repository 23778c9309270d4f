"""``gemini/<model>``: the Gemini API (``generativelanguage.googleapis.com/v1beta``), signed in
with an API key in ``x-goog-api-key``: ``api_key``, else ``$GEMINI_API_KEY``, else
``$GOOGLE_API_KEY``. ``api_base`` replaces the host."""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import msgspec
import yarl

from sidecar import ApiAccess, EmbeddingResponse, ProviderCall, ProviderError, estimate_input_tokens, text_inputs
from sidecar_google.provider import GoogleProvider, parse_url

DEFAULT_API_BASE = "https://generativelanguage.googleapis.com"
KEY_ENVS = ("GEMINI_API_KEY", "GOOGLE_API_KEY")
ACCESS = ApiAccess("gemini", key_envs=KEY_ENVS, default_base=DEFAULT_API_BASE, key_header="x-goog-api-key",
                   key_prefix="", key_required=True)
VERSION = "v1beta"


class _Values(msgspec.Struct):
    values: list[float] = []


class _BatchEmbeddings(msgspec.Struct):
    embeddings: list[_Values] = []


_batch = msgspec.json.Decoder(_BatchEmbeddings)
_encode = msgspec.json.Encoder().encode


@lru_cache(maxsize=1024)
def model_url(base: str, model: str, method: str) -> yarl.URL:
    """``{base}/v1beta/models/{model}:{method}``; an ``api_base`` ending in ``/v1beta`` is not doubled."""
    root = parse_url(base).human_repr().rstrip("/").removesuffix(f"/{VERSION}")
    return yarl.URL(f"{root}/{VERSION}/models/{model.removeprefix('models/')}:{method}")


class GeminiProvider(GoogleProvider):
    name = "gemini"
    description = "Google's Gemini API (generateContent, batchEmbedContents)"

    def ambient_credentials(self, params: Mapping[str, Any]) -> list[str]:
        return ACCESS.ambient(params)

    def headers(self, params: Mapping[str, Any]) -> dict[str, str]:
        return ACCESS.headers(params)

    async def endpoint(self, call: ProviderCall, method: str) -> tuple[yarl.URL, dict[str, str]]:
        return model_url(str(ACCESS.base(call.params)), call.model, method), self.headers(call.params)

    async def embeddings(self, call: ProviderCall) -> EmbeddingResponse:
        texts = text_inputs(call.body, self.name)
        model = f"models/{call.model.removeprefix('models/')}"
        extra: dict[str, Any] = {}
        if call.body.get("dimensions") is not None:
            extra["outputDimensionality"] = call.body["dimensions"]
        task = call.body.get("task_type") or call.params.get("task_type")
        if task:
            extra["taskType"] = task
        body = {"requests": [{"model": model, "content": {"parts": [{"text": t}]}, **extra} for t in texts]}
        url, headers = await self.endpoint(call, "batchEmbedContents")
        answer = await self.post(call, url, _encode(body), headers, _batch)
        if len(answer.embeddings) != len(texts):
            raise ProviderError(502, f"gemini upstream answered {len(answer.embeddings)} embeddings for "
                                     f"{len(texts)} inputs", code="bad_upstream_response")
        # the API reports no tokens: the core's offline guess (at least one a text), as LiteLLM
        # counts them with its tokenizer, so limits and spend see these calls
        tokens = max(estimate_input_tokens({"input": texts}), sum(1 for t in texts if t))
        return self.embedding_response(call, [e.values for e in answer.embeddings], tokens)

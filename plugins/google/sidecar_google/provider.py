"""What the ``gemini`` and ``vertex_ai`` providers share: the chat and embedding flows over
Gemini's wire format, upstream errors in the router's kinds, per-model params."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

import aiohttp
import msgspec
import yarl

from sidecar import (
    ChatCompletion,
    ChatCompletionChunk,
    Embedding,
    EmbeddingResponse,
    EmbeddingUsage,
    Provider,
    ProviderCall,
    ProviderError,
    iter_sse_payloads,
    open_stream,
    post_json,
    raw_vector,
    timeout_for,
    translate_stream,
)
from sidecar_google.request import gemini_body, model_generation
from sidecar_google.response import GenerateContentResponse, StreamState, completion_of, error_from_response

CHAT_PARAMS = ["temperature", "top_p", "max_tokens", "max_completion_tokens", "stream", "stream_options", "tools",
               "tool_choice", "functions", "function_call", "parallel_tool_calls", "response_format", "n", "stop",
               "seed", "presence_penalty", "frequency_penalty"]
EMBEDDING_PARAMS = ["dimensions"]  # (encoding_format: base64 is the core's)

_answer = msgspec.json.Decoder(GenerateContentResponse)
_events = msgspec.json.Decoder(list[GenerateContentResponse])
_encode = msgspec.json.Encoder().encode


class GoogleProvider(Provider):
    """Gemini's ``generateContent`` protocol; subclasses say where it lives and how to sign in."""

    capabilities = frozenset({"chat", "embedding"})

    # ---------------------------------------------------------------- contract

    def supported_openai_params(self, model: str, capability: str | None = None) -> list[str]:
        if capability == "embedding" or (capability is None and self.is_embedding(model)):
            return list(EMBEDDING_PARAMS)
        return CHAT_PARAMS + ["reasoning_effort"] if self.thinks(model) else list(CHAT_PARAMS)

    def catalog_info(self, model: str) -> dict[str, Any]:
        from sidecar import catalog_lookup

        return catalog_lookup(model, self.name) or {}

    def is_embedding(self, model: str) -> bool:
        mode = self.catalog_info(model).get("mode")
        if mode is not None:
            return mode == "embedding"
        return "embedding" in model or model.startswith("textembedding")

    def thinks(self, model: str) -> bool:
        """Whether ``model`` takes a thinking config: the catalog says, else Gemini 2.5 and later do."""
        known = self.catalog_info(model).get("supports_reasoning")
        return bool(known) if known is not None else model_generation(model) >= 2.5

    async def endpoint(self, call: ProviderCall, method: str) -> tuple[yarl.URL, dict[str, str]]:
        """The URL of ``method`` (``generateContent``...) for ``call.model`` and the headers."""
        raise NotImplementedError

    # ---------------------------------------------------------------- chat

    async def chat(self, call: ProviderCall) -> ChatCompletion | AsyncIterator[list[ChatCompletionChunk]]:
        body = _encode(gemini_body(call.body, call.params, call.model))
        if not call.stream:
            url, headers = await self.endpoint(call, "generateContent")
            answer = await self.post(call, url, body, headers, _answer)
            return completion_of(answer, call.model, self.name)
        url, headers = await self.endpoint(call, "streamGenerateContent")
        resp = await self.open_stream(call, url.update_query(alt="sse"), body, headers)
        # An error event, or a block, before the first chunk raises from the first item (so the
        # router counts the call as failed); after it, the client gets the chunks so far and an
        # error event. Usage comes after the finishReason: the body is read to its end.
        state = StreamState(call.model, self.name)
        return translate_stream(iter_sse_payloads(resp, self.name), _events, state, self.name, "a finishReason",
                                read_past_end=True, tail=state.usage_chunks)

    # ---------------------------------------------------------------- embeddings

    def embedding_response(self, call: ProviderCall, vectors: list[list[float]], tokens: int) -> EmbeddingResponse:
        data = [Embedding(index=i, embedding=raw_vector(v)) for i, v in enumerate(vectors)]
        return EmbeddingResponse(data=data, model=call.model,
                                 usage=EmbeddingUsage(prompt_tokens=tokens, total_tokens=tokens))

    # ---------------------------------------------------------------- HTTP

    async def post(self, call: ProviderCall, url: yarl.URL, body: bytes, headers: Mapping[str, str],
                   decoder: msgspec.json.Decoder) -> Any:
        """POST and decode a 2xx answer; Google's errors in the router's kinds."""
        return await post_json(call.session, url, body, headers, timeout_for(call.params, False), decoder, self.name,
                               parse_error=error_from_response)

    async def open_stream(self, call: ProviderCall, url: yarl.URL, body: bytes,
                          headers: Mapping[str, str]) -> aiohttp.ClientResponse:
        """POST a streaming request; the open response once the upstream said 2xx."""
        return await open_stream(call.session, url, body, headers, timeout_for(call.params, True), self.name,
                                 parse_error=error_from_response)


def parse_url(text: str, param: str = "api_base") -> yarl.URL:
    try:
        url = yarl.URL(text)
        url.port  # noqa: B018 - a port out of range raises here
    except (ValueError, TypeError):
        url = None
    if url is None or not url.host or url.scheme not in ("http", "https"):
        raise ProviderError(400, f"litellm_params.{param} is not a valid URL", param=param, code="invalid_api_base")
    return url

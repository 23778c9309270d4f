"""What the ``gemini`` and ``vertex_ai`` providers share: the chat and embedding flows over
Gemini's wire format, upstream errors in the router's kinds, per-model params."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from contextlib import aclosing
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
    connection_error,
    iter_sse_payloads,
    raw_vector,
    timeout_for,
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
        return self._chunks(resp, StreamState(call.model, self.name))

    async def _chunks(self, resp: aiohttp.ClientResponse, state: StreamState) -> AsyncIterator[list[ChatCompletionChunk]]:
        """The stream's chunks, one list per network read. An error event, or a block, before the
        first chunk raises from the first item (so the router counts the call as failed); after
        it, the client gets the chunks so far and an error event."""
        async with aclosing(iter_sse_payloads(resp, self.name)) as batches:
            async for raw in batches:
                try:
                    events = _events.decode(b"[" + b",".join(raw) + b"]")
                except (msgspec.DecodeError, RecursionError) as exc:
                    raise ProviderError(502, f"{self.name} upstream sent an event that is not valid: {exc}",
                                        code="bad_upstream_response") from None
                out: list[ChatCompletionChunk] = []
                for event in events:
                    try:
                        out += state.chunks(event)
                    except ProviderError:
                        if out:
                            yield out
                        raise
                if out:
                    yield out
        if not state.finished:
            raise ProviderError(502, f"{self.name} upstream ended the stream before a finishReason",
                                code="upstream_disconnected")
        yield [state.usage_chunk()]

    # ---------------------------------------------------------------- embeddings

    def embedding_texts(self, call: ProviderCall) -> list[str]:
        inputs = call.body["input"]
        if isinstance(inputs, str):
            return [inputs]
        if inputs and not isinstance(inputs[0], str):
            raise ProviderError(400, f"{self.name} embeds text only: send `input` as a string or a list of strings",
                                param="input", code="invalid_input")
        return list(inputs)

    def embedding_response(self, call: ProviderCall, vectors: list[list[float]], tokens: int) -> EmbeddingResponse:
        data = [Embedding(index=i, embedding=raw_vector(v)) for i, v in enumerate(vectors)]
        return EmbeddingResponse(data=data, model=call.model,
                                 usage=EmbeddingUsage(prompt_tokens=tokens, total_tokens=tokens))

    # ---------------------------------------------------------------- HTTP

    async def post(self, call: ProviderCall, url: yarl.URL, body: bytes, headers: Mapping[str, str],
                   decoder: msgspec.json.Decoder) -> Any:
        """POST and decode a 2xx answer; Google's errors in the router's kinds."""
        try:
            async with call.session.post(url, data=body, headers=headers,
                                         timeout=timeout_for(call.params, False)) as resp:
                data = await resp.read()
                if resp.status >= 400:
                    raise error_from_response(resp.status, data, self.name, resp.headers)
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            raise connection_error(exc, self.name) from None
        try:
            return decoder.decode(data)
        except (msgspec.DecodeError, RecursionError) as exc:
            raise ProviderError(502, f"{self.name} upstream sent an answer that is not valid: {exc}",
                                code="bad_upstream_response") from None

    async def open_stream(self, call: ProviderCall, url: yarl.URL, body: bytes,
                          headers: Mapping[str, str]) -> aiohttp.ClientResponse:
        """POST a streaming request; the open response once the upstream said 2xx."""
        try:
            resp = await call.session.post(url, data=body, headers=headers, timeout=timeout_for(call.params, True))
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            raise connection_error(exc, self.name) from None
        if resp.status >= 400:
            try:
                data = await resp.read()
            except (aiohttp.ClientError, asyncio.TimeoutError):
                data = b""
            finally:
                resp.release()
            raise error_from_response(resp.status, data, self.name, resp.headers)
        return resp


def parse_url(text: str, param: str = "api_base") -> yarl.URL:
    try:
        url = yarl.URL(text)
        url.port  # noqa: B018 - a port out of range raises here
    except (ValueError, TypeError):
        url = None
    if url is None or not url.host or url.scheme not in ("http", "https"):
        raise ProviderError(400, f"litellm_params.{param} is not a valid URL", param=param, code="invalid_api_base")
    return url

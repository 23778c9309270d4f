"""The ``cohere`` and ``cohere_chat`` providers: HTTP to Cohere's v2 API, answers in OpenAI's format
(chat, embeddings) and Cohere's (rerank)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Mapping
from contextlib import aclosing
from typing import Any, TypeVar

import aiohttp
import msgspec
import yarl

from sidecar import (
    ApiAccess,
    ChatCompletion,
    ChatCompletionChunk,
    Embedding,
    EmbeddingResponse,
    EmbeddingUsage,
    Provider,
    ProviderCall,
    ProviderError,
    RerankResponse,
    document_text,
    iter_sse_payloads,
    open_stream,
    post_json,
    timeout_for,
    with_documents,
)
from sidecar_cohere.convert import CHAT_PARAMS, EMBEDDING_PARAMS, CohereChat, chat_body, completion_of
from sidecar_cohere.stream import StreamState, events_decoder

DEFAULT_API_BASE = "https://api.cohere.com"
KEY_ENVS = ("COHERE_API_KEY", "CO_API_KEY")
_ENDPOINTS = ("/v2/chat", "/v2/embed", "/v2/rerank", "/v1/chat", "/v1/embed", "/v1/rerank", "/v2", "/v1")
ACCESS = ApiAccess("cohere", key_envs=KEY_ENVS, default_base=DEFAULT_API_BASE, endpoints=_ENDPOINTS)
INPUT_TYPE = "search_document"
"""``input_type`` when neither the request nor ``litellm_params`` gives one (as LiteLLM sends)."""
EMBED_KEYS = ("input_type", "truncate", "max_tokens", "priority")
T = TypeVar("T")


class _Meta(msgspec.Struct):
    billed_units: dict[str, float] | None = None


class _Embeddings(msgspec.Struct):
    """``/v2/embed``'s answer: one list of vectors per embedding type, passed on undecoded."""

    embeddings: dict[str, list[msgspec.Raw]]
    id: str = ""
    meta: _Meta | None = None


_chat = msgspec.json.Decoder(CohereChat)
_embeddings = msgspec.json.Decoder(_Embeddings)
_rerank = msgspec.json.Decoder(RerankResponse)
_encode = msgspec.json.Encoder().encode


class CohereProvider(Provider):
    """``cohere/<model>`` or ``cohere_chat/<model>``: Cohere's ``/v2/chat``, ``/v2/embed``, ``/v2/rerank``."""

    capabilities = frozenset({"chat", "embedding", "rerank"})

    def __init__(self, name: str) -> None:
        self.name = name
        self.description = "Cohere's v2 API: /v2/chat, /v2/embed, /v2/rerank"

    def supported_openai_params(self, model: str, capability: str | None = None) -> list[str]:
        from sidecar import catalog_lookup

        mode = capability or (catalog_lookup(model, self.name) or {}).get("mode")
        if mode == "embedding":
            return list(EMBEDDING_PARAMS)
        if mode == "chat":
            return list(CHAT_PARAMS)
        return CHAT_PARAMS + EMBEDDING_PARAMS  # unknown model: either endpoint

    # ---------------------------------------------------------------- connection

    def url(self, params: Mapping[str, Any], path: str) -> yarl.URL:
        """``api_base`` (a host; a path naming an endpoint or version is not repeated) + ``path``."""
        return ACCESS.url(params, path)

    def ambient_credentials(self, params: Mapping[str, Any]) -> list[str]:
        return ACCESS.ambient(params)

    def headers(self, params: Mapping[str, Any]) -> dict[str, str]:
        return ACCESS.headers(params, {"Accept": "application/json"})

    async def _post(self, call: ProviderCall, path: str, body: dict[str, Any], decoder: msgspec.json.Decoder) -> Any:
        return await _mapped(post_json(call.session, self.url(call.params, path), _encode(body),
                                       self.headers(call.params), timeout_for(call.params, False), decoder, self.name))

    # ---------------------------------------------------------------- chat

    async def chat(self, call: ProviderCall) -> ChatCompletion | AsyncIterator[list[ChatCompletionChunk]]:
        body = chat_body(call.model, call.body, call.params, call.stream)
        if not call.stream:
            return completion_of(await self._post(call, "/v2/chat", body, _chat), call.model, self.name)
        headers = {**self.headers(call.params), "Accept": "text/event-stream"}
        resp = await _mapped(open_stream(call.session, self.url(call.params, "/v2/chat"), _encode(body), headers,
                                         timeout_for(call.params, True), self.name))
        return self._chunks(resp, StreamState(call.model, self.name))

    async def _chunks(self, resp: aiohttp.ClientResponse, state: StreamState) -> AsyncIterator[list[ChatCompletionChunk]]:
        async with aclosing(iter_sse_payloads(resp, self.name)) as batches:
            async for payloads in batches:
                try:
                    events = events_decoder.decode(b"[" + b",".join(payloads) + b"]")
                except (msgspec.DecodeError, RecursionError) as exc:
                    raise ProviderError(502, f"{self.name} upstream sent an event that is not valid: {exc}",
                                        code="bad_upstream_response") from None
                out: list[ChatCompletionChunk] = []
                try:
                    for event in events:
                        out += state.chunks(event)
                        if state.done:
                            break
                except ProviderError:
                    if out:
                        yield out  # what came before the failure still reaches the client
                    raise
                if out:
                    yield out
                if state.done:
                    return
        raise ProviderError(502, f"{self.name} upstream ended the stream before message-end",
                            code="upstream_disconnected")

    # ---------------------------------------------------------------- embeddings

    async def embeddings(self, call: ProviderCall) -> EmbeddingResponse:
        sent = call.body
        texts = sent["input"]
        texts = [texts] if isinstance(texts, str) else texts
        if not all(isinstance(t, str) for t in texts):
            raise ProviderError(400, f"{self.name} embeds text only: send `input` as a string or a list of strings",
                                param="input", code="invalid_input")
        body: dict[str, Any] = {"model": call.model, "texts": texts, "embedding_types": ["float"]}
        for key in EMBED_KEYS:
            value = sent.get(key, call.params.get(key))
            if value is not None:
                body[key] = value
        body.setdefault("input_type", INPUT_TYPE)
        if sent.get("dimensions") is not None:
            body["output_dimension"] = sent["dimensions"]
        answer = await self._post(call, "/v2/embed", body, _embeddings)
        vectors = answer.embeddings.get("float")
        if vectors is None or len(vectors) != len(texts):
            raise ProviderError(502, f"{self.name} upstream answered without float embeddings for every text",
                                code="bad_upstream_response")
        tokens = int(((answer.meta.billed_units if answer.meta else None) or {}).get("input_tokens") or 0)
        return EmbeddingResponse(data=[Embedding(index=i, embedding=v) for i, v in enumerate(vectors)],
                                 model=call.model, usage=EmbeddingUsage(prompt_tokens=tokens, total_tokens=tokens))

    # ---------------------------------------------------------------- rerank

    async def rerank(self, call: ProviderCall) -> RerankResponse:
        """``/v2/rerank`` ranks strings: object documents go as ``field: value`` lines
        (``rank_fields`` only, when given); documents are returned by the core's helper."""
        req = call.request
        fields = req.rank_fields if isinstance(req.rank_fields, list) else None
        body: dict[str, Any] = {"model": call.model, "query": req.query,
                                "documents": [document_text(d, fields) for d in req.documents]}
        for key in ("top_n", "max_tokens_per_doc", "priority"):
            value = call.body.get(key, call.params.get(key) if key == "priority" else None)
            if value is not None:
                body[key] = value
        answer = await self._post(call, "/v2/rerank", body, _rerank)
        answer.results = with_documents(answer.results, req)
        return answer


async def _mapped(pending: Awaitable[T]) -> T:
    """Cohere's own statuses: 498 (an invalid token) is a 401."""
    try:
        return await pending
    except ProviderError as err:
        if err.upstream_status != 498:
            raise
        raise ProviderError(401, err.message, kind="auth", code="invalid_api_key") from None

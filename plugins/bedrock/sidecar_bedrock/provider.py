"""The ``bedrock`` provider: Converse / ConverseStream for chat, InvokeModel for embeddings."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Mapping
from contextlib import aclosing
from typing import Any

import aiohttp
import msgspec

from sidecar import (
    NO_AMBIENT_CREDENTIALS,
    ChatCompletion,
    ChatCompletionChunk,
    EmbeddingResponse,
    Provider,
    ProviderCall,
    ProviderError,
    timeout_for,
)
from sidecar_bedrock import embeddings, models
from sidecar_bedrock.answer import ConverseResponse, StreamEvent, StreamState, completion_of
from sidecar_bedrock.auth import Identity, Signer, ambient_keys
from sidecar_bedrock.convert import converse_request
from sidecar_bedrock.errors import PROVIDER
from sidecar_bedrock.transport import iter_events, open_stream, post

ENDPOINT_PARAMS = ("aws_bedrock_runtime_endpoint", "api_base")
ENDPOINT_ENV = "AWS_BEDROCK_RUNTIME_ENDPOINT"
_answer = msgspec.json.Decoder(ConverseResponse)
_events = msgspec.json.Decoder(list[StreamEvent])
_encode = msgspec.json.Encoder().encode
_JSON = {"Content-Type": "application/json"}
_INVOKE = {"Content-Type": "application/json", "Accept": "application/json"}


def _bad_answer(exc: Exception) -> ProviderError:
    return ProviderError(502, f"{PROVIDER} upstream sent an answer that is not valid: {exc}",
                         code="bad_upstream_response", kind="server")


class BedrockProvider(Provider):
    name = "bedrock"
    capabilities = frozenset({"chat", "embedding"})
    description = "Amazon Bedrock: Converse/ConverseStream chat, Titan and Cohere embeddings (SigV4)"

    def __init__(self) -> None:
        self.signer = Signer()  # (no event-loop objects until the first call)

    def supported_openai_params(self, model: str, capability: str | None = None) -> list[str]:
        return list(models.supported_params(model, capability))

    def ambient_credentials(self, params: Mapping[str, Any]) -> list[str]:
        found = ambient_keys(params)
        if not any(params.get(k) for k in ENDPOINT_PARAMS) and not params.get(NO_AMBIENT_CREDENTIALS):
            found += [v for v in (os.environ.get(ENDPOINT_ENV),) if v]
        return found

    # ---------------------------------------------------------------- connection

    def endpoint(self, params: Mapping[str, Any], identity: Identity) -> str:
        base = next((params[k] for k in ENDPOINT_PARAMS if params.get(k)), None)
        if base is None and not params.get(NO_AMBIENT_CREDENTIALS):
            base = os.environ.get(ENDPOINT_ENV)
        return str(base or f"https://bedrock-runtime.{identity.region}.amazonaws.com").rstrip("/")

    async def _signed(self, call: ProviderCall, action: str, body: bytes,
                      headers: dict[str, str]) -> tuple[str, dict[str, str]]:
        identity = await self.signer.identity(call.deployment_id, call.params)
        url = self.endpoint(call.params, identity) + models.model_path(call.model, action)
        return url, self.signer.headers(identity, url, body, dict(headers))

    # ---------------------------------------------------------------- chat

    async def chat(self, call: ProviderCall) -> ChatCompletion | AsyncIterator[list[ChatCompletionChunk]]:
        drop = bool(getattr(call.request, "drop_params", None) or call.params.get("drop_params"))
        request = converse_request(call.body, call.params, call.model, drop)
        body = _encode(request.body)
        action = "converse-stream" if call.stream else "converse"
        url, headers = await self._signed(call, action, body, _JSON)
        if not call.stream:
            data, _ = await post(call.session, url, body, headers, timeout_for(call.params, False))
            try:
                answer = _answer.decode(data)
            except (msgspec.DecodeError, RecursionError) as exc:
                raise _bad_answer(exc) from None
            return completion_of(answer, call.model, request.json_tool)
        resp = await open_stream(call.session, url, body, headers, timeout_for(call.params, True))
        return self._chunks(resp, StreamState(call.model, request.json_tool))

    async def _chunks(self, resp: aiohttp.ClientResponse, state: StreamState) -> AsyncIterator[list[ChatCompletionChunk]]:
        async with aclosing(iter_events(resp)) as batches:
            async for batch in batches:
                try:
                    events = _events.decode(b"[" + b",".join(payload for _, payload in batch) + b"]")
                except (msgspec.DecodeError, RecursionError) as exc:
                    raise _bad_answer(exc) from None
                out: list[ChatCompletionChunk] = []
                for (kind, _), event in zip(batch, events):
                    out += state.chunks(kind, event)
                if out:
                    yield out
        if not state.stopped:
            raise ProviderError(502, f"{PROVIDER} upstream ended the stream before messageStop",
                                code="upstream_disconnected", kind="server")

    # ---------------------------------------------------------------- embeddings

    async def embeddings(self, call: ProviderCall) -> EmbeddingResponse:
        timeout = timeout_for(call.params, False)
        if models.is_titan_embedding(call.model):
            answers = await asyncio.gather(*(self._invoke(call, body, timeout, embeddings.titan_answer)
                                             for body in embeddings.titan_bodies(call.body, call.params)))
            tokens = sum(a.inputTextTokenCount for a, _ in answers)
            return embeddings.response([a.embedding for a, _ in answers], call.model, tokens)
        if not models.base_model(call.model).startswith("cohere.embed"):
            raise ProviderError(400, f"bedrock embeds with Titan (amazon.titan-embed-*) and Cohere (cohere.embed-*) "
                                     f"models; {call.model!r} is neither", param="model", code="unsupported_model",
                                kind="bad_request")
        answer, headers = await self._invoke(call, embeddings.cohere_body(call.body, call.params), timeout,
                                             embeddings.cohere_answer)
        tokens = int(headers.get("X-Amzn-Bedrock-Input-Token-Count") or 0)
        return embeddings.response(embeddings.cohere_vectors(answer), call.model, tokens)

    async def _invoke(self, call: ProviderCall, body: bytes, timeout: aiohttp.ClientTimeout,
                      decoder: msgspec.json.Decoder) -> tuple[Any, Any]:
        url, headers = await self._signed(call, "invoke", body, _INVOKE)
        data, answer_headers = await post(call.session, url, body, headers, timeout)
        try:
            return decoder.decode(data), answer_headers
        except (msgspec.DecodeError, RecursionError) as exc:
            raise _bad_answer(exc) from None

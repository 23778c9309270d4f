"""The ``ollama`` and ``ollama_chat`` providers: HTTP to an Ollama server, answers in OpenAI's format."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import aclosing
from typing import Any

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
    error_from_body,
    iter_ndjson_batches,
    open_stream,
    post_json,
    raw_vector,
    timeout_for,
)
from sidecar_ollama.convert import (
    CHAT_PARAMS,
    TOOL_PARAMS,
    OllamaEmbeddings,
    OllamaLine,
    StreamState,
    chat_messages,
    completion_of,
    generate_prompt,
    request_fields,
)

DEFAULT_API_BASE = "http://localhost:11434"
_ENDPOINTS = ("/api/chat", "/api/generate", "/api/embed")
ACCESS = ApiAccess("ollama", key_envs=("OLLAMA_API_KEY",), base_envs=("OLLAMA_API_BASE",), default_base=DEFAULT_API_BASE,
                   endpoints=_ENDPOINTS)
_line = msgspec.json.Decoder(OllamaLine)
_lines = msgspec.json.Decoder(list[OllamaLine])
_embeddings = msgspec.json.Decoder(OllamaEmbeddings)
_encode = msgspec.json.Encoder().encode


class OllamaProvider(Provider):
    """``ollama/<model>`` (``/api/generate``) or ``ollama_chat/<model>`` (``/api/chat``)."""

    capabilities = frozenset({"chat", "embedding"})

    def __init__(self, name: str) -> None:
        self.name = name
        self.chat_api = name == "ollama_chat"
        self.description = f"Ollama's {'/api/chat' if self.chat_api else '/api/generate'} and /api/embed"

    def supported_openai_params(self, model: str, capability: str | None = None) -> list[str]:
        chat = CHAT_PARAMS + TOOL_PARAMS if self.chat_api else list(CHAT_PARAMS)
        if capability == "embedding":
            return ["dimensions"]  # (encoding_format: base64 is the core's)
        return chat if capability is not None else chat + ["dimensions"]

    # ---------------------------------------------------------------- connection

    def url(self, params: Mapping[str, Any], path: str) -> yarl.URL:
        """``api_base`` (one naming the endpoint itself, as LiteLLM allows, is not repeated) + ``path``."""
        return ACCESS.url(params, path)

    def ambient_credentials(self, params: Mapping[str, Any]) -> list[str]:
        return ACCESS.ambient(params)

    def headers(self, params: Mapping[str, Any]) -> dict[str, str]:
        return ACCESS.headers(params)

    # ---------------------------------------------------------------- chat

    def chat_body(self, call: ProviderCall) -> dict[str, Any]:
        top, options = request_fields(call.body, call.params)
        body: dict[str, Any] = {"model": call.model}
        messages = call.body["messages"]
        if self.chat_api:
            body["messages"] = chat_messages(messages)
            tools = call.body.get("tools")
            if tools and call.body.get("tool_choice") != "none":
                body["tools"] = tools  # (tool_choice itself is not Ollama's: LiteLLM drops it too)
        else:
            body["prompt"], images = generate_prompt(messages)
            if images:
                body["images"] = images
        body.update(top)
        if options:
            body["options"] = options
        body["stream"] = call.stream  # Ollama streams unless told not to
        return body

    async def chat(self, call: ProviderCall) -> ChatCompletion | AsyncIterator[list[ChatCompletionChunk]]:
        url = self.url(call.params, "/api/chat" if self.chat_api else "/api/generate")
        body = _encode(self.chat_body(call))
        headers = self.headers(call.params)
        if not call.stream:
            line = await post_json(call.session, url, body, headers, timeout_for(call.params, False), _line, self.name)
            if line.error:
                raise ProviderError(502, f"{self.name} upstream answered an error: {line.error}")
            return completion_of(line, call.model)
        resp = await open_stream(call.session, url, body, headers, timeout_for(call.params, True), self.name)
        return self._chunks(resp, StreamState(call.model))

    async def _chunks(self, resp: aiohttp.ClientResponse, state: StreamState) -> AsyncIterator[list[ChatCompletionChunk]]:
        async with aclosing(iter_ndjson_batches(resp, self.name)) as batches:
            async for raw in batches:
                try:
                    lines = _lines.decode(b"[" + b",".join(raw) + b"]")
                except (msgspec.DecodeError, RecursionError) as exc:
                    raise ProviderError(502, f"{self.name} upstream sent a line that is not valid JSON: {exc}",
                                        code="bad_upstream_response") from None
                out: list[ChatCompletionChunk] = []
                for i, line in enumerate(lines):
                    if line.error:
                        if out:
                            yield out  # what came before the error still reaches the client
                        raise error_from_body(500, raw[i], self.name)
                    out += state.chunks(line)
                    if line.done:
                        break
                if out:
                    yield out
                if state.done:
                    return
        raise ProviderError(502, f"{self.name} upstream ended the stream before done: true",
                            code="upstream_disconnected")

    # ---------------------------------------------------------------- embeddings

    async def embeddings(self, call: ProviderCall) -> EmbeddingResponse:
        inputs = call.body["input"]
        if not isinstance(inputs, str) and inputs and not isinstance(inputs[0], str):
            raise ProviderError(400, f"{self.name} embeds text only: send `input` as a string or a list of strings",
                                param="input", code="invalid_input")
        top, options = request_fields(call.body, call.params)
        body: dict[str, Any] = {"model": call.model, "input": inputs}
        body.update({k: v for k, v in top.items() if k in ("keep_alive", "truncate")})
        if call.body.get("dimensions") is not None:
            body["dimensions"] = call.body["dimensions"]
        if options:
            body["options"] = options
        answer = await post_json(call.session, self.url(call.params, "/api/embed"), _encode(body),
                                 self.headers(call.params), timeout_for(call.params, False), _embeddings, self.name)
        data = [Embedding(index=i, embedding=raw_vector(v)) for i, v in enumerate(answer.embeddings)]
        tokens = answer.prompt_eval_count
        return EmbeddingResponse(data=data, model=answer.model or call.model,
                                 usage=EmbeddingUsage(prompt_tokens=tokens, total_tokens=tokens))

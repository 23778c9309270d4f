"""The mock provider's behaviour; see the package docstring."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from typing import Any

import msgspec

from sidecar import (
    MODERATION_CATEGORIES,
    OPENAI_CHAT_PARAMS,
    OPENAI_COMPLETION_PARAMS,
    OPENAI_EMBEDDING_PARAMS,
    ChatCompletion,
    ChatCompletionChunk,
    Choice,
    ChunkChoice,
    Delta,
    Embedding,
    EmbeddingResponse,
    EmbeddingUsage,
    FunctionCall,
    ModerationResponse,
    ModerationResult,
    Provider,
    ProviderCall,
    ProviderError,
    RerankBilledUnits,
    RerankMeta,
    RerankResponse,
    RerankResult,
    ResponseMessage,
    ToolCall,
    Usage,
    document_text,
    raw_vector,
    with_documents,
)
from sidecar_mock.media import MockMediaMixin

FLAG_WORDS = {
    "violence": ("kill", "attack", "shoot", "murder"),
    "hate": ("hate",),
    "harassment": ("idiot", "stupid"),
    "self-harm": ("suicide",),
    "sexual": ("explicit",),
    "illicit": ("steal", "drugs"),
}
DEFAULT_DIMENSIONS = 1536
MAX_DIMENSIONS = 16384
MAX_N = 128


def _words(text: str) -> list[str]:
    return text.split()


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(part.get("text", "") for part in content if isinstance(part, dict))
    return ""


_PARAMS = {"chat": OPENAI_CHAT_PARAMS, "embedding": OPENAI_EMBEDDING_PARAMS - {"encoding_format"},
           "completion": OPENAI_COMPLETION_PARAMS}
"""The params of each capability (``encoding_format``: base64 is the core's)."""


class MockProvider(MockMediaMixin, Provider):
    name = "mock"
    capabilities = frozenset({"chat", "completion", "embedding", "moderation", "image_generation", "audio_speech",
                              "audio_transcription", "rerank"})
    description = "offline deterministic answers"

    def supported_openai_params(self, model: str, capability: str | None = None) -> list[str]:
        """Every OpenAI param of the capability (of all of them, asked without one)."""
        if capability is None:
            return sorted(OPENAI_CHAT_PARAMS | OPENAI_EMBEDDING_PARAMS | OPENAI_COMPLETION_PARAMS)
        return sorted(_PARAMS.get(capability, ()))

    # ------------------------------------------------------------ chat

    async def chat(self, call: ProviderCall) -> ChatCompletion | AsyncIterator[ChatCompletionChunk]:
        req = call.request
        await self._delay(call)
        messages = req.messages
        prompt_tokens = sum(len(_words(_text_of(m.content))) for m in messages)
        if isinstance(req.n, int) and not 1 <= req.n <= MAX_N:
            raise ProviderError(400, f"n must be between 1 and {MAX_N}", param="n", code="invalid_value")
        n = req.n if isinstance(req.n, int) else 1
        tool_call = self._tool_call(req)
        text, finish = (None, "tool_calls") if tool_call else self._reply(req)
        completion_tokens = len(_words(text or "")) if not tool_call else len(_words(tool_call.function.arguments or ""))
        usage = Usage(prompt_tokens, completion_tokens * n, prompt_tokens + completion_tokens * n)
        reply_id = "chatcmpl-mock-" + hashlib.sha256(repr((call.model, text, prompt_tokens)).encode()).hexdigest()[:24]
        if call.stream:
            return self._stream(call, reply_id, text, tool_call, finish, n, usage)
        choices = [
            Choice(index=i, message=ResponseMessage(content=text, tool_calls=[tool_call] if tool_call else None),
                   finish_reason=finish)
            for i in range(n)
        ]
        return ChatCompletion(id=reply_id, choices=choices, model=call.model, usage=usage)

    async def _stream(self, call: ProviderCall, reply_id: str, text: str | None, tool_call: ToolCall | None,
                      finish: str, n: int, usage: Usage) -> AsyncIterator[ChatCompletionChunk]:
        def chunk(delta: Delta, index: int, finish_reason: str | None = None) -> ChatCompletionChunk:
            return ChatCompletionChunk(id=reply_id, model=call.model,
                                       choices=[ChunkChoice(index=index, delta=delta, finish_reason=finish_reason)])

        for i in range(n):
            yield chunk(Delta(role="assistant", content=""), i)
            if tool_call:
                yield chunk(Delta(tool_calls=[{
                    "index": 0, "id": tool_call.id, "type": "function",
                    "function": {"name": tool_call.function.name, "arguments": tool_call.function.arguments},
                }]), i)
            else:
                words = (text or "").split(" ")
                for w, word in enumerate(words):
                    await self._delay(call)
                    yield chunk(Delta(content=word if w == len(words) - 1 else word + " "), i)
            yield chunk(Delta(), i, finish)
        yield ChatCompletionChunk(id=reply_id, model=call.model, choices=[], usage=usage)  # (the core drops it unasked)

    def _reply(self, req: Any) -> tuple[str, str]:
        last = next((m for m in reversed(req.messages) if m.role in ("user", "tool")), req.messages[-1])
        said = _text_of(last.content)
        text = f"Mock reply to: {said}" if last.role == "user" else f"Mock summary of the tool result: {said}"
        fmt = req.response_format if isinstance(req.response_format, dict) else {}
        if fmt.get("type") in ("json_object", "json_schema"):
            spec = fmt.get("json_schema")
            schema = (spec.get("schema") if isinstance(spec, dict) else None) or {}
            text = msgspec.json.encode(_example(schema, said) if schema else {"reply": text}).decode()
        finish = "stop"
        stops = req.stop if isinstance(req.stop, list) else [req.stop] if isinstance(req.stop, str) else []
        for stop in stops:
            if stop and stop in text:
                text = text[: text.index(stop)]
        limit = next((v for v in (req.max_completion_tokens, req.max_tokens) if isinstance(v, int)), None)
        if limit is not None and limit < 1:
            name = "max_completion_tokens" if isinstance(req.max_completion_tokens, int) else "max_tokens"
            raise ProviderError(400, f"`{name}` must be at least 1", param=name, code="invalid_value")
        if limit is not None and len(_words(text)) > limit:
            text, finish = " ".join(_words(text)[:limit]), "length"
        return text, finish

    def _tool_call(self, req: Any) -> ToolCall | None:
        tools = req.tools if isinstance(req.tools, list) else []
        choice = req.tool_choice
        if not tools or choice == "none" or req.messages[-1].role == "tool":
            return None
        functions = []
        for i, tool in enumerate(tools):
            fn = tool.get("function")
            if tool.get("type", "function") != "function":
                continue
            if not isinstance(fn, dict) or not isinstance(fn.get("parameters", {}), dict | None):
                at = f"tools[{i}].function" + ("" if not isinstance(fn, dict) else ".parameters")
                raise ProviderError(400, f"`{at}` must be an object", param=at, code="invalid_value")
            functions.append(fn)
        picked = choice.get("function") if isinstance(choice, dict) else None
        wanted = picked.get("name") if isinstance(picked, dict) else None
        fn = next((f for f in functions if f.get("name") == wanted), functions[0] if functions else None)
        if not fn or not fn.get("name"):
            return None
        said = _text_of(req.messages[-1].content)
        args = _example(fn.get("parameters") or {}, said)
        call_id = "call_" + hashlib.sha256(f"{fn['name']}:{said}".encode()).hexdigest()[:24]
        return ToolCall(id=call_id, function=FunctionCall(name=fn["name"], arguments=msgspec.json.encode(args).decode()))

    async def _delay(self, call: ProviderCall) -> None:
        delay = call.body.get("mock_delay", call.params.get("mock_delay"))
        if isinstance(delay, int | float) and delay > 0:
            await asyncio.sleep(float(delay))

    async def list_models(self, params: Any, session: Any) -> list[str]:
        """The mock serves any name; these are the ones it advertises to ``sidecar sync``."""
        return ["mock-chat", "mock-embedding", "mock-moderation", "mock-rerank"]

    # ------------------------------------------------------------ embeddings

    async def embeddings(self, call: ProviderCall) -> EmbeddingResponse:
        req = call.request
        await self._delay(call)
        dims = req.dimensions if isinstance(req.dimensions, int) else int(call.params.get("dimensions", DEFAULT_DIMENSIONS))
        if not 1 <= dims <= MAX_DIMENSIONS:
            raise ProviderError(400, f"dimensions must be between 1 and {MAX_DIMENSIONS}", param="dimensions",
                                code="invalid_value")
        items = [req.input] if isinstance(req.input, str) or (req.input and isinstance(req.input[0], int)) else req.input
        data, tokens = [], 0
        for i, item in enumerate(items):
            text = item if isinstance(item, str) else " ".join(map(str, item))
            tokens += len(item) if isinstance(item, list) else len(_words(item))
            vector = _unit_vector(text, dims)
            data.append(Embedding(index=i, embedding=raw_vector(vector)))
        return EmbeddingResponse(data=data, model=call.model, usage=EmbeddingUsage(tokens, tokens))

    # ------------------------------------------------------------ moderations

    async def moderations(self, call: ProviderCall) -> ModerationResponse:
        req = call.request
        items = [req.input] if isinstance(req.input, str) else req.input
        results = []
        for item in items:
            text = item if isinstance(item, str) else _text_of([item])
            words = set(_words(text.lower()))
            scores = {c: 0.99 if "/" not in c and words.intersection(FLAG_WORDS.get(c, ())) else 0.0001
                      for c in MODERATION_CATEGORIES}
            flags: dict[str, bool | None] = {c: s > 0.5 for c, s in scores.items()}
            results.append(ModerationResult(flagged=any(flags.values()), categories=flags, category_scores=scores))
        digest = hashlib.sha256(repr(items).encode()).hexdigest()[:24]
        return ModerationResponse(id=f"modr-mock-{digest}", model=call.model, results=results)

    # ------------------------------------------------------------ rerank

    async def rerank(self, call: ProviderCall) -> RerankResponse:
        """Scores by word overlap: the share of the query's words a document holds (ties keep
        the documents' order); one search unit per 100 documents, as Cohere bills."""
        req = call.request
        await self._delay(call)
        fields = req.rank_fields if isinstance(req.rank_fields, list) else None
        query = set(_words(req.query.lower()))
        scored = []
        for i, doc in enumerate(req.documents):
            words = set(_words(document_text(doc, fields).lower()))
            scored.append((round(len(query & words) / len(query), 6) if query else 0.0, i))
        scored.sort(key=lambda s: (-s[0], s[1]))
        top_n = req.top_n if isinstance(req.top_n, int) else len(scored)
        results = [RerankResult(index=i, relevance_score=score) for score, i in scored[:top_n]]
        digest = hashlib.sha256(repr((call.model, req.query, req.documents)).encode()).hexdigest()[:24]
        units = (len(req.documents) + 99) // 100
        return RerankResponse(id=f"rerank-mock-{digest}", results=with_documents(results, req),
                              meta=RerankMeta(billed_units=RerankBilledUnits(search_units=units)))


def _unit_vector(text: str, dims: int) -> list[float]:
    """A deterministic unit vector for ``text``: hash-seeded, so equal texts embed equally."""
    out: list[float] = []
    counter = 0
    while len(out) < dims:
        block = hashlib.sha256(f"{counter}:{text}".encode()).digest()
        out.extend((b - 127.5) / 127.5 for b in block)
        counter += 1
    out = out[:dims]
    norm = sum(v * v for v in out) ** 0.5 or 1.0
    return [round(v / norm, 6) for v in out]


def _example(schema: dict[str, Any], said: str) -> Any:
    """A value matching a JSON schema (type-driven), with ``said`` for strings."""
    if not isinstance(schema, dict):
        return said
    kind = schema.get("type")
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][0]
    if kind == "object" or "properties" in schema:
        props = schema.get("properties") if isinstance(schema.get("properties"), dict) else {}
        required = schema.get("required") if isinstance(schema.get("required"), list) else list(props)
        return {k: _example(props.get(k) or {}, said) for k in required}
    if kind == "array":
        return [_example(schema.get("items") or {}, said)]
    if kind == "integer":
        return 1
    if kind == "number":
        return 1.0
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return said

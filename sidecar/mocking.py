"""``mock_response`` (LiteLLM's): the core answers a request itself, for any deployment, without
calling its upstream. A text is the reply (chat and text completions, plain or streamed word by
word, with usage; a transcription's text); a LiteLLM exception name (``"litellm.RateLimitError"``)
or ``{"error": {"message", "status"|"code", "type"}}`` raises that failure, which the router
treats as the deployment's own (retries, cooldowns, fallbacks). ``mock_delay`` (seconds) waits
before answering and between stream chunks. The body's ``mock_response`` wins over the
deployment's ``litellm_params.mock_response``.

Also the made-up media both this module and the ``mock`` plugin answer with: a tiny PNG and a
short WAV of silence, each deterministic.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import struct
import zlib
from collections.abc import AsyncIterator, Mapping
from typing import Any

import msgspec

from sidecar.errors import ProviderError
from sidecar.provider import ProviderCall
from sidecar.wire import (
    ChatCompletion,
    ChatCompletionChunk,
    Choice,
    ChunkChoice,
    Delta,
    Embedding,
    EmbeddingResponse,
    EmbeddingUsage,
    ModerationResponse,
    ModerationResult,
    ResponseMessage,
    Usage,
    raw_vector,
)
from sidecar.wire_completions import TextChoice, TextChunkChoice, TextCompletion, TextCompletionChunk, prompts_of
from sidecar.wire_media import Image, ImagesResponse, RawAnswer, TranscriptionResponse

LITELLM_ERRORS = {
    "BadRequestError": 400, "ContextWindowExceededError": 400, "ContentPolicyViolationError": 400,
    "UnsupportedParamsError": 400, "AuthenticationError": 401, "PermissionDeniedError": 403,
    "NotFoundError": 404, "UnprocessableEntityError": 422, "RateLimitError": 429,
    "InternalServerError": 500, "APIError": 500, "APIConnectionError": 500,
    "ServiceUnavailableError": 503, "Timeout": 504,
}
"""LiteLLM exception names accepted as ``mock_response``, and the status each stands for."""
_KINDS = {"ContextWindowExceededError": "context_window", "ContentPolicyViolationError": "content_policy"}
DEFAULT_DIMENSIONS = 1536


def requested(body: Mapping[str, Any], params: Mapping[str, Any]) -> Any:
    """The ``mock_response`` asked for (the body's, else the deployment's); None when neither."""
    value = body.get("mock_response")
    return params.get("mock_response") if value is None else value


def error_for(value: Any) -> ProviderError | None:
    """The failure a ``mock_response`` names, if it names one."""
    if isinstance(value, dict) and isinstance(value.get("error"), dict):
        err = value["error"]
        status = err.get("status") or err.get("code")
        return ProviderError(int(status) if str(status).isdigit() else 500, str(err.get("message") or "mock error"),
                             code=str(err.get("type") or "mock_error"))
    if isinstance(value, str) and value.startswith("litellm."):
        name = value.split(".", 1)[1]
        if name in LITELLM_ERRORS:
            return ProviderError(LITELLM_ERRORS[name], f"mock_response asked for litellm.{name}",
                                 code="mock_" + name, kind=_KINDS.get(name))
    return None


def as_text(value: Any) -> str:
    return value if isinstance(value, str) else msgspec.json.encode(value).decode()


def text_of(content: Any) -> str:
    """A message's text (the text parts of a multi-part content)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(part.get("text", "") for part in content if isinstance(part, dict))
    return ""


def words(text: str) -> int:
    return len(text.split())


async def delay(call: ProviderCall, body: Mapping[str, Any]) -> None:
    """``mock_delay`` seconds (the body's, else the deployment's)."""
    seconds = body.get("mock_delay", call.params.get("mock_delay"))
    if isinstance(seconds, int | float) and not isinstance(seconds, bool) and seconds > 0:
        await asyncio.sleep(float(seconds))


def _id(prefix: str, *parts: Any) -> str:
    return prefix + hashlib.sha256(repr(parts).encode()).hexdigest()[:24]


async def answer(method: str, value: Any, body: Mapping[str, Any], call: ProviderCall) -> Any:
    """The made-up answer to ``call`` for the provider method ``method``."""
    await delay(call, body)
    failure = error_for(value)
    if failure is not None:
        raise failure
    build = _BUILDERS.get(method)
    if build is None:
        raise ProviderError(400, f"mock_response is not supported on this endpoint ({method})",
                            param="mock_response", code="invalid_value")
    return await build(value, body, call)


# ---------------------------------------------------------------- chat and text completions


def _stream_words(text: str) -> list[str]:
    pieces = text.split(" ")
    return [p if i == len(pieces) - 1 else p + " " for i, p in enumerate(pieces)]


async def _chat(value: Any, body: Mapping[str, Any], call: ProviderCall) -> Any:
    text = as_text(value)
    prompt = sum(words(text_of(m.get("content"))) for m in body.get("messages") or [] if isinstance(m, dict))
    usage = Usage(prompt, words(text), prompt + words(text))
    reply_id = _id("chatcmpl-mock-", call.model, text)
    if not call.stream:
        return ChatCompletion(id=reply_id, model=call.model, usage=usage,
                              choices=[Choice(index=0, message=ResponseMessage(content=text), finish_reason="stop")])
    return _chat_stream(call, body, reply_id, text, usage)


async def _chat_stream(call: ProviderCall, body: Mapping[str, Any], reply_id: str, text: str,
                       usage: Usage) -> AsyncIterator[ChatCompletionChunk]:
    def chunk(delta: Delta, finish: str | None = None) -> ChatCompletionChunk:
        return ChatCompletionChunk(id=reply_id, model=call.model,
                                   choices=[ChunkChoice(index=0, delta=delta, finish_reason=finish)])

    yield chunk(Delta(role="assistant", content=""))
    for piece in _stream_words(text):
        await delay(call, body)
        yield chunk(Delta(content=piece))
    yield chunk(Delta(), "stop")
    yield ChatCompletionChunk(id=reply_id, model=call.model, choices=[], usage=usage)  # (dropped unasked: sidecar.sse)


async def _text_completion(value: Any, body: Mapping[str, Any], call: ProviderCall) -> Any:
    text = as_text(value)
    prompt = sum(words(p) for p in prompts_of(body.get("prompt")))
    usage = Usage(prompt, words(text), prompt + words(text))
    reply_id = _id("cmpl-mock-", call.model, text)
    if not call.stream:
        return TextCompletion(id=reply_id, model=call.model, usage=usage,
                              choices=[TextChoice(index=0, text=text, finish_reason="stop")])
    return _text_stream(call, body, reply_id, text, usage)


async def _text_stream(call: ProviderCall, body: Mapping[str, Any], reply_id: str, text: str,
                       usage: Usage) -> AsyncIterator[TextCompletionChunk]:
    pieces = _stream_words(text)
    for i, piece in enumerate(pieces):
        if i:
            await delay(call, body)
        last = i == len(pieces) - 1
        yield TextCompletionChunk(id=reply_id, model=call.model, choices=[
            TextChunkChoice(index=0, text=piece, finish_reason="stop" if last else None)])
    yield TextCompletionChunk(id=reply_id, model=call.model, choices=[], usage=usage)  # (dropped unasked: sidecar.sse)


# ---------------------------------------------------------------- embeddings, moderations


async def _embeddings(value: Any, body: Mapping[str, Any], call: ProviderCall) -> EmbeddingResponse:
    """A list of numbers is every input's vector; anything else, zeros of ``dimensions``."""
    items = body.get("input")
    items = [items] if isinstance(items, str) or (items and isinstance(items[0], int)) else list(items or [""])
    if isinstance(value, list) and value and all(isinstance(v, int | float) for v in value):
        vector = [float(v) for v in value]
    else:
        dims = body.get("dimensions") or call.params.get("dimensions") or DEFAULT_DIMENSIONS
        vector = [0.0] * int(dims)
    tokens = sum(len(i) if isinstance(i, list) else words(str(i)) for i in items)
    return EmbeddingResponse(data=[Embedding(index=i, embedding=raw_vector(vector)) for i in range(len(items))],
                             model=call.model, usage=EmbeddingUsage(tokens, tokens))


async def _moderations(value: Any, body: Mapping[str, Any], call: ProviderCall) -> ModerationResponse:
    """Nothing flagged, for every input."""
    items = body.get("input")
    count = len(items) if isinstance(items, list) else 1
    results = [ModerationResult(flagged=False, categories={}, category_scores={}) for _ in range(count)]
    return ModerationResponse(id=_id("modr-mock-", items), model=call.model, results=results)


# ---------------------------------------------------------------- images and audio


def tiny_png(seed: str = "", size: int = 2) -> bytes:
    """A ``size`` x ``size`` PNG of one colour taken from ``seed`` (deterministic)."""
    colour = hashlib.sha256(seed.encode()).digest()[:3]
    rows = b"".join(b"\x00" + colour * size for _ in range(size))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)  # 8-bit RGB
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def silent_wav(seconds: float = 0.25, rate: int = 8000) -> bytes:
    """A mono 16-bit PCM WAV of silence."""
    data = b"\x00\x00" * int(seconds * rate)
    return (b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVE"
            + b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16)
            + b"data" + struct.pack("<I", len(data)) + data)


def images(prompt: str, n: int, response_format: Any) -> ImagesResponse:
    """``n`` tiny PNGs of ``prompt``: base64 in ``b64_json``, or data URLs (``response_format: url``)."""
    data = []
    for i in range(n):
        png = base64.b64encode(tiny_png(f"{prompt}:{i}")).decode()
        data.append(Image(url=f"data:image/png;base64,{png}") if response_format == "url" else Image(b64_json=png))
    return ImagesResponse(data=data)


async def _images(value: Any, body: Mapping[str, Any], call: ProviderCall) -> ImagesResponse:
    n = body.get("n") if isinstance(body.get("n"), int) else 1
    return images(as_text(value), n, body.get("response_format"))


async def _one(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def _speech(value: Any, body: Mapping[str, Any], call: ProviderCall) -> RawAnswer:
    return RawAnswer("audio/wav", _one(silent_wav()))


async def _transcription(value: Any, body: Mapping[str, Any], call: ProviderCall) -> Any:
    if call.upload is not None:
        await call.upload.drain()
    text = as_text(value)
    if body.get("response_format") in ("text", "srt", "vtt"):
        return RawAnswer("text/plain; charset=utf-8", _one(text.encode()))
    return TranscriptionResponse(text=text, usage={"type": "duration", "seconds": 0})


_BUILDERS = {
    "chat": _chat, "text_completion": _text_completion, "embeddings": _embeddings, "moderations": _moderations,
    "image_generation": _images, "speech": _speech, "transcription": _transcription,
}

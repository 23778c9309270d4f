"""OpenAI's endpoints, one mixin per capability, spoken to OpenAI or a compatible server: chat and
text completions decoded and normalised; speech audio, transcriptions and image streams relayed
byte for byte (:class:`~sidecar.wire_media.RawAnswer`); a transcription's file streamed upstream
as the client sends it. A provider mixes in those of the capabilities it declares
(:func:`with_endpoints`)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import aclosing
from functools import lru_cache
from typing import Any

import aiohttp
import msgspec

from sidecar import (
    ChatCompletion,
    ChatCompletionChunk,
    ChunkChoice,
    Delta,
    EmbeddingResponse,
    ImagesResponse,
    ModerationResponse,
    ProviderCall,
    ProviderError,
    RawAnswer,
    TextCompletion,
    TextCompletionChunk,
    connection_error,
    iter_sse_batches,
    open_stream,
    post_json,
    timeout_for,
)

TEXT_COMPLETION_ONLY_PARAMS = ["best_of", "echo", "suffix"]
"""Completion params beyond the chat ones (a provider with ``completion`` accepts them)."""

_chat = msgspec.json.Decoder(ChatCompletion)
_chunk = msgspec.json.Decoder(ChatCompletionChunk)
_chunk_list = msgspec.json.Decoder(list[ChatCompletionChunk])
_embedding = msgspec.json.Decoder(EmbeddingResponse)
_moderation = msgspec.json.Decoder(ModerationResponse)
_text = msgspec.json.Decoder(TextCompletion)
_text_chunk = msgspec.json.Decoder(list[TextCompletionChunk])
_images = msgspec.json.Decoder(ImagesResponse)
_encode = msgspec.json.Encoder().encode
READ_CHUNK = 64 * 1024


class _OpenAIEndpoint:
    """A mixin of :class:`~sidecar_openai.compatible.OpenAICompatibleProvider`, which gives
    ``name``, ``endpoint(params, model, path)``, ``upstream_body(call)`` and ``stream_body(call)``
    (not defined here: a mixin comes first in the class's MRO)."""

    name: str
    endpoint: Any
    upstream_body: Any
    stream_body: Any

    async def _answer(self, call: ProviderCall, path: str, decoder: msgspec.json.Decoder,
                      relay: Callable[[aiohttp.ClientResponse], Any]) -> Any:
        """POST to ``path``: the answer decoded with ``decoder``, or (``call.stream``) ``relay``
        of the open stream."""
        url, headers = self.endpoint(call.params, call.model, path)
        body = _encode(self.stream_body(call) if call.stream else self.upstream_body(call))
        if not call.stream:
            return await post_json(call.session, url, body, headers, timeout_for(call.params, False), decoder,
                                   self.name)
        return relay(await open_stream(call.session, url, body, headers, timeout_for(call.params, True), self.name))


class Chat(_OpenAIEndpoint):
    """``chat``: ``/chat/completions``, answers and chunks normalised to OpenAI's spec."""

    async def chat(self, call: ProviderCall) -> ChatCompletion | AsyncIterator[list[ChatCompletionChunk]]:
        return await self._answer(call, "chat/completions", _chat, self._chunks)

    async def _chunks(self, resp: aiohttp.ClientResponse) -> AsyncIterator[list[ChatCompletionChunk]]:
        # aclosing: a client that leaves closes this generator, and so the upstream response at once
        async with aclosing(iter_sse_batches(resp, self.name)) as batches:
            async for payloads in batches:
                chunks, bad = self._decode(payloads)
                if chunks:
                    yield chunks
                if bad is not None:
                    raise bad

    def _decode(self, payloads: list[bytes]) -> tuple[list[ChatCompletionChunk], ProviderError | None]:
        """The chunks of one read worth relaying, decoded in one call; when one is bad, those
        before it and the error naming it (they are decoded one at a time only then)."""
        bad = None
        try:
            chunks = _chunk_list.decode(b"[" + b",".join(payloads) + b"]")
        except (msgspec.DecodeError, RecursionError):
            chunks = []
        if len(chunks) != len(payloads):  # a bad payload, or one that held more than one value
            chunks = []
            for payload in payloads:
                try:
                    chunks.append(_chunk.decode(payload))
                except (msgspec.DecodeError, RecursionError) as exc:
                    bad = ProviderError(502, f"{self.name} upstream sent a chunk that is not valid: {exc}",
                                        code="bad_upstream_response")
                    break
        kept = []  # (one pass: annotations left out, then chunks with nothing to relay)
        for chunk in chunks:
            choices = chunk.choices
            for choice in choices:
                if choice.delta is msgspec.UNSET:
                    chunk.choices = choices = _without_annotations(choices)
                    break
            # (Azure opens with a chunk of prompt_filter_results only: nothing to relay)
            if choices or chunk.usage is not None:
                kept.append(chunk)
        return kept, bad


def _without_annotations(choices: list[ChunkChoice]) -> list[ChunkChoice]:
    """Azure's asynchronous content filter sends annotation choices with no ``delta`` (and
    ``object: ""``): they carry nothing of OpenAI's format, so they are left out."""
    kept = [c for c in choices if c.delta is not msgspec.UNSET or c.finish_reason is not None]
    for choice in kept:
        if choice.delta is msgspec.UNSET:
            choice.delta = Delta()
    return kept


class Embeddings(_OpenAIEndpoint):
    """``embedding``: ``/embeddings``."""

    async def embeddings(self, call: ProviderCall) -> EmbeddingResponse:
        url, headers = self.endpoint(call.params, call.model, "embeddings")
        return await post_json(call.session, url, _encode(self.upstream_body(call)), headers,
                               timeout_for(call.params, False), _embedding, self.name)


class Moderations(_OpenAIEndpoint):
    """``moderation``: ``/moderations``."""

    async def moderations(self, call: ProviderCall) -> ModerationResponse:
        url, headers = self.endpoint(call.params, call.model, "moderations")
        return await post_json(call.session, url, _encode(self.upstream_body(call)), headers,
                               timeout_for(call.params, False), _moderation, self.name)


class TextCompletions(_OpenAIEndpoint):
    """``completion``: the legacy ``/completions``, decoded and normalised like chat."""

    async def text_completion(self, call: ProviderCall) -> TextCompletion | AsyncIterator[list[TextCompletionChunk]]:
        return await self._answer(call, "completions", _text, self._text_chunks)

    async def _text_chunks(self, resp: aiohttp.ClientResponse) -> AsyncIterator[list[TextCompletionChunk]]:
        async with aclosing(iter_sse_batches(resp, self.name)) as batches:
            async for payloads in batches:
                try:
                    yield _text_chunk.decode(b"[" + b",".join(payloads) + b"]")
                except (msgspec.DecodeError, RecursionError) as exc:
                    raise ProviderError(502, f"{self.name} upstream sent a chunk that is not valid: {exc}",
                                        code="bad_upstream_response") from None


class _Relayed(_OpenAIEndpoint):
    """An answer relayed byte for byte (:class:`~sidecar.RawAnswer`)."""

    async def _relay(self, call: ProviderCall, url: Any, body: Any, headers: Mapping[str, str]) -> RawAnswer:
        resp = await open_stream(call.session, url, body, headers, timeout_for(call.params, False), self.name)
        return RawAnswer(resp.headers.get("Content-Type", "application/octet-stream"), self._bytes(resp))

    async def _bytes(self, resp: aiohttp.ClientResponse) -> AsyncIterator[bytes]:
        try:
            async for data in resp.content.iter_chunked(READ_CHUNK):
                yield data
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise connection_error(exc, self.name) from None
        finally:
            resp.release()


class Images(_Relayed):
    """``image_generation``: ``/images/generations``; gpt-image's partial-image stream relayed."""

    async def image_generation(self, call: ProviderCall) -> ImagesResponse | RawAnswer:
        url, headers = self.endpoint(call.params, call.model, "images/generations")
        body = _encode(self.upstream_body(call))
        if not call.body.get("stream"):
            return await post_json(call.session, url, body, headers, timeout_for(call.params, False), _images,
                                   self.name)
        return await self._relay(call, url, body, headers)  # gpt-image's partial-image events, as they come


class Speech(_Relayed):
    """``audio_speech``: ``/audio/speech``, the audio relayed as it arrives."""

    async def speech(self, call: ProviderCall) -> RawAnswer:
        url, headers = self.endpoint(call.params, call.model, "audio/speech")
        return await self._relay(call, url, _encode(self.upstream_body(call)), headers)


class Transcriptions(_Relayed):
    """``audio_transcription``: ``/audio/transcriptions``, the file streamed upstream as it comes."""

    async def transcription(self, call: ProviderCall) -> RawAnswer:
        """The form's fields and the file, streamed as one multipart body; the answer relayed in the
        format asked for (json, text, srt, vtt, verbose_json, or a stream)."""
        url, headers = self.endpoint(call.params, call.model, "audio/transcriptions")
        boundary = uuid.uuid4().hex
        headers = {**headers, "Content-Type": f"multipart/form-data; boundary={boundary}"}
        return await self._relay(call, url, _multipart(boundary, self.upstream_body(call), call.upload), headers)


ENDPOINTS: dict[str, type] = {
    "chat": Chat, "completion": TextCompletions, "embedding": Embeddings, "moderation": Moderations,
    "image_generation": Images, "audio_speech": Speech, "audio_transcription": Transcriptions,
}
"""Each capability and the mixin that serves it: a provider mixes in exactly those it declares
(the core refuses one that implements a capability it does not declare)."""


@lru_cache(maxsize=64)
def with_endpoints(base: type, capabilities: frozenset[str]) -> type:
    """``base`` with the mixin of each of ``capabilities`` (one class per set, made once)."""
    mixins = tuple(ENDPOINTS[c] for c in sorted(capabilities))
    name = f"{base.__name__}[{','.join(sorted(capabilities))}]"
    return type(name, (*mixins, base), {"__module__": base.__module__, "__qualname__": name})


def _field(boundary: str, name: str, value: Any) -> bytes:
    if isinstance(value, bool):
        value = "true" if value else "false"
    elif not isinstance(value, str):
        value = _encode(value).decode() if isinstance(value, dict | list) else str(value)
    return (f'--{boundary}\r\nContent-Disposition: form-data; name="{_quote(name)}"\r\n\r\n'.encode()
            + value.encode() + b"\r\n")


def _fields(boundary: str, fields: Mapping[str, Any]) -> bytes:
    out = bytearray()
    for name, value in fields.items():
        for one in value if isinstance(value, list) and name.endswith("[]") else [value]:
            out += _field(boundary, name, one)
    return bytes(out)


def _quote(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")


async def _multipart(boundary: str, fields: Mapping[str, Any], upload: Any) -> AsyncIterator[bytes]:
    """A multipart/form-data body: the fields, the file as it arrives, the fields sent after it."""
    yield _fields(boundary, fields)
    yield (f'--{boundary}\r\nContent-Disposition: form-data; name="{_quote(upload.field)}"; '
           f'filename="{_quote(upload.filename)}"\r\nContent-Type: {upload.content_type}\r\n\r\n').encode()
    async for data in upload.chunks():
        yield data
    yield b"\r\n" + _fields(boundary, upload.extra_fields()) + f"--{boundary}--\r\n".encode()

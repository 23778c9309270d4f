"""OpenAI's legacy completions, images and audio endpoints, spoken to OpenAI or a compatible
server: text completions decoded and normalised like chat; speech audio, transcriptions and image
streams relayed byte for byte (:class:`~sidecar.wire_media.RawAnswer`); a transcription's file
streamed upstream as the client sends it."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import aclosing
from typing import Any

import aiohttp
import msgspec

from sidecar import (
    ImagesResponse,
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

_text = msgspec.json.Decoder(TextCompletion)
_text_chunk = msgspec.json.Decoder(list[TextCompletionChunk])
_images = msgspec.json.Decoder(ImagesResponse)
_encode = msgspec.json.Encoder().encode
READ_CHUNK = 64 * 1024


class EndpointsMixin:
    """Methods of :class:`~sidecar_openai.compatible.OpenAICompatibleProvider` for these endpoints
    (it gives ``name``, ``endpoint`` and ``upstream_body``)."""

    name: str

    async def text_completion(self, call: ProviderCall) -> TextCompletion | AsyncIterator[list[TextCompletionChunk]]:
        url, headers = self.endpoint(call.params, call.model, "completions")
        body = _encode(self.upstream_body(call))
        if not call.stream:
            return await post_json(call.session, url, body, headers, timeout_for(call.params, False), _text, self.name)
        resp = await open_stream(call.session, url, body, headers, timeout_for(call.params, True), self.name)
        return self._text_chunks(resp)

    async def _text_chunks(self, resp: aiohttp.ClientResponse) -> AsyncIterator[list[TextCompletionChunk]]:
        async with aclosing(iter_sse_batches(resp, self.name)) as batches:
            async for payloads in batches:
                try:
                    yield _text_chunk.decode(b"[" + b",".join(payloads) + b"]")
                except (msgspec.DecodeError, RecursionError) as exc:
                    raise ProviderError(502, f"{self.name} upstream sent a chunk that is not valid: {exc}",
                                        code="bad_upstream_response") from None

    async def image_generation(self, call: ProviderCall) -> ImagesResponse | RawAnswer:
        url, headers = self.endpoint(call.params, call.model, "images/generations")
        body = _encode(self.upstream_body(call))
        if not call.body.get("stream"):
            return await post_json(call.session, url, body, headers, timeout_for(call.params, False), _images,
                                   self.name)
        return await self._relay(call, url, body, headers)  # gpt-image's partial-image events, as they come

    async def speech(self, call: ProviderCall) -> RawAnswer:
        url, headers = self.endpoint(call.params, call.model, "audio/speech")
        return await self._relay(call, url, _encode(self.upstream_body(call)), headers)

    async def transcription(self, call: ProviderCall) -> RawAnswer:
        """The form's fields and the file, streamed as one multipart body; the answer relayed in the
        format asked for (json, text, srt, vtt, verbose_json, or a stream)."""
        url, headers = self.endpoint(call.params, call.model, "audio/transcriptions")
        boundary = uuid.uuid4().hex
        headers = {**headers, "Content-Type": f"multipart/form-data; boundary={boundary}"}
        return await self._relay(call, url, _multipart(boundary, self.upstream_body(call), call.upload), headers)

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

"""The mock provider's text completions, images and audio: deterministic, offline."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from typing import Any

from sidecar import (
    ImagesResponse,
    ProviderCall,
    ProviderError,
    RawAnswer,
    TextChoice,
    TextChunkChoice,
    TextCompletion,
    TextCompletionChunk,
    TranscriptionResponse,
    Usage,
    prompts_of,
    silent_wav,
    tiny_png,
)
from sidecar import mock_images as images  # noqa: F401 - tiny_png: for plugin authors' tests

TRANSCRIPT = "The quick brown fox jumps over the lazy dog."
"""What the mock hears in any audio."""
MAX_N = 10


def _words(text: str) -> list[str]:
    return text.split()


class MockMediaMixin:
    """Methods of :class:`~sidecar_mock.provider.MockProvider` (which gives ``_delay``)."""

    async def text_completion(self, call: ProviderCall) -> TextCompletion | AsyncIterator[TextCompletionChunk]:
        """``Mock reply to: <prompt>`` for each prompt (``n`` times), honouring echo, stop, max_tokens."""
        req = call.request
        await self._delay(call)
        n = req.n if isinstance(req.n, int) else 1
        if not 1 <= n <= MAX_N:
            raise ProviderError(400, f"n must be between 1 and {MAX_N}", param="n", code="invalid_value")
        texts: list[tuple[str, str]] = []
        prompt_tokens = completion_tokens = 0
        for prompt in prompts_of(req.prompt):
            prompt_tokens += len(_words(prompt))
            text, finish = _complete(req, prompt)
            completion_tokens += len(_words(text)) * n
            texts.extend([((prompt if req.echo else "") + text, finish)] * n)
        usage = Usage(prompt_tokens, completion_tokens, prompt_tokens + completion_tokens)
        reply_id = "cmpl-mock-" + hashlib.sha256(repr((call.model, texts)).encode()).hexdigest()[:24]
        if call.stream:
            return self._text_stream(call, reply_id, texts, usage)
        return TextCompletion(id=reply_id, model=call.model, usage=usage, choices=[
            TextChoice(index=i, text=text, finish_reason=finish) for i, (text, finish) in enumerate(texts)])

    async def _text_stream(self, call: ProviderCall, reply_id: str, texts: list[tuple[str, str]],
                           usage: Usage) -> AsyncIterator[TextCompletionChunk]:
        for i, (text, finish) in enumerate(texts):
            pieces = text.split(" ")
            for w, word in enumerate(pieces):
                if w:
                    await self._delay(call)
                last = w == len(pieces) - 1
                yield TextCompletionChunk(id=reply_id, model=call.model, choices=[TextChunkChoice(
                    index=i, text=word if last else word + " ", finish_reason=finish if last else None)])
        yield TextCompletionChunk(id=reply_id, model=call.model, choices=[], usage=usage)  # (the core drops it unasked)

    async def image_generation(self, call: ProviderCall) -> ImagesResponse:
        """``n`` tiny PNGs whose colour comes from the prompt: base64, or data URLs (``response_format: url``)."""
        req = call.request
        await self._delay(call)
        n = req.n if isinstance(req.n, int) else 1
        if not 1 <= n <= MAX_N:
            raise ProviderError(400, f"n must be between 1 and {MAX_N}", param="n", code="invalid_value")
        return images(req.prompt, n, req.response_format)

    async def speech(self, call: ProviderCall) -> RawAnswer:
        """A quarter second of silence as WAV (``response_format: pcm``: the raw samples)."""
        await self._delay(call)
        if not call.request.input:
            raise ProviderError(400, "`input` must not be empty", param="input", code="invalid_value")
        wav = silent_wav()
        if call.request.response_format == "pcm":
            return RawAnswer("audio/pcm", _one(wav[44:]))
        return RawAnswer("audio/wav", _one(wav))

    async def transcription(self, call: ProviderCall) -> TranscriptionResponse | RawAnswer:
        """:data:`TRANSCRIPT`, whatever the audio (read whole, so the client's upload completes)."""
        await self._delay(call)
        size = 0
        async for data in call.upload.chunks():
            size += len(data)
        if not size:
            raise ProviderError(400, "the audio file is empty", param="file", code="invalid_value")
        if call.body.get("response_format") in ("text", "srt", "vtt"):
            return RawAnswer("text/plain; charset=utf-8", _one(TRANSCRIPT.encode()))
        return TranscriptionResponse(text=TRANSCRIPT, usage={"type": "duration", "seconds": 1})


def _complete(req: Any, prompt: str) -> tuple[str, str]:
    text, finish = f"Mock reply to: {prompt}", "stop"
    stops = req.stop if isinstance(req.stop, list) else [req.stop] if isinstance(req.stop, str) else []
    for stop in stops:
        if stop and stop in text:
            text = text[: text.index(stop)]
    if isinstance(req.max_tokens, int) and len(_words(text)) > req.max_tokens:
        text, finish = " ".join(_words(text)[:req.max_tokens]), "length"
    return text, finish


async def _one(data: bytes) -> AsyncIterator[bytes]:
    yield data

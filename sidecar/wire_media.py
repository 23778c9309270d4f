"""msgspec Structs for OpenAI's image and audio endpoints, and :class:`RawAnswer`: an answer
relayed byte for byte (speech audio, a transcription in the upstream's own format)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Annotated, Any

from msgspec import UNSET, Meta, Struct, UnsetType

from sidecar.wire import Json

__all__ = [
    "Image",
    "ImageGenerationRequest",
    "ImagesResponse",
    "RawAnswer",
    "SpeechRequest",
    "TranscriptionRequest",
    "TranscriptionResponse",
]


class ImageGenerationRequest(Struct):
    """OpenAI's image request, plus LiteLLM's gateway-only keys."""

    model: str
    prompt: str
    n: int | None | UnsetType = UNSET
    quality: str | None | UnsetType = UNSET
    response_format: str | None | UnsetType = UNSET
    size: str | None | UnsetType = UNSET
    style: str | None | UnsetType = UNSET
    background: str | None | UnsetType = UNSET
    moderation: str | None | UnsetType = UNSET
    output_format: str | None | UnsetType = UNSET
    output_compression: int | None | UnsetType = UNSET
    stream: bool | None | UnsetType = UNSET
    user: str | None | UnsetType = UNSET
    metadata: Json | None | UnsetType = UNSET
    drop_params: bool | None | UnsetType = UNSET
    mock_response: Any = UNSET


class Image(Struct, omit_defaults=True):
    b64_json: str | None = None
    url: str | None = None
    revised_prompt: str | None = None


class ImagesResponse(Struct, omit_defaults=True):
    created: int | UnsetType = UNSET
    data: list[Image] = []
    background: str | None = None
    output_format: str | None = None
    size: str | None = None
    quality: str | None = None
    usage: Json | None = None  # image tokens (input/output), not chat usage: no cost header is made of it

    def __post_init__(self) -> None:
        if self.created is UNSET:
            self.created = int(time.time())


class SpeechRequest(Struct):
    model: str
    input: Annotated[str, Meta(min_length=1)]
    voice: str | Json
    instructions: str | None | UnsetType = UNSET
    response_format: str | None | UnsetType = UNSET
    speed: float | None | UnsetType = UNSET
    stream_format: str | None | UnsetType = UNSET
    metadata: Json | None | UnsetType = UNSET
    mock_response: Any = UNSET


class TranscriptionRequest(Struct):
    """The text fields of a transcription's multipart form (converted leniently: ``"0.2"`` is a float)."""

    model: str
    language: str | None | UnsetType = UNSET
    prompt: str | None | UnsetType = UNSET
    response_format: str | None | UnsetType = UNSET
    temperature: float | None | UnsetType = UNSET
    stream: bool | None | UnsetType = UNSET
    mock_response: Any = UNSET


class TranscriptionResponse(Struct, omit_defaults=True):
    """``response_format: json``: the text (and, from some models, logprobs and usage)."""

    text: str
    logprobs: list[Json] | None = None
    usage: Json | None = None


@dataclass(slots=True)
class RawAnswer:
    """An answer relayed as it arrives: ``chunks`` are its body's bytes, ``content_type`` the
    upstream's. A provider returns it once the upstream said 2xx; closing ``chunks`` (an async
    generator) releases the upstream response."""

    content_type: str
    chunks: AsyncIterator[bytes]
    headers: dict[str, str] = field(default_factory=dict)

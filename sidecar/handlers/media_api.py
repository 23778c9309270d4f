"""OpenAI's image and audio endpoints: image generation, speech, transcription. Each is routed like
chat; speech audio and transcriptions in the upstream's own format are relayed as they arrive,
and a transcription's file is streamed to the upstream as the client sends it."""

from __future__ import annotations

import msgspec
from aiohttp import BodyPartReader, web

from sidecar import keys
from sidecar.errors import SidecarError, bad_request
from sidecar.handlers.openai_api import read_body
from sidecar.http import convert, validation_error
from sidecar.routing.serve import answer, new_call, router_for
from sidecar.uploads import MALFORMED, Upload, add_field, malformed_form, read_field
from sidecar.wire_media import ImageGenerationRequest, SpeechRequest, TranscriptionRequest

_NO_PARAMS: frozenset[str] = frozenset()


async def image_generations(request: web.Request) -> web.StreamResponse:
    body = await read_body(request)
    typed = convert(body, ImageGenerationRequest)
    call = new_call(request, body, typed, typed.model, "image_generation", _NO_PARAMS)
    call.stream = False  # (gpt-image's partial-image stream is relayed as it comes: a RawAnswer)
    return await answer(request, router_for(request, body), call)


async def speech(request: web.Request) -> web.StreamResponse:
    body = await read_body(request)
    typed = convert(body, SpeechRequest)
    call = new_call(request, body, typed, typed.model, "audio_speech", _NO_PARAMS)
    call.stream = False  # the audio is relayed as it arrives (a RawAnswer), whatever its format
    return await answer(request, router_for(request, body), call)


async def transcriptions(request: web.Request) -> web.StreamResponse:
    """A multipart form: text fields, and the audio ``file`` streamed on as it arrives."""
    limit = int(request.app[keys.CONFIG].general.max_request_size_mb * 1024 * 1024)
    if not request.content_type.startswith("multipart/form-data"):
        raise bad_request("expected a multipart/form-data body with the audio `file` and `model`",
                          param="file", code="invalid_value")
    if request.content_length is not None and request.content_length > limit:
        raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=request.content_length)
    fields, upload = await _read_form(request, limit)
    try:
        if "model" not in fields:  # the file came first: read it (spooled) to reach the fields after it
            await upload.drain()
            for name, value in upload.trailing.items():
                fields.setdefault(name, value)
            upload.trailing.clear()
        path_model = request.match_info.get("model")
        if path_model is not None:
            fields["model"] = path_model
        try:
            typed = msgspec.convert(fields, TranscriptionRequest, strict=False)
        except msgspec.ValidationError as exc:
            raise validation_error(exc) from None
        call = new_call(request, fields, typed, typed.model, "audio_transcription", _NO_PARAMS)
        call.stream = False  # a transcription stream (gpt-4o-transcribe's SSE) is relayed as it comes
        call.upload = upload
        try:
            return await answer(request, router_for(request, fields), call)
        except SidecarError:
            if upload.failure is not None:  # the client's upload broke the call, not the upstream
                raise upload.failure from None
            raise
    finally:
        upload.close()


async def _read_form(request: web.Request, limit: int) -> tuple[dict, Upload]:
    """The text fields before the file part, and the file part, unread."""
    fields: dict[str, str | list[str]] = {}
    try:
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                raise bad_request("nested multipart bodies are not supported", param="file", code="invalid_value")
            if part.name == "file":
                return fields, Upload(part, reader, limit)
            if part.filename is not None:
                raise bad_request(f"unexpected file in the form field {part.name!r}; send the audio as `file`",
                                  param=part.name, code="invalid_value")
            if part.name:
                add_field(fields, part.name, await read_field(part))
    except MALFORMED as exc:  # (a SidecarError is none of these)
        raise malformed_form(exc) from None
    raise bad_request("the form has no `file` field with the audio to transcribe", param="file",
                      code="missing_file")

"""An OpenAI fake that also serves the legacy completions, images and audio endpoints, on the
wire as api.openai.com answers them. The upstream model name picks a behaviour as in
:mod:`fake_upstreams` (``error-<status>`` and the rest); transcriptions record their multipart
form as it arrives: ``uploads[-1]`` holds the fields, the file's bytes and when its first bytes came.
A speech answer for a model with a gate in ``gates`` sends its first piece, then waits for the gate
before sending the rest.

    fake = await start(aiohttp_server, MediaFake(api_key="sk-..."))
"""

from __future__ import annotations

import asyncio
import base64
import time
from dataclasses import dataclass, field
from typing import Any

import msgspec
from aiohttp import BodyPartReader, web
from multidict import CIMultiDict

import fake_wire
from fake_upstreams import CREATED, OpenAIFake, Received

_encode = msgspec.json.Encoder().encode
PNG_1x1 = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==")
SPEECH = b"ID3\x04\x00\x00\x00\x00\x00\x00" + bytes(range(256)) * 64  # "mp3" bytes, 16 KiB and a header
SPEECH_PIECES = 4
"""The speech answer is written in this many pieces, a flush apart."""


@dataclass
class UploadSeen:
    fields: dict[str, Any] = field(default_factory=dict)
    filename: str | None = None
    content_type: str | None = None
    data: bytearray = field(default_factory=bytearray)
    first_bytes_at: float | None = None
    """``time.monotonic()`` when the file's first bytes arrived."""
    started: asyncio.Event = field(default_factory=asyncio.Event)


class MediaFake(OpenAIFake):
    """api.openai.com/v1 with /completions, /images/generations, /audio/speech, /audio/transcriptions."""

    def __init__(self, api_key: str | None = None) -> None:
        self.uploads: list[UploadSeen] = []
        super().__init__(api_key)

    def add_routes(self, router: web.UrlDispatcher) -> None:
        super().add_routes(router)
        router.add_post("/v1/completions", self.completions)
        router.add_post("/v1/images/generations", self.images)
        router.add_post("/v1/audio/speech", self.speech)
        router.add_post("/v1/audio/transcriptions", self.transcriptions)

    # ------------------------------------------------------------ completions

    def text_choice(self, body: dict[str, Any], index: int, text: str, finish: str | None) -> dict[str, Any]:
        return {"text": text, "index": index, "logprobs": None, "finish_reason": finish}

    async def completions(self, request: web.Request) -> web.StreamResponse:
        got = await self.record(request)
        body = got.body
        model = body["model"]
        failed = self.auth_error(request) or self.scripted_error(model, request)
        if failed is not None:
            return failed
        prompt = body.get("prompt")
        text = f"{self.greeting} {prompt if isinstance(prompt, str) else ''}".strip()
        usage = {"prompt_tokens": 5, "completion_tokens": len(text.split()), "total_tokens": 5 + len(text.split())}
        base = {"id": "cmpl-fake0001", "object": "text_completion", "created": CREATED, "model": model,
                "system_fingerprint": None}
        if not body.get("stream"):
            answer = {**base, "choices": [self.text_choice(body, 0, text, "stop")], "usage": usage}
            return web.Response(body=_encode(answer), content_type="application/json")
        words = text.split(" ")
        events = [{**base, "choices": [self.text_choice(body, 0, w if i == len(words) - 1 else w + " ", None)]}
                  for i, w in enumerate(words)]
        events.append({**base, "choices": [self.text_choice(body, 0, "", "stop")]})
        if (body.get("stream_options") or {}).get("include_usage"):
            events.append({**base, "choices": [], "usage": usage})
        if model == "error-mid-stream":
            return await fake_wire.sse(request, [*events[:2], {"error": {"message": "boom", "type": "server_error",
                                                                         "param": None, "code": None}}], done=False)
        return await fake_wire.sse(request, events)

    # ------------------------------------------------------------ images

    async def images(self, request: web.Request) -> web.StreamResponse:
        got = await self.record(request)
        body = got.body
        failed = self.auth_error(request) or self.scripted_error(body.get("model") or "", request)
        if failed is not None:
            return failed
        png = base64.b64encode(PNG_1x1).decode()
        image = ({"url": "https://files.example/img-1.png", "revised_prompt": f"A picture of {body['prompt']}"}
                 if body.get("response_format") == "url" else {"b64_json": png})
        answer = {"created": CREATED, "data": [image] * (body.get("n") or 1),
                  "usage": {"input_tokens": 10, "output_tokens": 20, "total_tokens": 30,
                            "input_tokens_details": {"text_tokens": 10, "image_tokens": 0}}}
        return web.Response(body=_encode(answer), content_type="application/json")

    # ------------------------------------------------------------ audio

    async def speech(self, request: web.Request) -> web.StreamResponse:
        got = await self.record(request)
        failed = self.auth_error(request) or self.scripted_error(got.body["model"], request)
        if failed is not None:
            return failed
        gate = self.gates.get(got.body["model"])
        resp = web.StreamResponse(headers={"Content-Type": "audio/mpeg"})
        await resp.prepare(request)
        size = len(SPEECH) // SPEECH_PIECES + 1
        for start in range(0, len(SPEECH), size):
            await resp.write(SPEECH[start:start + size])
            if gate is not None and start == 0:
                await gate.wait()  # the rest only once the test has seen the first piece arrive
            await asyncio.sleep(0)
        await resp.write_eof()
        return resp

    async def transcriptions(self, request: web.Request) -> web.StreamResponse:
        seen = UploadSeen()
        self.uploads.append(seen)
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            assert isinstance(part, BodyPartReader)
            if part.filename is None:
                value = (await part.read()).decode()
                if part.name.endswith("[]"):
                    seen.fields.setdefault(part.name, []).append(value)
                else:
                    seen.fields[part.name] = value
                continue
            seen.filename, seen.content_type = part.filename, part.headers.get("Content-Type")
            while chunk := await part.read_chunk(64 * 1024):
                if seen.first_bytes_at is None:
                    seen.first_bytes_at = time.monotonic()
                    seen.started.set()
                seen.data += chunk
        self.received.append(Received(request.method, request.path, dict(request.query),
                                      CIMultiDict(request.headers), dict(seen.fields)))
        failed = self.auth_error(request) or self.scripted_error(seen.fields.get("model", ""), request)
        if failed is not None:
            return failed
        text = f"Transcribed {len(seen.data)} bytes of {seen.filename}."
        if seen.fields.get("response_format") == "text":
            return web.Response(text=text + "\n", content_type="text/plain")
        answer = {"text": text, "usage": {"type": "duration", "seconds": 3}}
        return web.Response(body=_encode(answer), content_type="application/json")

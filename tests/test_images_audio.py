"""Images, speech and transcriptions through the sidecar with the official SDK: the openai
provider against an OpenAI-wire fake (what it received, field by field), the mock provider, errors;
and a transcription's file streamed to the upstream, not read whole first."""

from __future__ import annotations

import asyncio
import base64
import io
import time
import wave
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import openai
import pytest

from fake_media import SPEECH, MediaFake
from fake_upstreams import start
from gateway_helpers import PREFIXES, assert_error
from media_helpers import MASTER, UPSTREAM_KEY, WAIT, sdk, serve, upstream
from openai_spec import assert_valid
from sidecar.app import create_app
from sidecar.mocking import tiny_png

AUDIO = bytes(range(256)) * 40  # 10 KiB of "audio"


@pytest.fixture
async def fake(aiohttp_server) -> MediaFake:
    return await start(aiohttp_server, MediaFake(api_key=UPSTREAM_KEY))


@pytest.fixture
async def root(make_config, fake) -> AsyncIterator[str]:
    config = {"model_list": [
        upstream("dall-e-3", "openai/dall-e-3", fake),
        upstream("tts-1", "openai/tts-1", fake),
        upstream("whisper-1", "openai/whisper-1", fake),
        upstream("broken", "openai/error-400", fake),
        # a group whose first deployment fails after taking the whole upload: the retry replays it
        upstream("flaky-whisper", "openai/error-500", fake, order=1, num_retries=1),
        {**upstream("flaky-whisper", "openai/whisper-1", fake, order=2), "model_info": {"id": "dep-flaky-2"}},
        {"model_name": "mock-media", "litellm_params": {"model": "mock/mock-media"}},
    ], "general_settings": {"master_key": MASTER}}
    async for url in serve(create_app(make_config(config))):
        yield url


# ---------------------------------------------------------------- images


async def test_images_through_the_openai_provider(root, fake):
    async with sdk(root) as client:
        raw = await asyncio.wait_for(client.images.with_raw_response.generate(
            model="dall-e-3", prompt="a red fox", n=1, size="1024x1024", quality="hd", style="vivid",
            response_format="url", user="u-1"), WAIT)
    assert_valid(raw.http_response.json(), "ImagesResponse")
    images = raw.parse()
    assert images.data[0].url == "https://files.example/img-1.png"
    assert images.data[0].revised_prompt == "A picture of a red fox"
    assert raw.headers["x-litellm-model-id"] == "dep-dall-e-3"
    assert "x-litellm-response-cost" not in raw.headers  # image tokens are not chat tokens
    assert (fake.last.path, fake.last.body) == ("/v1/images/generations", {
        "model": "dall-e-3", "prompt": "a red fox", "n": 1, "size": "1024x1024", "quality": "hd",
        "style": "vivid", "response_format": "url", "user": "u-1"})


@pytest.mark.parametrize("response_format", ["b64_json", "url"])
async def test_images_from_the_mock(root, response_format):
    async with sdk(root) as client:
        raw = await asyncio.wait_for(client.images.with_raw_response.generate(
            model="mock-media", prompt="a fox", n=2, response_format=response_format), WAIT)
    assert_valid(raw.http_response.json(), "ImagesResponse")
    data = raw.parse().data
    encoded = [d.b64_json if response_format == "b64_json" else d.url.removeprefix("data:image/png;base64,")
               for d in data]
    assert [base64.b64decode(e) for e in encoded] == [tiny_png("a fox:0"), tiny_png("a fox:1")]
    assert base64.b64decode(encoded[0]).startswith(b"\x89PNG\r\n\x1a\n")


@pytest.mark.parametrize("prefix", PREFIXES)
async def test_image_errors(root, prefix):
    headers = {"Authorization": f"Bearer {MASTER}"}
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{root}{prefix}/images/generations", headers=headers,
                             json={"model": "mock-media"}) as resp:
            await assert_error(resp, 400, param="prompt")
        async with http.post(f"{root}{prefix}/images/generations", headers=headers,
                             json={"model": "broken", "prompt": "x"}) as resp:
            await assert_error(resp, 400, mentions=("temperature",))  # the upstream's own message


# ---------------------------------------------------------------- speech


async def test_speech_streams_the_upstream_audio_through(root, fake):
    """The upstream sends its first piece of audio, then waits until the client has it before
    sending the rest: a sidecar that read the whole answer before passing it on would never get there."""
    gate = fake.gates["tts-1"] = asyncio.Event()

    async def listen() -> tuple[bytes, list[bytes]]:
        async with sdk(root) as client:
            async with client.audio.speech.with_streaming_response.create(
                    model="tts-1", voice="alloy", input="Hello there", response_format="mp3", speed=1.25) as resp:
                assert resp.headers["Content-Type"] == "audio/mpeg"
                assert resp.headers["x-litellm-model-id"] == "dep-tts-1"
                pieces = resp.iter_bytes()
                first = await anext(pieces)  # (the fake holds the rest until the gate is set)
                gate.set()
                return first, [piece async for piece in pieces]

    first, rest = await asyncio.wait_for(listen(), WAIT)
    assert first and SPEECH.startswith(first)
    assert first + b"".join(rest) == SPEECH
    assert (fake.last.path, fake.last.body) == ("/v1/audio/speech", {
        "model": "tts-1", "voice": "alloy", "input": "Hello there", "response_format": "mp3", "speed": 1.25})


async def test_speech_from_the_mock_is_a_wav(root):
    async with sdk(root) as client:
        audio = await asyncio.wait_for(client.audio.speech.create(model="mock-media", voice="alloy", input="Hi"), WAIT)
    with wave.open(io.BytesIO(audio.content)) as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate(), wav.getnframes()) == (1, 2, 8000, 2000)
    assert audio.response.headers["Content-Type"] == "audio/wav"


async def test_speech_errors(root):
    async with sdk(root) as client:
        with pytest.raises(openai.BadRequestError) as upstream_error:
            await asyncio.wait_for(client.audio.speech.create(model="broken", voice="alloy", input="x"), WAIT)
        with pytest.raises(openai.BadRequestError) as missing:
            await asyncio.wait_for(client.audio.speech.create(model="tts-1", voice="alloy", input=None), WAIT)
    assert "temperature" in upstream_error.value.message
    assert missing.value.param == "input"


# ---------------------------------------------------------------- transcriptions


async def test_transcription_through_the_openai_provider(root, fake):
    async with sdk(root) as client:
        raw = await asyncio.wait_for(client.audio.transcriptions.with_raw_response.create(
            model="whisper-1", file=("speech.mp3", AUDIO, "audio/mpeg"), language="en", temperature=0.2,
            prompt="names: Ada", response_format="json", timestamp_granularities=["word", "segment"]), WAIT)
        text = await asyncio.wait_for(client.audio.transcriptions.create(
            model="whisper-1", file=("speech.mp3", AUDIO, "audio/mpeg"), response_format="text"), WAIT)
    answer = raw.http_response.json()
    assert_valid(answer, "CreateTranscriptionResponseJson")
    assert answer["text"] == f"Transcribed {len(AUDIO)} bytes of speech.mp3."
    assert raw.headers["x-litellm-model-id"] == "dep-whisper-1"
    assert text.strip() == f"Transcribed {len(AUDIO)} bytes of speech.mp3."
    first = fake.uploads[0]
    assert bytes(first.data) == AUDIO and (first.filename, first.content_type) == ("speech.mp3", "audio/mpeg")
    assert first.fields == {"model": "whisper-1", "language": "en", "temperature": "0.2", "prompt": "names: Ada",
                            "response_format": "json", "timestamp_granularities[]": ["word", "segment"]}
    assert fake.received[0].headers["Authorization"] == f"Bearer {UPSTREAM_KEY}"


async def test_transcription_from_the_mock(root):
    async with sdk(root) as client:
        result = await asyncio.wait_for(client.audio.transcriptions.create(
            model="mock-media", file=("a.wav", AUDIO, "audio/wav")), WAIT)
    assert result.text == "The quick brown fox jumps over the lazy dog."


async def test_a_retry_sends_the_whole_file_again(root, fake):
    async with sdk(root) as client:
        raw = await asyncio.wait_for(client.audio.transcriptions.with_raw_response.create(
            model="flaky-whisper", file=("s.mp3", AUDIO, "audio/mpeg")), WAIT)
    assert raw.headers["x-litellm-model-id"] == "dep-flaky-2"
    assert raw.headers["x-litellm-attempted-retries"] == "1"
    assert [u.fields["model"] for u in fake.uploads] == ["error-500", "whisper-1"]
    assert [bytes(u.data) for u in fake.uploads] == [AUDIO, AUDIO]


def form_head(boundary: str, fields: dict[str, str], filename: str = "big.mp3") -> bytes:
    out = b"".join(f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
                   for k, v in fields.items())
    return out + (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
                  "Content-Type: audio/mpeg\r\n\r\n").encode()


async def test_a_large_upload_reaches_the_upstream_before_the_client_has_sent_it_all(root, fake):
    """The client sends the head of a 4 MiB file, then waits until the fake upstream has its first
    bytes before sending the rest: a sidecar that read the upload whole first would never get there."""
    boundary = "b0undary"
    piece = bytes(range(256)) * 1024  # 256 KiB
    pieces = 16
    sent_all_at: list[float] = []

    async def body() -> AsyncIterator[bytes]:
        yield form_head(boundary, {"model": "whisper-1"}) + piece
        await asyncio.wait_for(fake_started(), WAIT)
        for _ in range(pieces - 1):
            yield piece
        sent_all_at.append(time.monotonic())
        yield f"\r\n--{boundary}--\r\n".encode()

    async def fake_started() -> None:
        while not fake.uploads:
            await asyncio.sleep(0.01)
        await fake.uploads[-1].started.wait()

    async with aiohttp.ClientSession() as http:
        async with http.post(f"{root}/audio/transcriptions", data=body(), headers={
                "api-key": MASTER, "Content-Type": f"multipart/form-data; boundary={boundary}"}) as resp:
            answer = await resp.json()
    assert resp.status == 200, answer
    assert answer["text"] == f"Transcribed {len(piece) * pieces} bytes of big.mp3."
    assert bytes(fake.uploads[-1].data) == piece * pieces
    assert fake.uploads[-1].first_bytes_at < sent_all_at[0]


async def test_file_before_the_fields_and_form_errors(root, fake):
    """curl -F file=@a.mp3 -F model=whisper-1: the fields after the file are read (it is spooled)."""
    boundary = "xyz"
    head = form_head(boundary, {}, "late.mp3")
    tail = (f'\r\n--{boundary}\r\nContent-Disposition: form-data; name="model"\r\n\r\nwhisper-1\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="language"\r\n\r\nfr\r\n--{boundary}--\r\n')
    headers = {"api-key": MASTER, "Content-Type": f"multipart/form-data; boundary={boundary}"}
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{root}/v1/audio/transcriptions", data=head + AUDIO + tail.encode(),
                             headers=headers) as resp:
            answer = await resp.json()
            assert resp.status == 200, answer
        form = aiohttp.FormData({"model": "whisper-1"})
        async with http.post(f"{root}/v1/audio/transcriptions", data=form, headers={"api-key": MASTER}) as resp:
            await assert_error(resp, 400, param="file")
        async with http.post(f"{root}/v1/audio/transcriptions", json={"model": "whisper-1"},
                             headers={"api-key": MASTER}) as resp:
            await assert_error(resp, 400, param="file")
    assert bytes(fake.uploads[0].data) == AUDIO
    assert fake.uploads[0].fields == {"model": "whisper-1", "language": "fr"}


@pytest.mark.parametrize(("model", "content_type", "body"), [
    ("whisper-1", "multipart/form-data; boundary=b",  # a part header aiohttp refuses, before the file
     b'--b\r\nContent-Disposition: form-data; name="a\x01"\r\n\r\nx\r\n'),
    ("whisper-1", "multipart/form-data; boundary=b",  # after the file: the upstream is being sent it
     b'--b\r\nContent-Disposition: form-data; name="file"; filename="f"\r\n\r\n' + AUDIO +
     b'\r\n--b\r\nContent-Disposition: form-data; name="x\x01"\r\n\r\nx\r\n--b--\r\n'),
    ("mock-media", "multipart/form-data; boundary=b",  # after the file, read before a made-up answer
     b'--b\r\nContent-Disposition: form-data; name="file"; filename="f"\r\n\r\n' + AUDIO +
     b'\r\n--b\r\nContent-Disposition: form-data; name="x\x01"\r\n\r\nx\r\n--b--\r\n'),
    ("whisper-1", "multipart/form-data; boundary=b", b"--c\r\n\r\n--c--\r\n"),  # not the boundary announced
    ("whisper-1", "multipart/form-data", b"--c\r\n\r\n--c--\r\n"),  # no boundary at all
])
async def test_a_malformed_form_is_a_400(root, model, content_type, body):
    fields = f'--b\r\nContent-Disposition: form-data; name="model"\r\n\r\n{model}\r\n'.encode()
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{root}/v1/audio/transcriptions", data=fields + body if b"--b" in body else body,
                             headers={"api-key": MASTER, "Content-Type": content_type}) as resp:
            await assert_error(resp, 400, param="file", code="invalid_form", mentions=("malformed",))

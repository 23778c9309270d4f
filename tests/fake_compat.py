"""Fakes for the openai plugin's other wire formats: Azure AI Foundry's model inference API,
OpenAI's legacy ``/v1/completions`` and Voyage AI's embeddings. Built on ``FakeUpstream``
(recording, Bearer checks); see tests/fake_upstreams.py."""

from __future__ import annotations

from typing import Any

import msgspec
from aiohttp import web
from fake_upstreams import CREATED, FakeUpstream, embedding_vector

_encode = msgspec.json.Encoder().encode


class AzureAIFake(FakeUpstream):
    """Azure AI model inference: chat and embeddings at ``/models/...`` (a Foundry resource) and
    at the root (a serverless endpoint); ``api-key`` or ``Authorization: Bearer`` accepted."""

    greeting = "Hello from Azure AI."

    def add_routes(self, router: web.UrlDispatcher) -> None:
        for root in ("", "/models"):
            router.add_post(f"{root}/chat/completions", self.chat)
            router.add_post(f"{root}/embeddings", self.embeddings)

    def presented_key(self, request: web.Request) -> str | None:
        return request.headers.get("api-key") or super().presented_key(request)

    async def chat(self, request: web.Request) -> web.StreamResponse:
        got = await self.record(request)
        return self.auth_error(request) or await self.answer_chat(request, got.body["model"], got.body)

    async def embeddings(self, request: web.Request) -> web.StreamResponse:
        got = await self.record(request)
        failed = self.auth_error(request)
        if failed is not None:
            return failed
        return web.Response(body=_encode(self.embeddings_answer(got.body["model"], got.body)),
                            content_type="application/json")


class TextCompletionFake(FakeUpstream):
    """OpenAI's ``/v1/completions``: ``choices[].text``, streamed as SSE ``text_completion`` chunks."""

    greeting = "Hello from davinci."

    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_post("/v1/completions", self.completions)

    def _choices(self, prompt: Any) -> list[str]:
        prompts = prompt if isinstance(prompt, list) else [prompt]
        return [f"{self.greeting} {p}" for p in prompts]

    async def completions(self, request: web.Request) -> web.StreamResponse:
        got = await self.record(request)
        failed = self.auth_error(request) or self.scripted_error(got.body["model"], request)
        if failed is not None:
            return failed
        model, texts = got.body["model"], self._choices(got.body["prompt"])
        usage = {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12}
        base = {"id": "cmpl-fake0001", "object": "text_completion", "created": CREATED, "model": model}
        if not got.body.get("stream"):
            choices = [{"text": t, "index": i, "logprobs": None, "finish_reason": "stop"} for i, t in enumerate(texts)]
            return web.json_response({**base, "choices": choices, "usage": usage})
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        for i, text in enumerate(texts):
            for word in text.split(" "):
                piece = {**base, "choices": [{"text": word + " ", "index": i, "logprobs": None, "finish_reason": None}]}
                await resp.write(b"data: " + _encode(piece) + b"\n\n")
            end = {**base, "choices": [{"text": "", "index": i, "logprobs": None, "finish_reason": "length"}]}
            await resp.write(b"data: " + _encode(end) + b"\n\n")
        await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()
        return resp


class VoyageFake(FakeUpstream):
    """Voyage AI: ``POST /v1/embeddings``; ``output_dimension``, ``encoding_format: base64``,
    ``usage.total_tokens`` only, and ``{"detail": ...}`` errors."""

    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_post("/v1/embeddings", self.embeddings)

    async def embeddings(self, request: web.Request) -> web.StreamResponse:
        got = await self.record(request)
        if self.api_key is not None and self.presented_key(request) != self.api_key:
            return web.json_response({"detail": "Provided API key is invalid."}, status=401)
        body = dict(got.body)
        if body.get("output_dimension"):
            body["dimensions"] = body["output_dimension"]
        if body.get("input_type") not in (None, "query", "document"):
            return web.json_response({"detail": "input_type must be query, document or null"}, status=400)
        answer = self.embeddings_answer(body["model"], body)
        answer["usage"] = {"total_tokens": answer["usage"]["total_tokens"]}
        return web.json_response(answer)


__all__ = ["AzureAIFake", "TextCompletionFake", "VoyageFake", "embedding_vector"]

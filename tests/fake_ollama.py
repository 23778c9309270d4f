"""An in-process Ollama server: ``/api/chat``, ``/api/generate`` and ``/api/embed`` in Ollama's
own wire format (NDJSON streams, one object a line, the last with ``done: true`` and the counts).

The model name picks a behaviour: ``missing`` answers Ollama's 404 for a model not pulled;
``error-429`` the 429 of a server over its usage limit (Ollama's cloud), with no retry time;
``cut`` drops the connection after two lines; ``no-done`` ends its body cleanly after two
lines, without ``done: true``; ``error-mid-stream`` sends two
lines, then ``{"error": ...}``; ``long`` finishes with ``done_reason: "length"``. With ``tools``
``/api/chat`` answers a tool call, arguments as an object, as Ollama does. Requests are recorded
(``fake.received``), and ``Authorization`` is checked when the fake has a key.
"""

from __future__ import annotations

from typing import Any

import msgspec
from aiohttp import web
from fake_upstreams import FakeUpstream

CREATED_AT = "2025-01-01T00:00:00.000000Z"
PROMPT_EVAL_COUNT, EVAL_COUNT = 11, 4
_encode = msgspec.json.Encoder().encode


class OllamaFake(FakeUpstream):
    greeting = "Hello from Ollama."

    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_post("/api/chat", self.chat)
        router.add_post("/api/generate", self.generate)
        router.add_post("/api/embed", self.embed)

    def auth_error(self, request: web.Request) -> web.Response | None:
        if self.api_key is None or self.presented_key(request) == self.api_key:
            return None
        return web.json_response({"error": "unauthorized"}, status=401)

    def ollama_error(self, model: str) -> web.Response | None:
        if model == "missing":
            return web.json_response({"error": f"model \"{model}\" not found, try pulling it first"}, status=404)
        if model == "error-429":
            return web.json_response({"error": "you (sidecar) have reached your hourly usage limit"}, status=429)
        return None

    def _text(self, body: dict[str, Any]) -> str:
        if "prompt" in body:
            return f"{self.greeting} {body['prompt'].strip()}"
        users = [m for m in body["messages"] if m["role"] in ("user", "tool")]
        return f"{self.greeting} {users[-1]['content']}" if users else self.greeting

    def _line(self, model: str, chat: bool, text: str, done: bool = False, **extra: Any) -> dict[str, Any]:
        line: dict[str, Any] = {"model": model, "created_at": CREATED_AT}
        if chat:
            line["message"] = {"role": "assistant", "content": text, **extra}
        else:
            line.update(response=text, **extra)
        line["done"] = done
        if done:
            line.update(done_reason="length" if model == "long" else "stop", total_duration=5_000_000,
                        load_duration=1_000_000, prompt_eval_count=PROMPT_EVAL_COUNT, prompt_eval_duration=1_000,
                        eval_count=EVAL_COUNT, eval_duration=2_000)
            if not chat:
                line["context"] = [1, 2, 3]
        return line

    def lines(self, body: dict[str, Any], chat: bool) -> list[dict[str, Any]]:
        model = body["model"]
        tools = body.get("tools") if chat else None
        messages = body.get("messages") or []
        if tools and not (messages and messages[-1]["role"] == "tool"):
            fn = tools[0]["function"]
            args = {name: "Paris" for name in (fn.get("parameters") or {}).get("properties") or {}}
            call = [{"function": {"name": fn["name"], "arguments": args}}]
            return [self._line(model, chat, "", tool_calls=call), self._line(model, chat, "", done=True)]
        words = self._text(body).split(" ")
        out = [self._line(model, chat, w if i == 0 else " " + w) for i, w in enumerate(words)]
        return [*out, self._line(model, chat, "", done=True)]

    async def _answer(self, request: web.Request, chat: bool) -> web.StreamResponse:
        got = await self.record(request)
        failed = self.auth_error(request) or self.ollama_error(got.body["model"])
        if failed is not None:
            return failed
        lines = self.lines(got.body, chat)
        if got.body.get("stream") is False:
            whole = dict(lines[-1])
            if chat:
                whole["message"] = {"role": "assistant", "content": "".join(l["message"]["content"] for l in lines)}
                calls = [c for l in lines for c in l["message"].get("tool_calls", [])]
                if calls:
                    whole["message"]["tool_calls"] = calls
            else:
                whole["response"] = "".join(l["response"] for l in lines)
            return web.Response(body=_encode(whole), content_type="application/json")
        resp = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
        await resp.prepare(request)
        model = got.body["model"]
        if model == "cut":
            for line in lines[:2]:
                await resp.write(_encode(line) + b"\n")
            request.transport.close()
            return resp
        if model == "no-done":  # a clean end of the body, but no line with done: true
            lines = lines[:2]
        if model == "error-mid-stream":
            lines = [*lines[:2], {"error": "an error was encountered while running the model"}]
        for line in lines:
            await resp.write(_encode(line) + b"\n")
        await resp.write_eof()
        return resp

    async def chat(self, request: web.Request) -> web.StreamResponse:
        return await self._answer(request, chat=True)

    async def generate(self, request: web.Request) -> web.StreamResponse:
        return await self._answer(request, chat=False)

    async def embed(self, request: web.Request) -> web.StreamResponse:
        got = await self.record(request)
        failed = self.auth_error(request) or self.ollama_error(got.body["model"])
        if failed is not None:
            return failed
        inputs = got.body["input"]
        items = [inputs] if isinstance(inputs, str) else inputs
        dims = got.body.get("dimensions") or 3
        vectors = [[float(i + 1)] + [0.5] * (dims - 1) for i in range(len(items))]
        return web.json_response({"model": got.body["model"], "embeddings": vectors, "total_duration": 1000,
                                  "load_duration": 100, "prompt_eval_count": 2 * len(items)})

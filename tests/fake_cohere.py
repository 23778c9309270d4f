"""An in-process Cohere server: ``/v2/chat`` (JSON, or SSE events ``message-start`` ...
``message-end``), ``/v2/embed`` and ``/v2/rerank`` in Cohere's own wire format, errors as
Cohere's ``{"id", "message"}`` bodies.

The model name picks a behaviour: ``error-<status>`` answers that status (``error-400`` with
Cohere's "too many tokens" message); ``cut`` drops the connection after the first text delta;
``no-end`` ends its body cleanly without ``message-end``; ``error-finish`` ends with
``finish_reason: ERROR``; ``long`` finishes with ``MAX_TOKENS``. With ``tools`` (and
``tool_choice`` not ``NONE``), unless the last message is a tool result, the answer is a tool
plan and a call of the first tool with ``{"location": "Paris"}``. Otherwise it says
``"Hello from Cohere. <last user text>"``, streamed a word at a time. Requests are recorded
(``fake.received``) and ``Authorization: Bearer`` is checked when the fake has a key.
"""

from __future__ import annotations

import base64
import struct
from typing import Any

import msgspec
from aiohttp import web
from fake_upstreams import FakeUpstream, embedding_vector

INPUT_TOKENS, BILLED_INPUT = 21, 5
TOOL_PLAN = "I will look up the weather in Paris."
ERRORS = {
    400: "too many tokens: total number of tokens in the prompt cannot exceed 4081 - received 5000. "
         "Try using a shorter prompt or enabling prompt truncating.",
    429: "You are using a Trial key, which is limited to 10 API calls / minute.",
    498: "invalid api token",
    500: "internal server error, this has been reported to our developers",
}
_encode = msgspec.json.Encoder().encode


class CohereFake(FakeUpstream):
    greeting = "Hello from Cohere."

    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_post("/v2/chat", self.chat)
        router.add_post("/v2/embed", self.embed)
        router.add_post("/v2/rerank", self.rerank)

    def cohere_error(self, status: int, message: str) -> web.Response:
        return web.json_response({"id": "0f7c8e2a-err", "message": message}, status=status)

    def refused(self, request: web.Request, model: str) -> web.Response | None:
        if self.api_key is not None and self.presented_key(request) != self.api_key:
            return self.cohere_error(401, "invalid api token")
        if model.startswith("error-") and model[6:].isdigit():
            status = int(model[6:])
            return self.cohere_error(status, ERRORS.get(status, f"error {status}"))
        return None

    # ------------------------------------------------------------ chat

    def _usage(self, output: int) -> dict[str, Any]:
        return {"billed_units": {"input_tokens": BILLED_INPUT, "output_tokens": output},
                "tokens": {"input_tokens": INPUT_TOKENS, "output_tokens": output}}

    def _calls_tool(self, body: dict[str, Any]) -> bool:
        messages = body["messages"]
        return bool(body.get("tools")) and body.get("tool_choice") != "NONE" and messages[-1]["role"] != "tool"

    def _words(self, body: dict[str, Any]) -> list[str]:
        said = [m for m in body["messages"] if m["role"] in ("user", "tool")][-1]["content"]
        text = said if isinstance(said, str) else " ".join(p.get("text", "") for p in said if p["type"] == "text")
        return f"{self.greeting} {text}".split(" ")

    def _finish(self, model: str, tool: bool) -> str:
        return "TOOL_CALL" if tool else {"long": "MAX_TOKENS", "error-finish": "ERROR"}.get(model, "COMPLETE")

    def answer(self, body: dict[str, Any]) -> dict[str, Any]:
        model = body["model"]
        message: dict[str, Any] = {"role": "assistant"}
        if self._calls_tool(body):
            fn = body["tools"][0]["function"]
            message["tool_plan"] = TOOL_PLAN
            message["tool_calls"] = [{"id": "get_weather_8xq1", "type": "function",
                                      "function": {"name": fn["name"], "arguments": '{"location":"Paris"}'}}]
            output = 12
        else:
            words = self._words(body)
            message["content"] = [{"type": "text", "text": " ".join(words)}]
            output = len(words)
        return {"id": "c14c80c3-18eb-4519-9460-6c92edd8cfb4", "message": message,
                "finish_reason": self._finish(model, "tool_calls" in message), "usage": self._usage(output)}

    def events(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        model = body["model"]
        start = {"message": {"role": "assistant", "content": [], "tool_plan": "", "tool_calls": [], "citations": []}}
        out: list[dict[str, Any]] = [{"id": "29f14a5a-stream", "type": "message-start", "delta": start}]
        tool = self._calls_tool(body)
        if tool:
            fn = body["tools"][0]["function"]
            out += [{"type": "tool-plan-delta", "delta": {"message": {"tool_plan": w}}}
                    for w in ("I will look up", " the weather in Paris.")]
            call = {"id": "get_weather_8xq1", "type": "function", "function": {"name": fn["name"], "arguments": ""}}
            out.append({"type": "tool-call-start", "index": 0, "delta": {"message": {"tool_calls": call}}})
            out += [{"type": "tool-call-delta", "index": 0,
                     "delta": {"message": {"tool_calls": {"function": {"arguments": piece}}}}}
                    for piece in ('{"location"', ':"Paris"}')]
            out.append({"type": "tool-call-end", "index": 0})
            output = 12
        else:
            words = self._words(body)
            out.append({"type": "content-start", "index": 0,
                        "delta": {"message": {"content": {"type": "text", "text": ""}}}})
            out += [{"type": "content-delta", "index": 0,
                     "delta": {"message": {"content": {"text": w if i == 0 else " " + w}}}} for i, w in enumerate(words)]
            out += [{"type": "citation-start", "index": 0, "delta": {"message": {"citations": {
                        "start": 0, "end": 5, "text": "Hello", "sources": [], "type": "TEXT_CONTENT"}}}},
                    {"type": "citation-end", "index": 0},
                    {"type": "content-end", "index": 0}]
            output = len(words)
        end: dict[str, Any] = {"finish_reason": self._finish(model, tool), "usage": self._usage(output)}
        if model == "error-finish":
            end["error"] = "the model ran into an internal error"
        out.append({"id": "29f14a5a-stream", "type": "message-end", "delta": end})
        return out

    async def chat(self, request: web.Request) -> web.StreamResponse:
        got = await self.record(request)
        model = got.body["model"]
        refused = self.refused(request, model)
        if refused is not None:
            return refused
        if not got.body.get("stream"):
            return web.json_response(self.answer(got.body))
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        events = self.events(got.body)
        if model == "no-end":
            events = events[:4]
        for i, event in enumerate(events):
            await resp.write(b"event: " + event["type"].encode() + b"\ndata: " + _encode(event) + b"\n\n")
            if model == "cut" and i == 2:
                request.transport.close()
                return resp
        await resp.write_eof()
        return resp

    # ------------------------------------------------------------ embed and rerank

    async def embed(self, request: web.Request) -> web.StreamResponse:
        got = await self.record(request)
        body = got.body
        refused = self.refused(request, body["model"])
        if refused is not None:
            return refused
        texts = body["texts"]
        dims = body.get("output_dimension") or 4
        vectors = [embedding_vector(i, dims) for i in range(len(texts))]
        embeddings: dict[str, Any] = {}
        for kind in body.get("embedding_types") or ["float"]:
            if kind == "base64":
                embeddings[kind] = [base64.b64encode(struct.pack(f"<{dims}f", *v)).decode() for v in vectors]
            else:
                embeddings[kind] = vectors
        return web.json_response({"id": "da6e531f-embed", "embeddings": embeddings, "texts": texts,
                                  "response_type": "embeddings_by_type",
                                  "meta": {"api_version": {"version": "2"},
                                           "billed_units": {"input_tokens": 2 * len(texts)}}})

    async def rerank(self, request: web.Request) -> web.StreamResponse:
        got = await self.record(request)
        body = got.body
        refused = self.refused(request, body["model"])
        if refused is not None:
            return refused
        query = set(body["query"].lower().split())
        scores = [(len(query & set(doc.lower().split())) / len(query), i) for i, doc in enumerate(body["documents"])]
        scores.sort(key=lambda s: (-s[0], s[1]))
        results = [{"index": i, "relevance_score": round(0.1 + 0.8 * s, 4)}
                   for s, i in scores[:body.get("top_n") or len(scores)]]
        return web.json_response({"id": "07734bd2-rerank", "results": results,
                                  "meta": {"api_version": {"version": "2"}, "billed_units": {"search_units": 1}}})

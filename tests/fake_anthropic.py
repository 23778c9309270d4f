"""An in-process Anthropic Messages API (``POST /v1/messages``, ``GET /v1/models``), in its
documented wire format: answers ``{"type": "message", "content": [blocks], "stop_reason",
"usage"}``; streams SSE ``event: <type>`` / ``data: <json>`` pairs (``message_start``,
``content_block_start``, ``content_block_delta``, ``content_block_stop``, ``ping``,
``message_delta``, ``message_stop``), never ``[DONE]``; errors ``{"type": "error", "error":
{"type", "message"}}``. Azure AI Foundry's Claude endpoint is served at
``/anthropic/v1/messages``.

It checks what the real API checks and this plugin must get right: the key in ``x-api-key``
(or Azure's ``api-key``), an ``anthropic-version`` header, ``max_tokens`` present, roles
alternating and starting with ``user``, no ``system`` role in ``messages``.

The model name picks a behaviour:

- ``error-overloaded`` (529 ``overloaded_error``), ``error-rate`` (429 with ``retry-after``),
  ``error-context`` (400 "prompt is too long"), ``error-server`` (500 ``api_error``);
- ``overloaded-first``: a 200 stream whose first event is an ``error`` (overloaded);
- ``error-mid-stream``: text, then an ``error`` event; ``cut``: the connection dropped after
  some text; ``no-stop``: a body that ends cleanly without ``message_stop``;
- ``thinker``: a ``thinking`` block (with its signature) before the text;
- ``cached``: usage with cache reads and writes; ``long``, ``refusal``, ``stopper``: stop
  reasons ``max_tokens``, ``refusal``, ``stop_sequence``.

With ``tools`` (and ``tool_choice`` not ``none``, and the last turn not a tool result) it
calls every tool offered (or the one ``tool_choice`` names), each property set to ``"Paris"``.
"""

from __future__ import annotations

from typing import Any

import msgspec
from aiohttp import web
from fake_upstreams import FakeUpstream

INPUT_TOKENS, OUTPUT_TOKENS, THINKING_TOKENS = 25, 9, 12
CACHE_READ, CACHE_WRITE = 200, 100
THINKING = "The user greets me. I should greet back."
SIGNATURE = "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds"
OVERLOADED = {"type": "overloaded_error", "message": "Overloaded"}
ERRORS: dict[str, tuple[int, dict[str, str]]] = {
    "error-overloaded": (529, OVERLOADED),
    "error-rate": (429, {"type": "rate_limit_error",
                         "message": "This request would exceed the rate limit for your organization of 50 "
                                    "requests per minute."}),
    "error-context": (400, {"type": "invalid_request_error",
                            "message": "prompt is too long: 215000 tokens > 200000 maximum"}),
    "error-server": (500, {"type": "api_error", "message": "Internal server error"}),
}
STOP_REASONS = {"long": "max_tokens", "refusal": "refusal", "stopper": "stop_sequence"}
_encode = msgspec.json.Encoder().encode


def error_answer(status: int, error: dict[str, str], headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(status=status, body=_encode({"type": "error", "error": error,
                                                     "request_id": "req_011CSHoEeqs5C35K2UUqR7Fy"}),
                        content_type="application/json", headers=headers)


def text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    return " ".join(b.get("text", "") if b.get("type") == "text" else text_of(b.get("content", ""))
                    for b in content if isinstance(b, dict))


class AnthropicFake(FakeUpstream):
    greeting = "Hello from Anthropic."

    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_post("/v1/messages", self.messages)
        router.add_post("/anthropic/v1/messages", self.messages)
        router.add_get("/v1/models", self.models)

    def auth_error(self, request: web.Request) -> web.Response | None:
        key = request.headers.get("x-api-key") or request.headers.get("api-key")
        if self.api_key is not None and key != self.api_key:
            return error_answer(401, {"type": "authentication_error", "message": "invalid x-api-key"})
        if "anthropic-version" not in request.headers:
            return error_answer(400, {"type": "invalid_request_error",
                                      "message": "anthropic-version: header is required"})
        return None

    def invalid(self, body: dict[str, Any]) -> str | None:
        """What the real API would refuse in ``body``."""
        if not isinstance(body.get("max_tokens"), int):
            return "max_tokens: Field required"
        roles = [m.get("role") for m in body.get("messages") or []]
        if not roles or roles[0] != "user":
            return "messages: first message must use the \"user\" role"
        if any(r not in ("user", "assistant") for r in roles):
            return "messages: Unexpected role. Use the top-level `system` parameter for a system prompt"
        if any(a == b for a, b in zip(roles, roles[1:])):
            return "messages: roles must alternate between \"user\" and \"assistant\", but found multiple turns"
        return None

    # ------------------------------------------------------------ answers

    def blocks(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        model = body["model"]
        blocks: list[dict[str, Any]] = []
        if model == "thinker" or body.get("thinking", {}).get("type") == "enabled":
            blocks.append({"type": "thinking", "thinking": THINKING, "signature": SIGNATURE})
        last = body["messages"][-1]
        answered = isinstance(last["content"], list) and any(b.get("type") == "tool_result" for b in last["content"])
        tools = body.get("tools") or []
        choice = body.get("tool_choice") or {"type": "auto"}
        if tools and choice["type"] != "none" and not answered:
            for i, tool in enumerate(tools):
                if choice["type"] == "tool" and tool["name"] != choice["name"]:
                    continue
                args = {name: "Paris" for name in (tool["input_schema"].get("properties") or {})}
                blocks.append({"type": "tool_use", "id": f"toolu_01A09q90qw90lq917835l{i}", "name": tool["name"],
                               "input": args})
            return blocks
        blocks.append({"type": "text", "text": f"{self.greeting} {text_of(last['content'])}".strip()})
        return blocks

    def usage(self, model: str, thought: bool) -> dict[str, Any]:
        """Usage as the API counts it; with thinking, ``output_tokens_details`` (which only the
        whole answer carries here: a stream's reasoning tokens are then estimated)."""
        usage: dict[str, Any] = {"input_tokens": INPUT_TOKENS, "output_tokens": OUTPUT_TOKENS,
                                 "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0,
                                 "service_tier": "standard"}
        if model == "cached":
            usage.update(cache_creation_input_tokens=CACHE_WRITE, cache_read_input_tokens=CACHE_READ)
        if thought:
            usage.update(output_tokens=OUTPUT_TOKENS + THINKING_TOKENS,
                         output_tokens_details={"thinking_tokens": THINKING_TOKENS})
        return usage

    def message(self, body: dict[str, Any]) -> dict[str, Any]:
        blocks = self.blocks(body)
        model = body["model"]
        stop = "tool_use" if any(b["type"] == "tool_use" for b in blocks) else STOP_REASONS.get(model, "end_turn")
        return {"id": "msg_013Zva2CMHLNnXjNJJKqJ2EF", "type": "message", "role": "assistant", "model": model,
                "content": blocks, "stop_reason": stop,
                "stop_sequence": "END" if stop == "stop_sequence" else None,
                "usage": self.usage(model, blocks[0]["type"] == "thinking")}

    async def messages(self, request: web.Request) -> web.StreamResponse:
        got = await self.record(request)
        failed = self.auth_error(request)
        if failed is not None:
            return failed
        body = got.body
        problem = self.invalid(body)
        if problem:
            return error_answer(400, {"type": "invalid_request_error", "message": problem})
        model = body["model"]
        if model in ERRORS:
            status, error = ERRORS[model]
            return error_answer(status, error, {"retry-after": "7"} if status == 429 else None)
        whole = self.message(body)
        if not body.get("stream"):
            return web.json_response(whole)
        return await self.stream(request, model, whole)

    # ------------------------------------------------------------ streams

    def events(self, whole: dict[str, Any]) -> list[dict[str, Any]]:
        """The stream of ``whole``, as the API sends it."""
        usage = {k: v for k, v in whole["usage"].items() if k != "output_tokens_details"}
        start = {**whole, "content": [], "stop_reason": None, "stop_sequence": None, "usage": {**usage, "output_tokens": 1}}
        events: list[dict[str, Any]] = [{"type": "message_start", "message": start}]
        for i, block in enumerate(whole["content"]):
            if block["type"] == "text":
                events.append({"type": "content_block_start", "index": i, "content_block": {"type": "text", "text": ""}})
                words = block["text"].split(" ")
                events += [{"type": "content_block_delta", "index": i,
                            "delta": {"type": "text_delta", "text": w if j == 0 else " " + w}} for j, w in enumerate(words)]
                if i == 0:
                    events.append({"type": "ping"})
            elif block["type"] == "thinking":
                events.append({"type": "content_block_start", "index": i,
                               "content_block": {"type": "thinking", "thinking": "", "signature": ""}})
                half = len(block["thinking"]) // 2
                events += [{"type": "content_block_delta", "index": i, "delta": {"type": "thinking_delta", "thinking": t}}
                           for t in (block["thinking"][:half], block["thinking"][half:])]
                events.append({"type": "content_block_delta", "index": i,
                               "delta": {"type": "signature_delta", "signature": block["signature"]}})
            else:  # tool_use: the input as JSON in pieces
                events.append({"type": "content_block_start", "index": i,
                               "content_block": {**block, "input": {}}})
                text = _encode(block["input"]).decode()
                half = len(text) // 2
                events += [{"type": "content_block_delta", "index": i, "delta": {"type": "input_json_delta", "partial_json": p}}
                           for p in ("", text[:half], text[half:])]
            events.append({"type": "content_block_stop", "index": i})
        events.append({"type": "message_delta",
                       "delta": {"stop_reason": whole["stop_reason"], "stop_sequence": whole["stop_sequence"]},
                       "usage": {"output_tokens": whole["usage"]["output_tokens"]}})
        events.append({"type": "message_stop"})
        return events

    async def stream(self, request: web.Request, model: str, whole: dict[str, Any]) -> web.StreamResponse:
        events = self.events(whole)
        if model == "overloaded-first":
            events = [{"type": "error", "error": OVERLOADED}]
        elif model == "error-mid-stream":
            events = [*events[:4], {"type": "error", "error": OVERLOADED}]
        elif model in ("cut", "no-stop"):
            events = events[:4]
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream; charset=utf-8",
                                           "Cache-Control": "no-cache"})
        await resp.prepare(request)
        for event in events:
            await resp.write(f"event: {event['type']}\ndata: ".encode() + _encode(event) + b"\n\n")
        if model == "cut":
            request.transport.close()
            return resp
        await resp.write_eof()
        return resp

    async def models(self, request: web.Request) -> web.StreamResponse:
        await self.record(request)
        failed = self.auth_error(request)
        if failed is not None:
            return failed
        data = [{"type": "model", "id": name, "display_name": name, "created_at": "2025-09-29T00:00:00Z"}
                for name in ("claude-sonnet-4-5-20250929", "claude-haiku-4-5-20251001")]
        return web.json_response({"data": data, "has_more": False, "first_id": data[0]["id"], "last_id": data[-1]["id"]})

"""In-process fake upstreams speaking each provider's real wire format.

Each fake is an aiohttp app served by pytest-aiohttp's ``aiohttp_server`` on 127.0.0.1, and
records every request it gets (method, path, query, headers, decoded JSON body) in
``fake.received`` so tests can assert exactly what went upstream.

The upstream model name (``litellm_params.model`` without its prefix, or the Azure deployment)
picks a behaviour, so one fake serves every scenario:

- ``error-<status>``: OpenAI's error envelope with that status (429 also sends rate-limit headers);
  ``error-context`` / ``error-policy``: OpenAI's 400 for a context too long / a content-policy block;
- ``cut``: a stream (or a JSON body) cut mid-way: the transport is closed without ``[DONE]``;
  ``cut-first``: a 200 stream whose connection drops before its first event;
- ``error-mid-stream``: a few chunks, then an SSE ``{"error": ...}`` event;
- ``error-first``: a 200 stream whose first event is an SSE ``{"error": ...}``;
- ``bad-chunk``: a few chunks, then one that is not JSON;
- ``error-in-chunk``: a few chunks, then OpenRouter's error: a chunk with ``error`` and
  ``finish_reason: "error"``;
- ``slow``: sleeps ``SLOW_SECONDS`` before answering (longer than the tests' ``timeout``);
- ``stall``: a stream that sends two chunks, then sleeps ``SLOW_SECONDS``;
- ``no-done`` / ``no-done-early``: a cleanly ended stream without ``[DONE]``, after / before the finish;
  ``no-done-cut``: one whose body ends inside its last event, just after ``"finish_reason":"st``;
- ``silent``: one chunk, then only SSE comments, noting in ``stream_abandoned`` a reader that left;
- ``drip``: a long stream (a chunk every 20 ms), noting in ``stream_abandoned`` a reader that left;
- ``odd-framing``: a stream in legal SSE framing other than OpenAI's (CRLF, comments, split writes);
- ``huge``: answers ``HUGE_REPLY``, a single 1.2 MB word (so a single 1.2 MB SSE event);
- ``no-tool-id``: a tool call answered without its ``id``;
- ``quirky`` (vLLM fake only): ``finish_reason`` null in JSON, ``""`` and ``"eos_token"`` in streams;
- anything else: a normal answer. With ``tools`` (and ``tool_choice`` not ``"none"``) the answer
  is a tool call; otherwise ``"<greeting> <last user text>"``, streamed a word at a time.

    fake = await start(aiohttp_server, OpenAIFake(api_key="sk-..."))
    fake.base_url        # http://127.0.0.1:PORT/v1
    fake.last.body       # the JSON the fake got last
"""

from __future__ import annotations

import asyncio
import base64
import socket
import struct
from typing import Any

import msgspec
from aiohttp import web

import fake_wire
from fake_wire import LONG_SECONDS, SLOW_SECONDS

from sidecar import testing as kit

HUGE_REPLY = "x" * 1_200_000  # one word: one SSE event over aiohttp's line limit (2 x read_bufsize)
CREATED = 1730000000
_encode = msgspec.json.Encoder().encode

MODERATION_CATEGORIES = (
    "harassment", "harassment/threatening", "hate", "hate/threatening", "illicit",
    "illicit/violent", "self-harm", "self-harm/instructions", "self-harm/intent", "sexual",
    "sexual/minors", "violence", "violence/graphic",
)
_IMAGE_CATEGORIES = {"self-harm", "self-harm/intent", "self-harm/instructions", "sexual", "violence"}

OPENAI_ERRORS: dict[int, dict[str, Any]] = {
    400: {"message": "Invalid 'temperature': decimal above maximum value. Expected a value <= 2, "
                     "but got 5 instead.", "type": "invalid_request_error", "param": "temperature",
          "code": "decimal_above_max_value"},
    403: {"message": "You are not allowed to sample from this model", "type": "invalid_request_error",
          "param": None, "code": None},
    404: {"message": "The model `error-404` does not exist or you do not have access to it.",
          "type": "invalid_request_error", "param": None, "code": "model_not_found"},
    429: {"message": "Rate limit reached for gpt-4o-mini in organization org-fake on requests per min "
                     "(RPM): Limit 3, Used 3, Requested 1. Please try again in 20s.",
          "type": "requests", "param": None, "code": "rate_limit_exceeded"},
    500: {"message": "The server had an error while processing your request. Sorry about that!",
          "type": "server_error", "param": None, "code": None},
    503: {"message": "The engine is currently overloaded, please try again later",
          "type": "server_error", "param": None, "code": None},
}
NAMED_ERRORS: dict[str, dict[str, Any]] = {
    "error-context": {"message": "This model's maximum context length is 8192 tokens. However, your messages "
                                 "resulted in 9000 tokens. Please reduce the length of the messages.",
                      "type": "invalid_request_error", "param": "messages", "code": "context_length_exceeded"},
    "error-policy": {"message": "Your request was rejected as a result of our safety system.",
                     "type": "invalid_request_error", "param": None, "code": "content_policy_violation"},
}
MID_STREAM_ERROR = {"message": "The model produced invalid content mid-stream.", "type": "server_error",
                    "param": None, "code": None}


def embedding_vector(index: int, dims: int) -> list[float]:
    """The fakes' embedding of input ``index``: exact in float32, so base64 round-trips."""
    return [float(index + 1)] + [(-1.0) ** k / 2 ** (k + 1) for k in range(dims - 1)]


_REFUSING: list[socket.socket] = []


def refused_base_url() -> str:
    """An ``api_base`` on 127.0.0.1 where nobody listens.

    The port stays bound (never listening) for the whole test run: a port
    merely found free could be taken by the next server a test starts, even
    the gateway itself, and then the "refused" upstream would answer.
    """
    if not _REFUSING:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        _REFUSING.append(sock)
    return f"http://127.0.0.1:{_REFUSING[0].getsockname()[1]}/v1"


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


class FakeUpstream(kit.FakeUpstream):
    """The kit's recording fake plus what these fakes share: OpenAI's auth and errors, behaviours
    picked by model name, scripts. Subclasses add routes and wire quirks."""

    greeting = "Hello from the fake."
    served_model_suffix = ""

    def __init__(self, api_key: str | None = None) -> None:
        self.stream_abandoned = asyncio.Event()
        self.stream_finished = asyncio.Event()
        self.script: dict[str, list[Any]] = {}
        """Per upstream model, what its next requests get, in order (the last step repeats): a
        behaviour name (``"ok"``, ``"error-500"``, ``"slow"``, ``"error-first"``...), or
        ``{"status": 429, "headers": {...}}``; ``"hold"`` (or ``"hold": True`` in a dict) waits for
        ``gates[model]`` first."""
        self.gates: dict[str, asyncio.Event] = {}
        super().__init__(api_key)

    def auth_error(self, request: web.Request) -> web.Response | None:
        """OpenAI's 401, echoing the key it was given (as OpenAI does, partly masked)."""
        if self.api_key is None:
            return None
        key = self.presented_key(request)
        if key == self.api_key:
            return None
        if key is None:
            message = ("You didn't provide an API key. You need to provide your API key in an Authorization "
                       "header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).")
            return self.error(401, {"message": message, "type": "invalid_request_error", "param": None,
                                    "code": None})
        message = (f"Incorrect API key provided: {key}. You can find your API key at "
                   "https://platform.openai.com/account/api-keys.")
        return self.error(401, {"message": message, "type": "invalid_request_error", "param": None,
                                "code": "invalid_api_key"})

    def error(self, status: int, inner: dict[str, Any], headers: dict[str, str] | None = None) -> web.Response:
        if headers is None and status == 429:
            headers = {"retry-after": "20", "x-ratelimit-limit-requests": "3",
                       "x-ratelimit-remaining-requests": "0"}
        return web.Response(status=status, body=_encode({"error": inner}), headers=headers,
                            content_type="application/json")

    def scripted_error(self, model: str, request: web.Request) -> web.Response | None:
        if model in NAMED_ERRORS:
            return self.error(400, NAMED_ERRORS[model])
        if not (model.startswith("error-") and model[len("error-"):].isdigit()):
            return None
        status = int(model.removeprefix("error-"))
        if status == 401:
            return self.error(401, {"message": f"Incorrect API key provided: {self.presented_key(request)}. "
                                               "You can find your API key at https://platform.openai.com/account/api-keys.",
                                    "type": "invalid_request_error", "param": None, "code": "invalid_api_key"})
        return self.error(status, OPENAI_ERRORS[status])

    async def silent(self, request: web.Request, model: str, body: dict[str, Any]) -> web.StreamResponse:
        """One chunk, then no content (a model thinking), only SSE comments every 20 ms as
        OpenRouter sends them; ``stream_abandoned`` is set once the reader has gone (a write
        fails: the server does not read while it handles a request, so it sees no close)."""
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream; charset=utf-8"})
        await resp.prepare(request)
        chunk = self.chunk(model, body, [{"index": 0, "delta": {"content": "thinking"}, "logprobs": None,
                                          "finish_reason": None}])
        try:
            await resp.write(b"data: " + _encode(chunk) + b"\n\n")
            for _ in range(int(LONG_SECONDS / 0.02)):
                await asyncio.sleep(0.02)
                await resp.write(b": still thinking\n\n")
        except (asyncio.CancelledError, ConnectionError):
            self.stream_abandoned.set()
            raise
        return resp

    async def drip(self, request: web.Request, model: str, body: dict[str, Any]) -> web.StreamResponse:
        """A long stream, one chunk every 20 ms; ``stream_abandoned`` is set if the reader goes away."""
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream; charset=utf-8"})
        await resp.prepare(request)
        try:
            for _ in range(int(LONG_SECONDS / 0.02)):
                chunk = self.chunk(model, body, [{"index": 0, "delta": {"content": "tick "}, "logprobs": None,
                                                  "finish_reason": None}])
                await resp.write(b"data: " + _encode(chunk) + b"\n\n")
                await asyncio.sleep(0.02)
            await resp.write(b"data: [DONE]\n\n")
        except (asyncio.CancelledError, ConnectionError):
            self.stream_abandoned.set()
            raise
        self.stream_finished.set()
        return resp

    # ------------------------------------------------------------ chat

    def reply_text(self, body: dict[str, Any]) -> str:
        if body.get("model") == "huge":
            return HUGE_REPLY
        users = [m for m in body.get("messages") or [] if m.get("role") in ("user", "tool")]
        said = _text_of(users[-1].get("content")) if users else ""
        return f"{self.greeting} {said}".strip()

    def tool_call(self, body: dict[str, Any]) -> dict[str, Any] | None:
        tools = body.get("tools") or []
        choice = body.get("tool_choice")
        messages = body.get("messages") or []
        if not tools or choice == "none" or (messages and messages[-1].get("role") == "tool"):
            return None
        wanted = choice.get("function", {}).get("name") if isinstance(choice, dict) else None
        functions = [t["function"] for t in tools if t.get("type") == "function"]
        if not functions:  # GPT-5's custom (free-form) tools
            custom = {"name": tools[0]["custom"]["name"], "input": "print('Paris')"}
            return {"id": "call_fake0002", "type": "custom", "custom": custom}
        fn = next((f for f in functions if f["name"] == wanted), functions[0])
        props = (fn.get("parameters") or {}).get("properties") or {}
        args = _encode({name: "Paris" for name in props}).decode()
        return {"id": "call_fake0001", "type": "function", "function": {"name": fn["name"], "arguments": args}}

    def served_model(self, model: str) -> str:
        return model + self.served_model_suffix

    def logprobs(self, text: str) -> dict[str, Any]:
        return {"content": [{"token": w, "logprob": -0.25, "bytes": list(w.encode()), "top_logprobs": []}
                            for w in text.split(" ")], "refusal": None}

    def completion(self, model: str, body: dict[str, Any]) -> dict[str, Any]:
        n = body.get("n") or 1
        call = self.tool_call(body)
        text = None if call else self.reply_text(body)
        message = {"role": "assistant", "content": text, "refusal": None, "annotations": []}
        if call:
            message["tool_calls"] = [call]
            if model == "no-tool-id":  # (Ollama's and older vLLM's answers)
                del call["id"]
        choices = [{"index": i, "message": message,
                    "logprobs": self.logprobs(text) if body.get("logprobs") and text else None,
                    "finish_reason": "tool_calls" if call else "stop"} for i in range(n)]
        return {
            "id": "chatcmpl-fake0001", "object": "chat.completion", "created": CREATED,
            "model": self.served_model(model), "choices": choices, "usage": self.usage(text),
            "service_tier": "default", "system_fingerprint": "fp_fake0001",
        }

    def usage(self, text: str | None) -> dict[str, Any]:
        completion = len((text or "x").split())
        return {"prompt_tokens": 9, "completion_tokens": completion, "total_tokens": 9 + completion,
                "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
                "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                                              "accepted_prediction_tokens": 0,
                                              "rejected_prediction_tokens": 0}}

    def chunk(self, model: str, body: dict[str, Any], choices: list[dict[str, Any]]) -> dict[str, Any]:
        out = {"id": "chatcmpl-fake0001", "object": "chat.completion.chunk", "created": CREATED,
               "model": self.served_model(model), "service_tier": "default",
               "system_fingerprint": "fp_fake0001", "choices": choices, "obfuscation": "xyz"}
        if (body.get("stream_options") or {}).get("include_usage"):
            out["usage"] = None  # OpenAI sends an explicit null on every chunk but the last
        return out

    def stream_events(self, model: str, body: dict[str, Any]) -> list[dict[str, Any]]:
        """OpenAI's chunks: role first, then content (or tool-call pieces), the finish, usage."""
        n = body.get("n") or 1
        call = self.tool_call(body)
        text = None if call else self.reply_text(body)
        events = []
        for i in range(n):
            if call:
                first = {"role": "assistant", "content": None, "refusal": None, "tool_calls": [
                    {"index": 0, "id": call["id"], "type": "function",
                     "function": {"name": call["function"]["name"], "arguments": ""}}]}
                events.append(self.chunk(model, body, [{"index": i, "delta": first, "logprobs": None,
                                                        "finish_reason": None}]))
                args = call["function"]["arguments"]
                for start in range(0, len(args), 5):
                    delta = {"tool_calls": [{"index": 0, "function": {"arguments": args[start:start + 5]}}]}
                    events.append(self.chunk(model, body, [{"index": i, "delta": delta, "logprobs": None,
                                                            "finish_reason": None}]))
            else:
                events.append(self.chunk(model, body, [{"index": i, "delta": {"role": "assistant", "content": "",
                                                                              "refusal": None},
                                                        "logprobs": None, "finish_reason": None}]))
                words = (text or "").split(" ")
                for w, word in enumerate(words):
                    piece = word if w == len(words) - 1 else word + " "
                    events.append(self.chunk(model, body, [{"index": i, "delta": {"content": piece},
                                                            "logprobs": None, "finish_reason": None}]))
            events.append(self.chunk(model, body, [{"index": i, "delta": {}, "logprobs": None,
                                                    "finish_reason": "tool_calls" if call else "stop"}]))
        if (body.get("stream_options") or {}).get("include_usage"):
            last = self.chunk(model, body, [])
            last["usage"] = self.usage(text)
            events.append(last)
        return events

    async def answer_chat(self, request: web.Request, model: str, body: dict[str, Any]) -> web.StreamResponse:
        script = self.script.get(model)
        if script:
            step = script.pop(0) if len(script) > 1 else script[0]
            if isinstance(step, dict):
                if step.get("hold"):
                    await self.gates[model].wait()
                return self.error(step["status"], OPENAI_ERRORS[step["status"]], step.get("headers"))
            if step == "hold":
                await self.gates[model].wait()
            elif step != "ok":
                model = step
        failed = self.scripted_error(model, request)
        if failed is not None:
            return failed
        if model == "slow":
            await asyncio.sleep(SLOW_SECONDS)
        if not body.get("stream"):
            answer = self.completion(model, body)
            if model == "cut":
                return await fake_wire.cut_json(request, _encode(answer))
            return web.Response(body=_encode(answer), content_type="application/json")
        events = self.stream_events(model, body)
        if model == "cut":
            return await fake_wire.cut_sse(request, events)
        if model == "cut-first":
            return await fake_wire.cut_sse(request, events, after=0)
        if model == "stall":
            return await fake_wire.sse(request, events, pause_after=2)
        if model == "drip":
            return await self.drip(request, model, body)
        if model == "silent":
            return await self.silent(request, model, body)
        if model == "no-done":  # every chunk, a clean end of the body, but no [DONE] (older servers)
            return await fake_wire.sse(request, events, done=False)
        if model == "no-done-early":  # a clean end of the body before any finish_reason
            return await fake_wire.sse(request, events[:2], done=False)
        if model == "no-done-cut":  # a clean end of the body inside the finish event, after `"finish_reason":"st`
            at = max(i for i, e in enumerate(events) if any(c.get("finish_reason") for c in e["choices"]))
            last = b"data: " + _encode(events[at])
            return await fake_wire.sse(request, events[:at], done=False, tail=last[:last.index(b'"finish_reason":"') + 19])
        if model == "odd-framing":
            return await fake_wire.odd_framing(request, events)
        if model == "error-mid-stream":
            return await fake_wire.sse(request, [*events[:2], {"error": MID_STREAM_ERROR}], done=False)
        if model == "error-first":
            return await fake_wire.sse(request, [{"error": MID_STREAM_ERROR}], done=False)
        if model == "bad-chunk":
            return await fake_wire.sse(request, [*events[:2], b'{"id": "x", not json'], done=False)
        if model == "error-in-chunk":  # OpenRouter's way: a chunk with an error and finish_reason "error"
            failed = self.chunk(model, body, [{"index": 0, "delta": {"content": ""}, "finish_reason": "error"}])
            failed["error"] = {"code": 502, "message": "Provider disconnected unexpectedly"}
            return await fake_wire.sse(request, [*events[:2], failed])
        return await fake_wire.sse(request, events)

    # ------------------------------------------------------------ embeddings, moderations, models

    def embeddings_answer(self, model: str, body: dict[str, Any]) -> dict[str, Any]:
        inputs = body["input"]
        items = [inputs] if isinstance(inputs, str) or (inputs and isinstance(inputs[0], int)) else inputs
        dims = body.get("dimensions") or 4
        data = []
        for i, _ in enumerate(items):
            vector = embedding_vector(i, dims)
            value: Any = vector
            if body.get("encoding_format") == "base64":
                value = base64.b64encode(struct.pack(f"<{dims}f", *vector)).decode()
            data.append({"object": "embedding", "index": i, "embedding": value})
        tokens = sum(len(x) if isinstance(x, list) else len(x.split()) for x in items)
        return {"object": "list", "data": data, "model": self.served_model(model),
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}


class OpenAIFake(FakeUpstream):
    """api.openai.com/v1: Bearer auth, chat (JSON and SSE), embeddings, moderations, models."""

    greeting = "Hello from OpenAI."

    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_post("/v1/chat/completions", self.chat)
        router.add_post("/v1/embeddings", self.embeddings)
        router.add_post("/v1/moderations", self.moderations)
        router.add_get("/v1/models", self.models)

    async def chat(self, request: web.Request) -> web.StreamResponse:
        got = await self.record(request)
        return self.auth_error(request) or await self.answer_chat(request, got.body["model"], got.body)

    async def embeddings(self, request: web.Request) -> web.StreamResponse:
        got = await self.record(request)
        model = got.body["model"]
        failed = self.auth_error(request) or self.scripted_error(model, request)
        if failed is not None:
            return failed
        return web.json_response(self.embeddings_answer(model, got.body), dumps=lambda o: _encode(o).decode())

    async def moderations(self, request: web.Request) -> web.StreamResponse:
        got = await self.record(request)
        failed = self.auth_error(request)
        if failed is not None:
            return failed
        inputs = got.body["input"]
        results = []
        for item in [inputs] if isinstance(inputs, str) else inputs:
            text = _text_of([item]) if isinstance(item, dict) else item
            violent = "kill" in text.lower()
            results.append({
                "flagged": violent,
                "categories": {c: (c == "violence" and violent) for c in MODERATION_CATEGORIES},
                "category_scores": {c: 0.97 if c == "violence" and violent else 1e-05 for c in MODERATION_CATEGORIES},
                "category_applied_input_types": {c: ["text"] for c in MODERATION_CATEGORIES},
            })
        answer = {"id": "modr-fake0001", "model": got.body.get("model") or "omni-moderation-latest",
                  "results": results}
        return web.Response(body=_encode(answer), content_type="application/json")

    async def models(self, request: web.Request) -> web.StreamResponse:
        await self.record(request)
        failed = self.auth_error(request)
        if failed is not None:
            return failed
        data = [{"id": name, "object": "model", "created": CREATED, "owned_by": "system"}
                for name in ("gpt-4o-mini", "text-embedding-3-small", "omni-moderation-latest")]
        return web.Response(body=_encode({"object": "list", "data": data}), content_type="application/json")


_AZURE_FILTER = {name: {"filtered": False, "severity": "safe"} for name in ("hate", "self_harm", "sexual", "violence")}


class AzureFake(FakeUpstream):
    """Azure OpenAI: ``/openai/deployments/{deployment}/...?api-version=``, the ``api-key`` header,
    content-filter results, a first stream chunk with ``choices: []``, and the asynchronous
    filter's annotation chunk (a choice without ``delta``, ``object: ""``)."""

    greeting = "Hello from Azure."
    served_model_suffix = "-2024-07-18"

    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_post("/openai/deployments/{deployment}/chat/completions", self.chat)
        router.add_post("/openai/deployments/{deployment}/embeddings", self.embeddings)

    def served_model(self, model: str) -> str:
        return "gpt-4o-mini" + self.served_model_suffix

    def auth_error(self, request: web.Request) -> web.Response | None:
        if "api-version" not in request.query:
            return web.Response(status=404, body=_encode({"error": {"code": "404", "message": "Resource not found"}}),
                                content_type="application/json")
        if self.api_key is not None and request.headers.get("api-key") != self.api_key:
            message = ("Access denied due to invalid subscription key or wrong API endpoint. Make sure to "
                       "provide a valid key for an active subscription and use a correct regional API "
                       "endpoint for your resource.")
            return web.Response(status=401, body=_encode({"error": {"code": "401", "message": message}}),
                                content_type="application/json")
        return None

    def completion(self, model: str, body: dict[str, Any]) -> dict[str, Any]:
        out = super().completion(model, body)
        out["prompt_filter_results"] = [{"prompt_index": 0, "content_filter_results": _AZURE_FILTER}]
        for choice in out["choices"]:
            choice["content_filter_results"] = _AZURE_FILTER
        del out["service_tier"]
        return out

    def stream_events(self, model: str, body: dict[str, Any]) -> list[dict[str, Any]]:
        events = super().stream_events(model, body)
        for event in events:
            event.pop("service_tier", None)
            event.pop("obfuscation", None)
            for choice in event["choices"]:
                choice["content_filter_results"] = {} if choice["delta"].get("role") else _AZURE_FILTER
        first = {"choices": [], "created": 0, "id": "", "model": "", "object": "",
                 "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": _AZURE_FILTER}]}
        # the asynchronous content filter's annotation: a choice with no delta
        annotation = {"choices": [{"index": 0, "finish_reason": None, "content_filter_results": _AZURE_FILTER,
                                   "content_filter_offsets": {"check_offset": 0, "start_offset": 0, "end_offset": 40}}],
                      "created": 0, "id": "", "model": "", "object": "", "usage": None}
        *body, last = events
        if last["choices"]:  # no usage chunk: the annotation comes last
            return [first, *events, annotation]
        return [first, *body, annotation, last]

    async def chat(self, request: web.Request) -> web.StreamResponse:
        got = await self.record(request)
        deployment = request.match_info["deployment"]
        return self.auth_error(request) or await self.answer_chat(request, deployment, got.body)

    async def embeddings(self, request: web.Request) -> web.StreamResponse:
        got = await self.record(request)
        failed = self.auth_error(request)
        if failed is not None:
            return failed
        answer = self.embeddings_answer(request.match_info["deployment"], got.body)
        answer["model"] = "text-embedding-3-small"
        return web.Response(body=_encode(answer), content_type="application/json")


class VLLMFake(FakeUpstream):
    """A vLLM-like OpenAI-compatible server: ``system_fingerprint: null``, ``reasoning_content``,
    ``prompt_logprobs``, ``stop_reason``, logprobs without ``refusal``, ``tool_calls: []``, and
    extra sampling params (``top_k``, ``repetition_penalty``, ``guided_json``...) accepted."""

    greeting = "Hello from vLLM."

    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_post("/v1/chat/completions", self.chat)
        router.add_post("/v1/embeddings", self.embeddings)

    def logprobs(self, text: str) -> dict[str, Any]:
        return {"content": super().logprobs(text)["content"]}  # vLLM has no "refusal" key

    def completion(self, model: str, body: dict[str, Any]) -> dict[str, Any]:
        out = super().completion(model, body)
        for choice in out["choices"]:
            message = choice["message"]
            message.pop("annotations")
            message.setdefault("tool_calls", [])
            message.update(reasoning_content="Thinking about it.", function_call=None, audio=None)
            choice["stop_reason"] = None
            if model == "quirky":
                choice["finish_reason"] = None
        out.update(system_fingerprint=None, service_tier=None, prompt_logprobs=None, kv_transfer_params=None)
        out["usage"].update(prompt_tokens_details=None)
        del out["usage"]["completion_tokens_details"]
        return out

    def stream_events(self, model: str, body: dict[str, Any]) -> list[dict[str, Any]]:
        events = super().stream_events(model, body)
        for event in events:
            event.pop("service_tier")
            event.pop("obfuscation")
            event["system_fingerprint"] = None
            for choice in event["choices"]:
                choice["delta"].pop("refusal", None)
                if choice["finish_reason"] is not None:
                    choice["stop_reason"] = None
                if model == "quirky":
                    choice["finish_reason"] = "eos_token" if choice["finish_reason"] else ""
        reasoning = self.chunk(model, body, [{"index": 0, "delta": {"reasoning_content": "Thinking."},
                                              "logprobs": None, "finish_reason": "" if model == "quirky" else None}])
        reasoning.pop("service_tier")
        reasoning.pop("obfuscation")
        reasoning["system_fingerprint"] = None
        return [events[0], reasoning, *events[1:]]

    async def chat(self, request: web.Request) -> web.StreamResponse:
        got = await self.record(request)
        return self.auth_error(request) or await self.answer_chat(request, got.body["model"], got.body)

    async def embeddings(self, request: web.Request) -> web.StreamResponse:
        got = await self.record(request)
        answer = self.embeddings_answer(got.body["model"], got.body)
        answer.update(id="embd-fake0001", created=CREATED)
        answer["usage"].update(completion_tokens=0, prompt_tokens_details=None)
        return web.Response(body=_encode(answer), content_type="application/json")


start = kit.start
Received = kit.Received

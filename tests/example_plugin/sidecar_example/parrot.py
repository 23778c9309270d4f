"""The ``parrot`` provider: what a real plugin does, for a made-up HTTP API whose wire format is
not OpenAI's.

The Parrot API (``https://api.parrot.example``; the key in ``X-Parrot-Key``):

- ``POST /v2/squawk``: chat. ``{"bird", "conversation": [{"speaker": "human"|"bird"|"tool",
  "words", "tricks_done"?, "answers_ticket"?}], "guide"?, "loudness"?, "nucleus"?, "most_words"?,
  "hush_on"?, "tricks"?: [{"trick", "about", "shape"}], "trick_mode"?: "auto"|"none"|"must"|
  {"only": name}, "chirp"?}``. Answers ``{"squawk_id", "bird", "said", "tricks_done": [{"ticket",
  "trick", "with"}], "why_stopped": "done"|"out_of_words"|"trick"|"muzzled", "beak_count":
  {"heard", "said"}}``; with ``chirp: true``, newline-delimited JSON lines of ``kind`` ``start``,
  ``words`` (``text``), ``trick`` (``ticket``, ``trick`` on its first line, ``with_part``: pieces
  of the arguments' JSON), ``end`` (``why_stopped``, ``beak_count``) or ``oops`` (``problem``).
- ``POST /v2/mimic``: embeddings. ``{"bird", "phrases", "size"?}`` -> ``{"echoes": [{"position",
  "vector"}], "beak_count": {"heard"}}``.
- Errors: ``{"problem": {"category", "explanation", "wait_seconds"?}}``; categories ``too_fast``
  (429, the wait in the body, not in a header), ``too_long`` (413), ``rude`` (422), ``bad_key``
  (403), ``no_such_bird`` (404), ``broken`` (500).

Credentials: ``api_key`` (else ``$PARROT_API_KEY``), ``api_base`` (else ``$PARROT_API_BASE``), and
``flock`` (the organisation's secret, sent as ``X-Parrot-Flock``: a credential whose name the core
does not know as one, hence ``secret_params``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import aclosing
from typing import Any

import aiohttp
import msgspec

from sidecar import (
    ApiAccess,
    ChatCompletion,
    ChatCompletionChunk,
    Choice,
    ChunkChoice,
    Delta,
    Embedding,
    EmbeddingResponse,
    EmbeddingUsage,
    FunctionCall,
    Provider,
    ProviderCall,
    ProviderError,
    ResponseMessage,
    ToolCall,
    Usage,
    iter_ndjson_batches,
    open_stream,
    post_json,
    raw_vector,
    timeout_for,
)

ACCESS = ApiAccess("parrot", key_envs=("PARROT_API_KEY",), base_envs=("PARROT_API_BASE",),
                   default_base="https://api.parrot.example", key_header="X-Parrot-Key", key_prefix="",
                   key_required=True)
"""Where the key and base URL come from (litellm_params, else the environment) and how they are sent."""
CHAT_PARAMS = ["stream", "stream_options", "temperature", "top_p", "max_tokens", "max_completion_tokens", "stop",
               "tools", "tool_choice"]
EMBEDDING_PARAMS = ["dimensions"]
FINISH = {"done": "stop", "out_of_words": "length", "trick": "tool_calls", "muzzled": "content_filter"}
SPEAKERS = {"user": "human", "assistant": "bird", "tool": "tool"}


# ---------------------------------------------------------------- the Parrot API's answers


class _Problem(msgspec.Struct):
    category: str = "broken"
    explanation: str = ""
    wait_seconds: float | None = None


class _ProblemEnvelope(msgspec.Struct):
    problem: _Problem | None = None


class _Trick(msgspec.Struct):
    ticket: str = ""
    trick: str = ""
    with_: dict[str, Any] = msgspec.field(default_factory=dict, name="with")


class _BeakCount(msgspec.Struct):
    heard: int = 0
    said: int = 0


class _Squawk(msgspec.Struct):
    squawk_id: str
    bird: str
    said: str = ""
    tricks_done: list[_Trick] = []
    why_stopped: str = "done"
    beak_count: _BeakCount = msgspec.field(default_factory=_BeakCount)


class _Line(msgspec.Struct):
    """One line of a chirped (streamed) squawk."""

    kind: str
    squawk_id: str = ""
    bird: str = ""
    text: str = ""
    ticket: str = ""
    trick: str = ""
    with_part: str = ""
    why_stopped: str = ""
    beak_count: _BeakCount | None = None
    problem: _Problem | None = None


class _Echo(msgspec.Struct):
    position: int
    vector: list[float]


class _Mimicry(msgspec.Struct):
    echoes: list[_Echo]
    beak_count: _BeakCount = msgspec.field(default_factory=_BeakCount)


_squawk = msgspec.json.Decoder(_Squawk)
_lines = msgspec.json.Decoder(list[_Line])
_mimicry = msgspec.json.Decoder(_Mimicry)
_problem = msgspec.json.Decoder(_ProblemEnvelope)
_encode = msgspec.json.Encoder().encode


def parrot_error(status: int, body: bytes, provider: str, headers: Mapping[str, str] | None = None) -> ProviderError:
    """The Parrot API's error body as a ProviderError with the router's kind and OpenAI's status
    and code (the ``parse_error=`` of :func:`sidecar.post_json` and :func:`sidecar.open_stream`)."""
    try:
        problem = _problem.decode(body).problem or _Problem()
    except (msgspec.DecodeError, RecursionError):
        problem = _Problem(explanation=body[:200].decode("utf-8", "replace"))
    return _mapped(problem, provider, status)


def _mapped(problem: _Problem, provider: str, status: int) -> ProviderError:
    text = f"{provider} upstream answered {status}: {problem.explanation or problem.category}"
    category = problem.category
    if category == "too_fast":
        wait = {"Retry-After": str(max(int(-(-problem.wait_seconds // 1)), 1))} if problem.wait_seconds else None
        return ProviderError(429, text, kind="rate_limit", code="rate_limit_exceeded", headers=wait)
    if category == "too_long":
        return ProviderError(400, text, kind="context_window", code="context_length_exceeded", param="messages")
    if category == "rude":
        return ProviderError(400, text, kind="content_policy", code="content_policy_violation")
    if category == "bad_key":
        return ProviderError(401, text, kind="auth", code="invalid_api_key")
    if category == "no_such_bird":
        return ProviderError(404, text, kind="not_found", code="model_not_found", param="model")
    return ProviderError(status if status >= 400 else 502, text)


# ---------------------------------------------------------------- OpenAI's request, in Parrot's words


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if not isinstance(part, dict) or part.get("type") != "text":
                raise ProviderError(400, "parrot hears text only: send `content` as text parts",
                                    param="messages", code="unsupported_content")
            parts.append(part.get("text") or "")
        return "".join(parts)
    return ""


def squawk_body(call: ProviderCall) -> dict[str, Any]:
    """The ``/v2/squawk`` request for an OpenAI chat request."""
    sent = call.body
    guide: list[str] = []
    conversation = []
    for message in sent["messages"]:
        role = message.get("role")
        if role in ("system", "developer"):
            guide.append(_text(message.get("content")))
            continue
        turn: dict[str, Any] = {"speaker": SPEAKERS.get(role, "human"), "words": _text(message.get("content"))}
        if role == "assistant" and message.get("tool_calls"):
            turn["tricks_done"] = [{"ticket": c["id"], "trick": c["function"]["name"],
                                    "with": msgspec.json.decode(c["function"].get("arguments") or "{}")}
                                   for c in message["tool_calls"]]
        if role == "tool":
            turn["answers_ticket"] = message.get("tool_call_id")
        conversation.append(turn)
    body: dict[str, Any] = {"bird": call.model, "conversation": conversation}
    if guide:
        body["guide"] = "\n".join(guide)
    for ours, theirs in (("temperature", "loudness"), ("top_p", "nucleus")):
        if sent.get(ours) is not None:
            body[theirs] = sent[ours]
    most = sent.get("max_completion_tokens", sent.get("max_tokens"))
    if most is not None:
        body["most_words"] = most
    stop = sent.get("stop")
    if stop:
        body["hush_on"] = [stop] if isinstance(stop, str) else list(stop)
    if sent.get("tools"):
        body["tricks"] = [{"trick": t["function"]["name"], "about": t["function"].get("description", ""),
                           "shape": t["function"].get("parameters") or {"type": "object"}}
                          for t in sent["tools"] if t.get("type") == "function"]
        body["trick_mode"] = _trick_mode(sent.get("tool_choice"))
    if call.stream:
        body["chirp"] = True
    return body


def _trick_mode(choice: Any) -> Any:
    if isinstance(choice, dict):
        return {"only": choice["function"]["name"]}
    return {"none": "none", "required": "must"}.get(choice, "auto")


def _usage(count: _BeakCount) -> Usage:
    return Usage(prompt_tokens=count.heard, completion_tokens=count.said, total_tokens=count.heard + count.said)


def completion_of(answer: _Squawk) -> ChatCompletion:
    calls = [ToolCall(id=t.ticket, function=FunctionCall(name=t.trick, arguments=_encode(t.with_).decode()))
             for t in answer.tricks_done]
    message = ResponseMessage(content=None if calls else answer.said, tool_calls=calls or None)
    choice = Choice(index=0, message=message, finish_reason=FINISH.get(answer.why_stopped, "stop"))
    return ChatCompletion(id=f"chatcmpl-{answer.squawk_id}", model=answer.bird, choices=[choice],
                          usage=_usage(answer.beak_count))


class ChirpState:
    """What a streamed answer's chunks share: its id and model, the tricks seen, whether it ended."""

    def __init__(self, model: str, provider: str) -> None:
        self.id, self.model, self.provider = "chatcmpl-parrot", model, provider
        self.tickets: dict[str, int] = {}
        self.ended = False

    def chunks(self, line: _Line) -> list[ChatCompletionChunk]:
        """The chunks for one line (an ``oops`` line raises)."""
        if line.kind == "start":
            self.id, self.model = f"chatcmpl-{line.squawk_id}", line.bird or self.model
            return [self._chunk(Delta(role="assistant", content=""))]
        if line.kind == "words":
            return [self._chunk(Delta(content=line.text))] if line.text else []
        if line.kind == "trick":
            first = line.ticket not in self.tickets
            index = self.tickets.setdefault(line.ticket, len(self.tickets))
            piece: dict[str, Any] = {"index": index, "function": {"arguments": line.with_part}}
            if first:
                piece.update(id=line.ticket, type="function")
                piece["function"]["name"] = line.trick
            return [self._chunk(Delta(tool_calls=[piece]))]
        if line.kind == "end":
            self.ended = True
            out = [self._chunk(Delta(), FINISH.get(line.why_stopped, "stop"))]
            if line.beak_count is not None:  # (the core drops it for a client that did not ask)
                out.append(ChatCompletionChunk(id=self.id, model=self.model, choices=[], usage=_usage(line.beak_count)))
            return out
        if line.kind == "oops":
            raise _mapped(line.problem or _Problem(), self.provider, 500)
        return []  # a kind this version does not know: skipped, as the API's docs ask

    def _chunk(self, delta: Delta, finish: str | None = None) -> ChatCompletionChunk:
        return ChatCompletionChunk(id=self.id, model=self.model, choices=[ChunkChoice(index=0, delta=delta,
                                                                                       finish_reason=finish)])


# ---------------------------------------------------------------- the provider


class ParrotProvider(Provider):
    """``parrot/<bird>``: the Parrot API's ``/v2/squawk`` (chat) and ``/v2/mimic`` (embeddings)."""

    name = "parrot"
    capabilities = frozenset({"chat", "embedding"})
    description = "the Parrot API (a made-up, non-OpenAI wire format): chat, streams, tricks, embeddings"

    def supported_openai_params(self, model: str, capability: str | None = None) -> list[str]:
        if capability == "embedding":
            return list(EMBEDDING_PARAMS)
        if capability == "chat":
            return list(CHAT_PARAMS)
        return CHAT_PARAMS + EMBEDDING_PARAMS  # (asked without a capability: either endpoint)

    def secret_params(self) -> frozenset[str]:
        return frozenset({"flock"})

    def ambient_credentials(self, params: Mapping[str, Any]) -> list[str]:
        """The key and base read from the environment, so the core masks them too."""
        return ACCESS.ambient(params)

    def _headers(self, params: Mapping[str, Any]) -> dict[str, str]:
        return ACCESS.headers(params, {"X-Parrot-Flock": str(params["flock"])} if params.get("flock") else None)

    async def chat(self, call: ProviderCall) -> ChatCompletion | AsyncIterator[list[ChatCompletionChunk]]:
        url, headers = ACCESS.url(call.params, "/v2/squawk"), self._headers(call.params)
        body = _encode(squawk_body(call))
        if not call.stream:
            answer = await post_json(call.session, url, body, headers, timeout_for(call.params, False), _squawk,
                                     self.name, parse_error=parrot_error)
            return completion_of(answer)
        # the upstream's refusal (a 429, a bad key...) raises here, before the first chunk
        resp = await open_stream(call.session, url, body, headers, timeout_for(call.params, True), self.name,
                                 parse_error=parrot_error)
        return self._chunks(resp, ChirpState(call.model, self.name))

    async def _chunks(self, resp: aiohttp.ClientResponse,
                      state: ChirpState) -> AsyncIterator[list[ChatCompletionChunk]]:
        async with aclosing(iter_ndjson_batches(resp, self.name)) as batches:
            async for raw in batches:  # the lines of one network read, decoded in one call
                try:
                    lines = _lines.decode(b"[" + b",".join(raw) + b"]")
                except (msgspec.DecodeError, RecursionError) as exc:
                    raise ProviderError(502, f"{self.name} upstream sent a line that is not valid: {exc}",
                                        code="bad_upstream_response") from None
                out: list[ChatCompletionChunk] = []
                try:
                    for line in lines:
                        out += state.chunks(line)
                except ProviderError:
                    if out:
                        yield out  # what came before the failure still reaches the client
                    raise
                if out:
                    yield out
                if state.ended:
                    return
        raise ProviderError(502, f"{self.name} upstream ended the stream before its end line",
                            code="upstream_disconnected")

    async def embeddings(self, call: ProviderCall) -> EmbeddingResponse:
        phrases = call.body["input"]
        phrases = [phrases] if isinstance(phrases, str) else phrases
        if not all(isinstance(p, str) for p in phrases):
            raise ProviderError(400, "parrot mimics text only: send `input` as a string or a list of strings",
                                param="input", code="invalid_input")
        body: dict[str, Any] = {"bird": call.model, "phrases": phrases}
        if call.body.get("dimensions") is not None:
            body["size"] = call.body["dimensions"]
        answer = await post_json(call.session, ACCESS.url(call.params, "/v2/mimic"), _encode(body),
                                 self._headers(call.params), timeout_for(call.params, False), _mimicry, self.name,
                                 parse_error=parrot_error)
        data = [Embedding(index=e.position, embedding=raw_vector(e.vector))  # (base64 is the core's job)
                for e in sorted(answer.echoes, key=lambda e: e.position)]
        heard = answer.beak_count.heard
        return EmbeddingResponse(data=data, model=call.model,
                                 usage=EmbeddingUsage(prompt_tokens=heard, total_tokens=heard))


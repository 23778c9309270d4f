"""Gemini's ``GenerateContentResponse`` (whole, or one event of a stream) as OpenAI's chat
completion and chunks: text, thoughts as ``reasoning_content``, function calls as tool calls,
finish reasons and usage in OpenAI's words."""

from __future__ import annotations

import math
import uuid
from typing import Any

import msgspec

from sidecar import (
    ChatCompletion,
    ChatCompletionChunk,
    Choice,
    ChunkChoice,
    Delta,
    FunctionCall,
    ProviderError,
    ResponseMessage,
    ToolCall,
    Usage,
)
from sidecar_google.request import THOUGHT_SEPARATOR


class FunctionCallPart(msgspec.Struct):
    name: str = ""
    args: Any = None
    id: str | None = None


class Part(msgspec.Struct, rename="camel"):
    text: str | None = None
    thought: bool = False
    thought_signature: str | None = None
    function_call: FunctionCallPart | None = None


class Content(msgspec.Struct):
    parts: list[Part] = []
    role: str = "model"


class Candidate(msgspec.Struct, rename="camel"):
    content: Content | None = None
    finish_reason: str | None = None
    index: int = 0


class PromptFeedback(msgspec.Struct, rename="camel"):
    block_reason: str | None = None
    block_reason_message: str | None = None


class UsageMetadata(msgspec.Struct, rename="camel"):
    prompt_token_count: int = 0
    candidates_token_count: int = 0
    total_token_count: int = 0
    cached_content_token_count: int = 0
    thoughts_token_count: int = 0
    tool_use_prompt_token_count: int = 0


class GoogleError(msgspec.Struct):
    code: int = 500
    message: str = ""
    status: str = ""
    details: list[Any] = []


class GenerateContentResponse(msgspec.Struct, rename="camel"):
    candidates: list[Candidate] = []
    prompt_feedback: PromptFeedback | None = None
    usage_metadata: UsageMetadata | None = None
    model_version: str | None = None
    response_id: str | None = None
    error: GoogleError | None = None


FINISH_REASONS = {"STOP": "stop", "MAX_TOKENS": "length", "SAFETY": "content_filter",
                  "RECITATION": "content_filter", "PROHIBITED_CONTENT": "content_filter",
                  "BLOCKLIST": "content_filter", "SPII": "content_filter", "IMAGE_SAFETY": "content_filter",
                  "IMAGE_PROHIBITED_CONTENT": "content_filter"}
"""Gemini's finish reasons in OpenAI's words; others (OTHER, LANGUAGE...) are ``stop``."""

_encode = msgspec.json.Encoder().encode


def usage_of(meta: UsageMetadata | None) -> Usage:
    """``usageMetadata`` as OpenAI's usage: thoughts count as completion tokens (they are billed as
    output), and are told apart in ``completion_tokens_details``, cached prompt tokens in
    ``prompt_tokens_details``."""
    if meta is None:
        return Usage()
    prompt = meta.prompt_token_count + meta.tool_use_prompt_token_count
    completion = meta.candidates_token_count + meta.thoughts_token_count
    return Usage(prompt_tokens=prompt, completion_tokens=completion,
                 total_tokens=meta.total_token_count or prompt + completion,
                 prompt_tokens_details={"cached_tokens": meta.cached_content_token_count},
                 completion_tokens_details={"reasoning_tokens": meta.thoughts_token_count})


def blocked(answer: GenerateContentResponse, provider: str) -> ProviderError | None:
    """The error for a prompt Gemini refused (``promptFeedback.blockReason``) or an answer it
    blocked before any content (a candidate finishing ``SAFETY`` and the like, empty): a
    ``content_policy`` failure, so content-policy fallbacks apply."""
    feedback = answer.prompt_feedback
    if feedback is not None and feedback.block_reason:
        detail = f": {feedback.block_reason_message}" if feedback.block_reason_message else ""
        return ProviderError(400, f"{provider} blocked the prompt ({feedback.block_reason}){detail}",
                             kind="content_policy", code="content_filter")
    if answer.candidates and all(FINISH_REASONS.get(c.finish_reason or "") == "content_filter"
                                 and not (c.content and c.content.parts) for c in answer.candidates):
        return ProviderError(400, f"{provider} blocked the answer ({answer.candidates[0].finish_reason})",
                             kind="content_policy", code="content_filter")
    return None


def _tool_call(call: FunctionCallPart, signature: str | None) -> ToolCall:
    ident = call.id or f"call_{uuid.uuid4().hex}"
    if signature:
        ident = f"{ident}{THOUGHT_SEPARATOR}{signature}"
    return ToolCall(id=ident, function=FunctionCall(name=call.name, arguments=_encode(
        call.args if call.args is not None else {}).decode()))


def _split(content: Content | None) -> tuple[str, str, list[ToolCall]]:
    """(text, thoughts, tool calls) of a candidate's parts."""
    text, thoughts, calls = [], [], []
    for part in content.parts if content is not None else ():
        if part.function_call is not None:
            calls.append(_tool_call(part.function_call, part.thought_signature))
        elif part.text is not None:
            (thoughts if part.thought else text).append(part.text)
    return "".join(text), "".join(thoughts), calls


def finish_reason(reason: str | None, called: bool) -> str:
    if called:
        return "tool_calls"
    return FINISH_REASONS.get(reason or "STOP", "stop")


def completion_of(answer: GenerateContentResponse, model: str, provider: str) -> ChatCompletion:
    failed = blocked(answer, provider)
    if failed is not None:
        raise failed
    choices = []
    for i, cand in enumerate(answer.candidates):
        text, thoughts, calls = _split(cand.content)
        message = ResponseMessage(content=text if text or not calls else None, reasoning_content=thoughts or None,
                                  tool_calls=calls or None)
        choices.append(Choice(index=cand.index or i, message=message,
                              finish_reason=finish_reason(cand.finish_reason, bool(calls))))
    if not choices:
        raise ProviderError(502, f"{provider} upstream answered no candidates", code="bad_upstream_response")
    return ChatCompletion(id=new_id(answer), model=answer.model_version or model, choices=choices,
                          usage=usage_of(answer.usage_metadata))


def new_id(answer: GenerateContentResponse | None = None) -> str:
    return f"chatcmpl-{answer.response_id}" if answer is not None and answer.response_id else \
        f"chatcmpl-{uuid.uuid4().hex}"


class StreamState:
    """What one stream's chunks share: id, model, per candidate whether its role was sent and how
    many tool calls it made; the last usage seen (Gemini repeats it, growing, in every event)."""

    def __init__(self, model: str, provider: str) -> None:
        self.id = ""
        self.model = model
        self.provider = provider
        self.started: set[int] = set()
        self.calls: dict[int, int] = {}
        self.finished = False
        self.usage: UsageMetadata | None = None

    def chunks(self, event: GenerateContentResponse) -> list[ChatCompletionChunk]:
        """The chunks for one event; an error or a block before the first chunk raises."""
        if event.error is not None:
            raise google_error(event.error, self.provider)
        if not self.started:
            failed = blocked(event, self.provider)
            if failed is not None:
                raise failed
        if not self.id:
            self.id = new_id(event)
            self.model = event.model_version or self.model
        if event.usage_metadata is not None:
            self.usage = event.usage_metadata
        out = []
        for i, cand in enumerate(event.candidates):
            index = cand.index or i
            text, thoughts, calls = _split(cand.content)
            first = self.calls.get(index, 0)
            pieces = [{"index": first + n, "id": c.id, "type": "function",
                       "function": {"name": c.function.name, "arguments": c.function.arguments}}
                      for n, c in enumerate(calls)]
            self.calls[index] = first + len(pieces)
            if text or thoughts or pieces or index not in self.started:
                delta = Delta(role=None if index in self.started else "assistant", content=text or None,
                              reasoning_content=thoughts or None, tool_calls=pieces or None)
                if not (text or pieces or thoughts):
                    delta.content = ""
                out.append(self._chunk([ChunkChoice(index=index, delta=delta)]))
                self.started.add(index)
            if cand.finish_reason:
                self.finished = True
                reason = finish_reason(cand.finish_reason, self.calls[index] > 0)
                out.append(self._chunk([ChunkChoice(index=index, delta=Delta(), finish_reason=reason)]))
        return out

    def usage_chunk(self) -> ChatCompletionChunk:
        """The last chunk (``choices: []``, the usage): the core drops it for a client that did not ask."""
        return self._chunk([], usage_of(self.usage))

    def _chunk(self, choices: list[ChunkChoice], usage: Usage | None = None) -> ChatCompletionChunk:
        return ChatCompletionChunk(id=self.id or new_id(), model=self.model, choices=choices, usage=usage)


# ---------------------------------------------------------------- errors

_STATUS_FOR = {"INVALID_ARGUMENT": 400, "FAILED_PRECONDITION": 400, "OUT_OF_RANGE": 400, "UNAUTHENTICATED": 401,
               "PERMISSION_DENIED": 403, "NOT_FOUND": 404, "ALREADY_EXISTS": 409, "RESOURCE_EXHAUSTED": 429,
               "CANCELLED": 499, "DEADLINE_EXCEEDED": 504, "UNAVAILABLE": 503, "INTERNAL": 500}
_CONTEXT_WORDS = ("exceeds the maximum number of tokens", "input token count", "exceeds the maximum input",
                  "context window", "too long")
_AUTH_WORDS = ("api key not valid", "api_key_invalid", "api key expired")


class _ErrorEnvelope(msgspec.Struct):
    error: GoogleError | None = None


_envelope = msgspec.json.Decoder(_ErrorEnvelope)
_FORWARDED = ("retry-after", "retry-after-ms")


def google_error(error: GoogleError, provider: str, status: int | None = None,
                 headers: Any = None) -> ProviderError:
    """Google's ``{"error": {code, message, status}}`` as a ProviderError with the router's kind:
    RESOURCE_EXHAUSTED is a rate limit, a prompt over the context window ``context_window``, an
    invalid API key (a 400 at Google) ``auth``."""
    status = status or error.code or _STATUS_FOR.get(error.status, 500)
    text = error.message or error.status or "no message"
    lowered = text.lower()
    kind = None
    if status == 429 or error.status == "RESOURCE_EXHAUSTED":
        status, kind = 429, "rate_limit"
    elif any(w in lowered for w in _AUTH_WORDS):
        status, kind = 401, "auth"
    elif status == 400 and any(w in lowered for w in _CONTEXT_WORDS):
        kind = "context_window"
    err = ProviderError(status, f"{provider} upstream answered {status}: {text}", kind=kind,
                        code=error.status or None)
    forwarded = {k: v for k, v in headers.items() if k.lower() in _FORWARDED} if headers else {}
    wait = _retry_delay(error.details) if kind == "rate_limit" and not forwarded else None
    if wait is not None:
        forwarded = {"Retry-After": wait}
    err.headers = forwarded or None
    return err


def _retry_delay(details: list[Any]) -> str | None:
    """Seconds (rounded up) of the ``google.rpc.RetryInfo`` detail (``"retryDelay": "34s"``), with
    which Google says when to retry a RESOURCE_EXHAUSTED, as a ``Retry-After`` value."""
    for detail in details:
        if isinstance(detail, dict) and str(detail.get("@type", "")).endswith("google.rpc.RetryInfo"):
            delay = str(detail.get("retryDelay") or "").removesuffix("s")
            try:
                return str(max(math.ceil(float(delay)), 1))
            except ValueError:
                return None
    return None


def error_from_response(status: int, body: bytes, provider: str, headers: Any = None) -> ProviderError:
    """The ProviderError for a non-2xx answer, Google's envelope or not."""
    try:
        env = _envelope.decode(body)
    except (msgspec.DecodeError, RecursionError):
        env = _ErrorEnvelope()
    if env.error is None:
        text = body[:500].decode("utf-8", "replace").strip()
        env.error = GoogleError(code=status, message=text)
    return google_error(env.error, provider, status, headers)

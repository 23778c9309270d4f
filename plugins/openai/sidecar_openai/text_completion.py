"""``text-completion-openai/``: OpenAI's legacy ``/v1/completions``.

A chat request is served as LiteLLM serves it: the messages become the ``prompt`` (one
message: its text; several: one prompt string per message, as LiteLLM's ``_transform_prompt``
does) and each completion ``choices[].text`` becomes a chat choice; streams likewise.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

import aiohttp
import msgspec

from sidecar import (
    OPENAI_COMPLETION_PARAMS,
    ChatCompletion,
    ChatCompletionChunk,
    Choice,
    ChunkChoice,
    Delta,
    ProviderCall,
    ProviderError,
    ResponseMessage,
    Usage,
    iter_sse_batches,
    open_stream,
    post_json,
    timeout_for,
)
from sidecar_openai.compatible import Compatible, OpenAICompatibleProvider
from sidecar_openai.endpoints import TEXT_COMPLETION_ONLY_PARAMS, TextCompletions

CHAT_PARAMS = [
    "temperature", "top_p", "n", "stream", "stream_options", "stop", "max_tokens", "max_completion_tokens",
    "presence_penalty", "frequency_penalty", "logit_bias", "user", "seed", "extra_headers",
]
"""Chat params that mean the same on ``/v1/completions`` (LiteLLM's list minus tools and
chat-only logprobs, which the legacy endpoint does not take)."""


class _TextChoice(msgspec.Struct):
    text: str = ""
    index: int = 0
    finish_reason: str | None = None
    logprobs: Any = None


class _TextCompletion(msgspec.Struct):
    choices: list[_TextChoice] = []
    id: str = ""
    model: str = ""
    created: int | None = None
    usage: Usage | None = None
    system_fingerprint: str | None = None


_completion = msgspec.json.Decoder(_TextCompletion)
_encode = msgspec.json.Encoder().encode


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    return ""


def prompt_of(messages: list[dict[str, Any]]) -> str | list[str]:
    """The ``prompt`` for chat ``messages``, as LiteLLM builds it."""
    if len(messages) == 1:
        return _text(messages[0].get("content"))
    return [_text(m.get("content")) for m in messages]


class TextCompletionProvider(TextCompletions, OpenAICompatibleProvider):
    """OpenAI's ``/completions``; chat requests converted to a prompt and back."""

    def __init__(self) -> None:
        super().__init__(Compatible("text-completion-openai", "https://api.openai.com/v1", "OPENAI_API_KEY",
                                    frozenset({"chat", "completion"}), stream_usage=True))
        self.description = "OpenAI's legacy /v1/completions (chat served as a prompt)"

    def supported_openai_params(self, model: str, capability: str | None = None) -> list[str]:
        """The chat params that mean the same on ``/completions``; a completion takes its own too."""
        if capability == "completion":
            return [p for p in CHAT_PARAMS + TEXT_COMPLETION_ONLY_PARAMS if p in OPENAI_COMPLETION_PARAMS]
        return list(CHAT_PARAMS)

    async def chat(self, call: ProviderCall) -> ChatCompletion | AsyncIterator[list[ChatCompletionChunk]]:
        url, headers = self.endpoint(call.params, call.model, "completions")
        chat = self.stream_body(call) if call.stream else self.upstream_body(call)
        body = {k: v for k, v in chat.items() if k not in ("messages", "max_completion_tokens")}
        body["prompt"] = prompt_of(chat["messages"])
        if "max_completion_tokens" in chat and "max_tokens" not in chat:
            body["max_tokens"] = chat["max_completion_tokens"]
        raw = _encode(body)
        if not call.stream:
            answer = await post_json(call.session, url, raw, headers, timeout_for(call.params, False),
                                     _completion, self.name)
            return _as_chat(answer, call.model)
        resp = await open_stream(call.session, url, raw, headers, timeout_for(call.params, True), self.name)
        return self._text_chunks(resp, call.model)

    async def _text_chunks(self, resp: aiohttp.ClientResponse, model: str) -> AsyncIterator[list[ChatCompletionChunk]]:
        first = True
        async with aclosing(iter_sse_batches(resp, self.name)) as batches:
            async for payloads in batches:
                out = []
                for payload in payloads:
                    try:
                        piece = _completion.decode(payload)
                    except (msgspec.DecodeError, RecursionError) as exc:
                        raise ProviderError(502, f"{self.name} upstream sent a chunk that is not valid: {exc}",
                                            code="bad_upstream_response") from None
                    choices = [ChunkChoice(index=c.index, finish_reason=c.finish_reason,
                                           delta=Delta(role="assistant" if first else None, content=c.text))
                               for c in piece.choices]
                    first = first and not choices
                    out.append(ChatCompletionChunk(id=piece.id, model=piece.model or model, choices=choices,
                                                   created=piece.created or msgspec.UNSET, usage=piece.usage,
                                                   system_fingerprint=piece.system_fingerprint))
                if out:
                    yield out


def _as_chat(answer: _TextCompletion, model: str) -> ChatCompletion:
    choices = [Choice(index=i, message=ResponseMessage(content=c.text), finish_reason=c.finish_reason or "stop")
               for i, c in enumerate(answer.choices)]
    return ChatCompletion(id=answer.id or "cmpl-sidecar", model=answer.model or model, choices=choices,
                          created=answer.created or msgspec.UNSET, usage=answer.usage,
                          system_fingerprint=answer.system_fingerprint)

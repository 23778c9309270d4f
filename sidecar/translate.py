"""Helpers for a provider whose upstream speaks its own wire format: its stream's events turned
into OpenAI chunks (:func:`translate_stream`); from OpenAI's requests, an embeddings ``input`` as
texts (:func:`text_inputs`), a message's text (:func:`message_text`), a tool call's arguments
(:func:`tool_arguments`)."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Iterable, Mapping
from contextlib import aclosing
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import msgspec

from sidecar.errors import ProviderError

if TYPE_CHECKING:
    from sidecar.wire import ChatCompletionChunk

__all__ = ["StreamTranslator", "message_text", "text_inputs", "tool_arguments", "translate_stream"]

B = TypeVar("B")
E = TypeVar("E", contravariant=True)
_decode_any = msgspec.json.Decoder().decode


class StreamTranslator(Protocol[E]):
    """One stream's translation state, as :func:`translate_stream` drives it."""

    done: bool
    """The upstream's end event has come (set by :meth:`chunks`)."""

    def chunks(self, event: E) -> list[ChatCompletionChunk]:
        """The OpenAI chunks for one upstream event (often none); an error event raises ProviderError."""
        ...


async def translate_stream(
    batches: AsyncGenerator[B, None],
    decode: msgspec.json.Decoder | Callable[[B], Iterable[Any]],
    state: StreamTranslator[Any],
    provider: str,
    end_event: str,
    *,
    read_past_end: bool = False,
    tail: Callable[[], list[ChatCompletionChunk]] | None = None,
) -> AsyncGenerator[list[ChatCompletionChunk], None]:
    """The OpenAI chunks of an upstream's stream, one list per network read (never empty).

    ``batches`` are the reads (:func:`sidecar.iter_sse_payloads`, :func:`sidecar.iter_ndjson_batches`
    or your own framing's generator; closed with this one, which releases the response).
    ``decode`` turns a read into events: a msgspec Decoder of ``list[YourEvent]`` decodes a read's
    JSON payloads in one call (one that is not valid is a 502 ``bad_upstream_response``), or a
    function of yours does. Each event goes to ``state.chunks``; when it raises, the chunks of the
    read made before it still go out, then the error. Reading stops once ``state.done`` is set
    (``read_past_end=True``: reads on to the end of the body, for an upstream that sends usage after
    its end event). A body that ends before ``state.done`` is a 502 ``upstream_disconnected``
    naming ``provider`` and ``end_event``; after a complete one, ``tail()``'s chunks come last.
    """
    decoder = decode if isinstance(decode, msgspec.json.Decoder) else None
    chunks = state.chunks
    stop = not read_past_end
    async with aclosing(batches):
        async for batch in batches:
            if decoder is not None:
                try:
                    events: Iterable[Any] = decoder.decode(b"[" + b",".join(batch) + b"]")  # type: ignore[arg-type]
                except (msgspec.DecodeError, RecursionError) as exc:
                    raise ProviderError(502, f"{provider} upstream sent an event that is not valid: {exc}",
                                        code="bad_upstream_response") from None
            else:
                events = decode(batch)  # type: ignore[operator]
            out: list[ChatCompletionChunk] = []
            try:
                for event in events:
                    out += chunks(event)
                    if stop and state.done:
                        break
            except ProviderError:
                if out:
                    yield out  # what came before the failure still reaches the client
                raise
            if out:
                yield out
            if stop and state.done:
                return
    if not state.done:
        raise ProviderError(502, f"{provider} upstream ended the stream before {end_event}",
                            code="upstream_disconnected")
    if tail is not None:
        last = tail()
        if last:
            yield last


def text_inputs(body: Mapping[str, Any], provider: str) -> list[str]:
    """An embeddings request's ``input`` (``call.body``) as a list of texts, for an upstream that
    embeds text only: a string is one text; token arrays are a 400 naming ``input``. (The core
    has already checked it is one of OpenAI's four forms: never empty, never mixed.)"""
    inputs = body["input"]
    if isinstance(inputs, str):
        return [inputs]
    if inputs and not isinstance(inputs[0], str):
        raise ProviderError(400, f"{provider} embeds text only: send `input` as a string or a list of strings",
                            param="input", code="invalid_input")
    return list(inputs)


def message_text(content: Any) -> str:
    """A chat message's ``content`` as text: a string as it is, the ``text`` parts of a list
    joined (other parts, such as images, skipped), anything else ``""``."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    return ""


def tool_arguments(call: Mapping[str, Any], where: str | None = None) -> Any:
    """The ``function.arguments`` of a tool call in an assistant message, decoded (OpenAI sends a
    JSON string; an object passes as it is; none is ``{}``). A string that is not JSON is a 400
    naming ``messages``; ``where`` (``messages[2]``) starts its message."""
    args = (call.get("function") or {}).get("arguments") or "{}"
    if not isinstance(args, str):
        return args
    try:
        return _decode_any(args)
    except (msgspec.DecodeError, RecursionError):
        raise ProviderError(400, f"{where + ': ' if where else ''}a tool call's arguments are not valid JSON",
                            param="messages", code="invalid_tool_arguments") from None

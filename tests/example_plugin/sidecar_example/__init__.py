"""An example third-party plugin, installed with pip and found through the ``llm_sidecar`` entry
point group exactly like a built-in provider. It registers two providers:

- ``echo``: a complete provider in a few lines, answering chat requests by echoing the last
  message in upper case (so tests can tell it apart from the built-in mock), computed locally;
- ``parrot`` (:mod:`sidecar_example.parrot`): what a real plugin does: it calls an HTTP API with
  its own wire format, maps its errors to the router's kinds, streams newline-delimited JSON,
  calls tools, embeds, and keeps its credentials masked.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from sidecar import (
    ChatCompletion,
    ChatCompletionChunk,
    Choice,
    ChunkChoice,
    Delta,
    Provider,
    ProviderCall,
    ResponseMessage,
    Usage,
    hookimpl,
)
from sidecar_example.parrot import ParrotProvider

__version__ = "0.3.0"


class EchoProvider(Provider):
    name = "echo"
    capabilities = frozenset({"chat"})
    description = "echoes the last message in upper case"

    def supported_openai_params(self, model: str, capability: str | None = None) -> list[str]:
        return ["stream", "stream_options", "temperature", "max_tokens", "user"]

    async def chat(self, call: ProviderCall) -> ChatCompletion | AsyncIterator[ChatCompletionChunk]:
        last = call.request.messages[-1].content
        text = (last if isinstance(last, str) else "").upper()
        if call.stream:
            return self._stream(call, text)
        words = len(text.split())
        return ChatCompletion(
            id="chatcmpl-echo", model=call.model,
            choices=[Choice(index=0, message=ResponseMessage(content=text))],
            usage=Usage(prompt_tokens=words, completion_tokens=words, total_tokens=2 * words),
        )

    async def _stream(self, call: ProviderCall, text: str) -> AsyncIterator[ChatCompletionChunk]:
        for piece in (text[: len(text) // 2], text[len(text) // 2 :]):
            yield ChatCompletionChunk(id="chatcmpl-echo", model=call.model,
                                      choices=[ChunkChoice(index=0, delta=Delta(content=piece))])
        yield ChatCompletionChunk(id="chatcmpl-echo", model=call.model,
                                  choices=[ChunkChoice(index=0, delta=Delta(), finish_reason="stop")])


@hookimpl
def sidecar_providers() -> list[Provider]:
    return [EchoProvider(), ParrotProvider()]

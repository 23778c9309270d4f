"""The ``mock`` provider: offline and deterministic, for trying llm-sidecar and for tests.

- chat: answers ``Mock reply to: <last user text>``; with tools, calls the chosen tool with
  arguments built from its JSON schema; honours n, stop, max_tokens, response_format; streams
  word by word; counts whitespace-separated words as tokens.
- embeddings: a unit vector derived from a hash of each input, ``dimensions`` long (default 1536),
  as floats or base64.
- moderations: flags inputs containing words from small per-category lists.
- text completions: ``Mock reply to: <prompt>`` (echo, n, stop, max_tokens; streamed word by word).
- images: tiny PNGs coloured by the prompt, as ``b64_json`` or data URLs; speech: a quarter second
  of silence as WAV; transcriptions: ``The quick brown fox jumps over the lazy dog.``
- rerank: scores each document by the share of the query's words it holds (word overlap).
- ``mock_response`` (request body or litellm_params) is answered by the core for every provider
  (:mod:`sidecar.mocking`). ``mock_delay`` (seconds) waits before answering and between stream chunks.
"""

from __future__ import annotations

from sidecar import hookimpl
from sidecar_mock.provider import MockProvider

__version__ = "0.1.0"


@hookimpl
def sidecar_providers() -> list[MockProvider]:
    return [MockProvider()]

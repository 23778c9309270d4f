"""msgspec Structs for OpenAI's legacy text completions (``POST /v1/completions``), encoded and
decoded by the rules of :mod:`sidecar.wire`."""

from __future__ import annotations

from typing import Annotated, Any

from msgspec import UNSET, Struct, UnsetType

from sidecar.wire import Json, StreamOptions, Usage, _stamp, normalise_finish_reason, token_inputs

__all__ = [
    "OPENAI_COMPLETION_PARAMS",
    "TextChoice",
    "TextChunkChoice",
    "TextCompletion",
    "TextCompletionChunk",
    "TextCompletionRequest",
    "prompts_of",
]

OPENAI_COMPLETION_PARAMS = frozenset(
    {"best_of", "echo", "frequency_penalty", "logit_bias", "logprobs", "max_tokens", "n", "presence_penalty",
     "seed", "stop", "stream", "stream_options", "suffix", "temperature", "top_p", "user"}
)
"""Optional text-completion params defined by OpenAI's API: checked against the provider's list."""

TEXT_FINISH_REASONS = frozenset({"stop", "length", "content_filter"})


class TextCompletionRequest(Struct):
    """OpenAI's completion request, plus LiteLLM's gateway-only keys."""

    model: str
    prompt: str | Annotated[list[Any], token_inputs(0)] | None = None
    stream: bool | None | UnsetType = UNSET
    stream_options: StreamOptions | None | UnsetType = UNSET
    max_tokens: int | None | UnsetType = UNSET
    temperature: float | None | UnsetType = UNSET
    top_p: float | None | UnsetType = UNSET
    n: int | None | UnsetType = UNSET
    logprobs: int | None | UnsetType = UNSET
    echo: bool | None | UnsetType = UNSET
    stop: str | list[str] | None | UnsetType = UNSET
    presence_penalty: float | None | UnsetType = UNSET
    frequency_penalty: float | None | UnsetType = UNSET
    best_of: int | None | UnsetType = UNSET
    logit_bias: dict[str, float] | None | UnsetType = UNSET
    seed: int | None | UnsetType = UNSET
    suffix: str | None | UnsetType = UNSET
    user: str | None | UnsetType = UNSET
    metadata: Json | None | UnsetType = UNSET
    drop_params: bool | None | UnsetType = UNSET
    mock_response: Any = UNSET

    def __post_init__(self) -> None:
        check_prompt(self.prompt)


def check_prompt(value: str | list[Any] | None) -> None:
    """OpenAI's four prompt forms: a string, strings, a token array, token arrays."""
    if value is None or isinstance(value, str):
        return
    first = value[0]
    kind = (str,) if isinstance(first, str) else (int,) if isinstance(first, int) else (list,)
    if not all(isinstance(v, kind) and not isinstance(v, bool) for v in value):
        raise ValueError("Expected a string, an array of strings, an array of integers or an array of "
                         "integer arrays - at `$.prompt`")
    if kind == (list,) and not all(all(isinstance(t, int) and not isinstance(t, bool) for t in v) for v in value):
        raise ValueError("Expected an array of integer arrays - at `$.prompt`")


def prompts_of(value: str | list[Any] | None) -> list[str]:
    """The prompts of a request as texts (a token array as its numbers)."""
    if value is None:
        return [""]
    if isinstance(value, str):
        return [value]
    if value and isinstance(value[0], int):
        return [" ".join(map(str, value))]
    return [v if isinstance(v, str) else " ".join(map(str, v)) for v in value]


def _text_finish(value: Any, missing: str | None) -> str | None:
    reason = normalise_finish_reason(value, missing)
    return reason if reason is None or reason in TEXT_FINISH_REASONS else "stop"


class TextChoice(Struct, omit_defaults=True):
    index: int
    text: str | UnsetType = UNSET
    logprobs: Json | None | UnsetType = UNSET
    finish_reason: str | None | UnsetType = UNSET

    def __post_init__(self) -> None:
        if self.text is UNSET or self.text is None:
            self.text = ""
        if self.logprobs is UNSET:
            self.logprobs = None
        self.finish_reason = _text_finish(self.finish_reason, "stop")


class TextChunkChoice(TextChoice, omit_defaults=True):
    """A stream's choice: ``finish_reason`` is null until the last (as OpenAI streams it)."""

    def __post_init__(self) -> None:
        if self.text is UNSET or self.text is None:
            self.text = ""
        if self.logprobs is UNSET:
            self.logprobs = None
        self.finish_reason = _text_finish(self.finish_reason, None)


class TextCompletion(Struct, omit_defaults=True):
    id: str
    choices: list[TextChoice]
    model: str
    created: int | UnsetType = UNSET
    object: str | UnsetType = UNSET
    usage: Usage | None = None
    system_fingerprint: str | None = None

    def __post_init__(self) -> None:
        _stamp(self, "text_completion")


class TextCompletionChunk(Struct, omit_defaults=True):
    """One event of a streamed completion (the same object as the answer, with null finish reasons)."""

    id: str
    choices: list[TextChunkChoice]
    model: str
    created: int | UnsetType = UNSET
    object: str | UnsetType = UNSET
    usage: Usage | None = None
    system_fingerprint: str | None = None

    def __post_init__(self) -> None:
        _stamp(self, "text_completion")

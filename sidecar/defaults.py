"""A deployment's ``litellm_params`` as defaults for OpenAI request params (``temperature: 0.2``).

LiteLLM passes a deployment's ``litellm_params`` to the call, so one that holds an OpenAI request
param (``temperature``, ``max_tokens``, ``stop``, ``response_format``...) is a default the
request's own value overrides. The core applies them for every provider: worked out once per
deployment (:func:`param_defaults`, each value checked against the request's type), applied per
attempt to the body the provider gets (:func:`apply_defaults`), so a fallback deployment never
inherits another's. Only the params of the request's capability are applied, and only those
the provider accepts for the model; ``stream`` and ``stream_options`` are never defaults.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import msgspec

__all__ = ["BadDefault", "Defaults", "apply_defaults", "param_defaults"]

NOT_DEFAULTS = frozenset({"stream", "stream_options", "encoding_format"})
"""OpenAI params a deployment cannot default: the client decides the form of its answer."""
SAME_PARAM = {"max_tokens": "max_completion_tokens", "max_completion_tokens": "max_tokens"}
"""Params that mean the same: a request sending one is not given the other as a default."""


class BadDefault(ValueError):
    """A default whose value has the wrong type for the param it sets (``key``)."""

    def __init__(self, key: str, why: str) -> None:
        super().__init__(f"litellm_params.{key}: {why} (a default for the request's {key!r})")
        self.key = key


@dataclass(frozen=True, slots=True)
class Defaults:
    """One capability's defaults of a deployment: the values (checked and converted), and which
    of them are fields of the typed request (``ProviderCall.request``) too."""

    values: dict[str, Any]
    typed: frozenset[str]


def _requests() -> dict[str, tuple[type, frozenset[str]]]:
    """Each capability with OpenAI request params: its request Struct and those params."""
    from sidecar.wire import OPENAI_CHAT_PARAMS, OPENAI_EMBEDDING_PARAMS, ChatCompletionRequest, EmbeddingRequest
    from sidecar.wire_completions import OPENAI_COMPLETION_PARAMS, TextCompletionRequest

    return {"chat": (ChatCompletionRequest, OPENAI_CHAT_PARAMS),
            "completion": (TextCompletionRequest, OPENAI_COMPLETION_PARAMS),
            "embedding": (EmbeddingRequest, OPENAI_EMBEDDING_PARAMS)}


def param_defaults(params: Mapping[str, Any], capabilities: frozenset[str]) -> dict[str, Defaults]:
    """Per capability, the OpenAI request params ``params`` sets (none: an empty dict). A value
    of the wrong type for every capability it is a param of raises :class:`BadDefault`."""
    out: dict[str, Defaults] = {}
    fits: dict[str, str] = {}  # key -> why it did not fit (until it fits one capability)
    for capability, (struct, openai) in _requests().items():
        keys = [k for k in params if k in openai and k not in NOT_DEFAULTS and params[k] is not None]
        if capability not in capabilities or not keys:
            continue
        fields = {f.name: f.type for f in msgspec.structs.fields(struct)}
        values: dict[str, Any] = {}
        for key in keys:
            try:
                values[key] = msgspec.convert(params[key], fields[key], strict=False) if key in fields else params[key]
            except msgspec.ValidationError as exc:
                fits.setdefault(key, str(exc))
                continue
            fits[key] = ""
        if values:
            out[capability] = Defaults(values, frozenset(k for k in values if k in fields))
    bad = next((k for k, why in fits.items() if why), None)
    if bad is not None:
        raise BadDefault(bad, fits[bad])
    return out


def apply_defaults(defaults: Defaults, body: dict[str, Any], typed: Any, supported: frozenset[str]) -> Any:
    """Put into ``body`` each default the client did not send (nor its synonym) and the provider
    accepts; returns ``typed`` with the same values (a copy, when any was applied)."""
    applied = {k: v for k, v in defaults.values.items()
               if k not in body and SAME_PARAM.get(k) not in body and k in supported}
    if not applied:
        return typed
    body.update(applied)
    fields = {k: v for k, v in applied.items() if k in defaults.typed}
    return msgspec.structs.replace(typed, **fields) if fields else typed

"""A deployment's ``litellm_params`` as defaults for OpenAI request params (``temperature: 0.2``).

LiteLLM passes a deployment's ``litellm_params`` to the call, so one that holds an OpenAI request
param (``temperature``, ``max_tokens``, ``stop``, ``response_format``...) is a default the
request's own value overrides. The core applies them for every provider: worked out once per
deployment (:func:`param_defaults`, each value checked against the request's type), applied per
attempt to the body the provider gets (:func:`apply_defaults`), so a fallback deployment never
inherits another's. Only the params of the request's capability are applied, and only those
the provider accepts for the model; ``stream``, ``stream_options`` and ``encoding_format`` are
never defaults (the client chooses the form of its answer).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
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


@lru_cache(maxsize=1)
def _requests() -> dict[str, tuple[frozenset[str], type, frozenset[str]]]:
    """Each capability with OpenAI request params: those params, a Struct of the typed ones (each
    optional, with the request's type: msgspec checks a deployment's values in one call), and the
    names of those that are fields of the request Struct too."""
    from sidecar.wire import OPENAI_CHAT_PARAMS, OPENAI_EMBEDDING_PARAMS, ChatCompletionRequest, EmbeddingRequest
    from sidecar.wire_completions import OPENAI_COMPLETION_PARAMS, TextCompletionRequest

    out = {}
    for capability, struct, params in (("chat", ChatCompletionRequest, OPENAI_CHAT_PARAMS),
                                       ("completion", TextCompletionRequest, OPENAI_COMPLETION_PARAMS),
                                       ("embedding", EmbeddingRequest, OPENAI_EMBEDDING_PARAMS)):
        fields = [(f.name, f.type, msgspec.UNSET) for f in msgspec.structs.fields(struct)
                  if f.name in params and f.name not in NOT_DEFAULTS]
        checked = msgspec.defstruct(f"{struct.__name__}Defaults", fields)
        out[capability] = (params - NOT_DEFAULTS, checked, frozenset(name for name, _, _ in fields))
    return out


@lru_cache(maxsize=1)
def _all_params() -> frozenset[str]:
    return frozenset().union(*(params for params, _, _ in _requests().values()))


def param_defaults(params: Mapping[str, Any], capabilities: frozenset[str]) -> dict[str, Defaults]:
    """Per capability, the OpenAI request params ``params`` sets (none: an empty dict). A value
    of the wrong type for every capability it is a param of raises :class:`BadDefault`."""
    every = _all_params()
    if not any(k in every for k in params):  # (most deployments: nothing to work out)
        return {}
    out: dict[str, Defaults] = {}
    fits: dict[str, str] = {}  # key -> why it did not fit ("" once it fits one capability)
    for capability, (openai, checked, typed) in _requests().items():
        values = {k: v for k, v in params.items() if k in openai and v is not None}
        if capability not in capabilities or not values:
            continue
        while True:
            try:
                converted = msgspec.convert({k: v for k, v in values.items() if k in typed}, checked, strict=False)
                break
            except msgspec.ValidationError as exc:
                key = _key_of(exc, values)
                fits.setdefault(key, str(exc).split(" - at `$")[0])
                del values[key]
        values.update({k: getattr(converted, k) for k in typed if k in values})
        for key in values:
            fits[key] = ""
        if values:
            out[capability] = Defaults(values, frozenset(k for k in values if k in typed))
    bad = next((k for k, why in fits.items() if why), None)
    if bad is not None:
        raise BadDefault(bad, fits[bad])
    return out


def _key_of(exc: msgspec.ValidationError, values: Mapping[str, Any]) -> str:
    """The top-level key msgspec's message names (``... - at `$.temperature```)."""
    _, _, at = str(exc).partition(" - at `$.")
    key = at.split("`")[0].split(".")[0].split("[")[0]
    return key if key in values else next(iter(values))


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

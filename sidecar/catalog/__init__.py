"""Built-in model catalog: mode, context window, max output, prices and capability flags.

The data (``catalog.msgpack``, built by ``scripts/build_catalog.py`` from LiteLLM's MIT-licensed
cost map, see ``LICENSE-litellm`` and :func:`source_info`) ships with the package. Importing this
module reads nothing; the file is decoded with msgspec on the first call and kept in memory.

Resolution rules of :func:`lookup` (after LiteLLM's ``get_model_info``); the first hit wins:

1. key ``f"{provider}/{model}"`` (e.g. ``azure/gpt-4o``, ``groq/openai/gpt-oss-120b``);
2. key ``model`` if its ``litellm_provider`` is compatible with ``provider``, or provider is None.
   Compatible means equal after folding families: ``text-completion-openai`` is ``openai``,
   ``azure_text`` is ``azure``, ``bedrock_converse`` is ``bedrock``, and ``vertex_ai-*`` /
   ``fireworks_ai-*`` are ``vertex_ai`` / ``fireworks_ai``. So ``model`` may also be a full key
   such as ``azure/gpt-4o``;
3. otherwise None: with a provider given, a bare key of an incompatible provider is not used
   (a bare key alone counts only when provider is None, which rule 2 covers).

A key without a ``/`` belongs to its ``litellm_provider``; a key ``p/name`` belongs to ``p``.
Keys with a non-provider first segment (LiteLLM's image size/quality prices such as
``low/1024-x-1024/gpt-image-1.5``) are found by exact key but never listed by provider.
"""

from __future__ import annotations

import os
from functools import cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["all_entries", "lookup", "models_for_provider", "source_info"]

_DATA = os.path.join(os.path.dirname(__file__), "catalog.msgpack")
_FORMAT = 1
_ALIASES = {"text-completion-openai": "openai", "azure_text": "azure", "bedrock_converse": "bedrock",
            "cohere_chat": "cohere"}  # (LiteLLM serves cohere/command-... with its cohere_chat entries)
_FAMILIES = ("vertex_ai-", "fireworks_ai-")


class _Catalog:
    """Decoded catalog: header, column tables and raw rows by key."""

    __slots__ = ("header", "fields", "flags", "providers", "modes", "models")

    def __init__(self, doc: dict[str, Any]) -> None:
        if doc.get("format") != _FORMAT:
            raise RuntimeError(f"unsupported catalog format {doc.get('format')!r} in {_DATA}")
        self.fields: tuple[str, ...] = tuple(doc["fields"])
        self.flags: tuple[str, ...] = tuple(doc["flags"])
        self.providers: tuple[str, ...] = tuple(doc["providers"])
        self.modes: tuple[str, ...] = tuple(doc["modes"])
        self.models: dict[str, list[Any]] = doc["models"]
        self.header = {k: doc[k] for k in ("source", "version", "date", "build_date", "entries")}

    def fields_of(self, key: str, row: list[Any]) -> dict[str, Any]:
        """A fresh LiteLLM-style info dict for one row."""
        info: dict[str, Any] = dict.fromkeys(self.fields)
        info["key"] = key
        for name, value in zip(self.fields, row[1:]):
            info[name] = value
        if info["litellm_provider"] is not None:
            info["litellm_provider"] = self.providers[info["litellm_provider"]]
        if info["mode"] is not None:
            info["mode"] = self.modes[info["mode"]]
        for i in row[0]:
            info[self.flags[i]] = True
        return info

    def provider_of(self, row: list[Any]) -> str | None:
        return self.providers[row[1]] if len(row) > 1 and row[1] is not None else None


@cache
def _catalog() -> _Catalog:
    """Load and decode the packaged catalog (once)."""
    import msgspec  # deferred: keeps `import sidecar.catalog` free

    with open(_DATA, "rb") as f:
        return _Catalog(msgspec.msgpack.decode(f.read()))


def _family(provider: str) -> str:
    provider = _ALIASES.get(provider, provider)
    for prefix in _FAMILIES:
        if provider.startswith(prefix):
            return prefix[:-1]
    return provider


def _compatible(provider: str | None, litellm_provider: str | None) -> bool:
    if not provider or litellm_provider is None or provider == litellm_provider:
        return True
    return _family(provider) == _family(litellm_provider)


def lookup(model: str, provider: str | None = None) -> dict[str, Any] | None:
    """Catalog fields for `model` (upstream name or full catalog key) under `provider`, or None.

    The dict has LiteLLM names (mode, max_input_tokens, max_output_tokens, max_tokens,
    input_cost_per_token, output_cost_per_token, cache_creation_input_token_cost,
    cache_read_input_token_cost, output_vector_size, deprecation_date, litellm_provider; None when
    the source has no value), ``key`` (the catalog key matched) and ``supports_<x>: True`` for each
    true flag (false or unknown flags are absent). It is a fresh dict. Rules: module docstring.
    """
    cat = _catalog()
    if provider:
        key = f"{provider}/{model}"
        row = cat.models.get(key)
        if row is not None:
            return cat.fields_of(key, row)
    row = cat.models.get(model)
    if row is not None and _compatible(provider, cat.provider_of(row)):
        return cat.fields_of(model, row)
    return None


@cache
def _names_for(provider: str) -> tuple[str, ...]:
    cat = _catalog()
    prefix = provider + "/"
    names = set()
    for key, row in cat.models.items():
        if key.startswith(prefix):
            names.add(key[len(prefix):])
        elif "/" not in key:
            owner = cat.provider_of(row)
            if owner is not None and _compatible(provider, owner):
                names.add(key)
    return tuple(sorted(names))


def models_for_provider(provider: str) -> list[str]:
    """Sorted model names (without the ``provider/`` prefix) the catalog knows for `provider`.

    Includes every mode (chat, embedding, image_generation, ...); filter with :func:`lookup`.
    """
    return list(_names_for(provider)) if provider else []


def source_info() -> dict[str, Any]:
    """Where the data comes from: source, version, date (taken), build_date, entries."""
    return dict(_catalog().header)


def all_entries() -> Iterator[tuple[str, dict[str, Any]]]:
    """(catalog key, fields as from :func:`lookup`) for every entry, in key order."""
    cat = _catalog()
    for key, row in cat.models.items():
        yield key, cat.fields_of(key, row)

"""LiteLLM config leniency: keys the sidecar does not act on are accepted with one warning.

LiteLLM's config has hundreds of keys (callbacks, budgets, guardrails, UI, enterprise
features...). A team switching from LiteLLM keeps its file, so every key the sidecar does not act
on is collected by :class:`Leniency` and reported in ONE start-up warning naming them all. Only a
key that looks like a typo of one the sidecar acts on (``master_kye``, ``num_retires``) stops
start-up, with "did you mean": a close spelling (difflib ratio >= :data:`NEAR_MISS_CUTOFF`) of
about the same length with the same first letter, and not itself a LiteLLM key
(:data:`LITELLM_LOOKALIKES`; ``callbacks`` is not a typo of ``fallbacks``).
"""

from __future__ import annotations

import difflib
from collections.abc import Collection, Mapping
from typing import Any

NEAR_MISS_CUTOFF = 0.88
"""Tight on purpose: ``master_kye`` (0.90) and ``num_retires`` (0.91) are typos;
``supports_video_input`` (0.85 to ``supports_audio_input``) is a real LiteLLM key."""
NEAR_MISS_MAX_LENGTH_CHANGE = 2
"""A typo drops, doubles or swaps a letter or two; ``input_cost_per_token_flex`` is another key."""

LITELLM_LOOKALIKES = frozenset({
    # LiteLLM keys that resemble ones the sidecar acts on, in any section: never typos.
    "supports_video_input", "supports_image_input", "max_response_size_mb", "max_retries", "timeouts",
    "input_cost_per_second", "output_cost_per_second", "input_cost_per_audio_token", "redis_url",
    "database_type", "database_args", "master_key_rotation", "allowed_ips", "callbacks", "success_callback",
    "failure_callback", "service_callback", "cache_params", "max_budget", "num_retries_per_request",
})

DESCRIPTIVE_MODEL_INFO = frozenset({"description"})
"""``model_info`` keys that only describe a deployment (shown by the info endpoints): not warned."""


class NearMiss(Exception):
    """A key that is probably a typo of ``suggestion``."""

    def __init__(self, key: str, suggestion: str) -> None:
        super().__init__(f"unknown key {key!r} (did you mean {suggestion!r}?)")
        self.key = key
        self.suggestion = suggestion


def near_miss(key: str, acted_on: Collection[str]) -> str | None:
    """The acted-on key that ``key`` is probably a misspelling of, or None."""
    if key in acted_on or key in LITELLM_LOOKALIKES:
        return None
    for match in difflib.get_close_matches(key, list(acted_on), n=3, cutoff=NEAR_MISS_CUTOFF):
        if abs(len(match) - len(key)) <= NEAR_MISS_MAX_LENGTH_CHANGE and match[:1] == key[:1]:
            return match
    return None


class Leniency:
    """Sorts mappings into what the sidecar acts on and what it accepts but ignores."""

    def __init__(self) -> None:
        self._ignored: dict[str, None] = {}  # ordered set of dotted paths

    def sort(self, mapping: Mapping[str, Any], acted_on: Collection[str], where: str,
             ignored: Collection[str] = ()) -> dict[str, Any]:
        """The part of ``mapping`` the sidecar acts on. Other keys, and those in ``ignored``
        (known ones it accepts but does not act on), are noted as ``where.key`` for the warning;
        a near-miss of an acted-on key raises :class:`NearMiss`."""
        kept: dict[str, Any] = {}
        for key, value in mapping.items():
            name = str(key)
            if name in acted_on and name not in ignored:
                kept[name] = value
                continue
            if name not in ignored:
                suggestion = near_miss(name, acted_on)
                if suggestion is not None:
                    raise NearMiss(name, suggestion)
            self.note(f"{where}.{name}" if where else name)
        return kept

    def note(self, path: str) -> None:
        self._ignored[path] = None

    @property
    def ignored(self) -> list[str]:
        return list(self._ignored)

    def warning(self) -> str | None:
        """The one warning naming every key accepted but not acted on (None if there is none)."""
        if not self._ignored:
            return None
        return ("LiteLLM config keys accepted but not acted on by llm-sidecar (see README, LiteLLM "
                f"compatibility; model_info keys are still shown by the info endpoints): {', '.join(self._ignored)}")

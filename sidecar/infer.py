"""Which provider serves ``litellm_params.model``: its prefix, else the catalog (as LiteLLM infers).

``openai/gpt-4o`` names its provider. A bare ``gpt-3.5-turbo``, ``text-embedding-ada-002`` or
``claude-sonnet-4-5`` gets the catalog's ``litellm_provider`` (folded to its family:
``text-completion-openai`` is ``openai``, ``vertex_ai-language-models`` is ``vertex_ai``), and the
whole name goes upstream.
"""

from __future__ import annotations

from collections.abc import Collection

_FAMILIES = {"text-completion-openai": "openai", "azure_text": "azure", "bedrock_converse": "bedrock"}


class ProviderUnknown(Exception):
    """No provider for the model; ``code`` is ``invalid_model`` (no prefix, the catalog does not
    know it) or ``unknown_provider`` (a provider no installed plugin offers)."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


def infer_provider(model: str, installed: Collection[str]) -> tuple[str, str]:
    """(provider name, upstream model) for ``model``; raises :class:`ProviderUnknown`."""
    prefix, sep, rest = model.partition("/")
    if sep and rest and prefix in installed:
        return prefix, rest
    known = _catalog_provider(model)
    names = ", ".join(sorted(installed))
    if known is not None:
        if known in installed:
            return known, model
        raise ProviderUnknown(f"litellm_params.model {model!r} is a {known!r} model (from the catalog), and no "
                              f"installed plugin provides {known!r}; installed providers: {names}",
                              "unknown_provider")
    if sep and rest:
        raise ProviderUnknown(f"no installed plugin provides {prefix!r} (from litellm_params.model {model!r}); "
                              f"installed providers: {names}", "unknown_provider")
    raise ProviderUnknown(f"litellm_params.model {model!r} is not in the catalog, so it needs a provider prefix, "
                          f"as in 'openai/{model or 'gpt-4o-mini'}'; installed providers: {names}", "invalid_model")


def _catalog_provider(model: str) -> str | None:
    if not model or "*" in model:
        return None
    from sidecar import catalog  # decoded on first use only

    info = catalog.lookup(model)
    provider = info.get("litellm_provider") if info else None
    if provider and provider.startswith("vertex_ai-"):  # vertex_ai-language-models, -embedding-models...
        return "vertex_ai"
    return _FAMILIES.get(provider, provider) if provider else None

"""How a provider reaches an upstream that takes an API key: the key and base URL from
``litellm_params`` (LiteLLM's names) or the provider's environment variables, the values taken
from the environment (for the core to mask), the endpoint URL and the request headers.

    ACCESS = ApiAccess("cohere", key_envs=("COHERE_API_KEY", "CO_API_KEY"), default_base="https://api.cohere.com")

    def ambient_credentials(self, params):
        return ACCESS.ambient(params)

    url, headers = ACCESS.url(call.params, "/v2/chat"), ACCESS.headers(call.params)

When the client sent its own ``api_base`` (``NO_AMBIENT_CREDENTIALS`` in ``params``), nothing is
taken from the environment: no key, no base URL.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import yarl

from sidecar.errors import ProviderError
from sidecar.provider import NO_AMBIENT_CREDENTIALS

__all__ = ["ApiAccess", "join_url"]

BASE_PARAMS = ("api_base", "base_url")
"""The ``litellm_params`` that name the base URL (LiteLLM reads both)."""


@dataclass(frozen=True, slots=True)
class ApiAccess:
    """One provider's way to its upstream (see the module's docstring).

    ``key_envs`` and ``base_envs`` are read in order when ``litellm_params`` has no ``api_key``
    / ``api_base``; ``default_base`` is the upstream's own URL (None: ``api_base`` is required).
    The key goes in ``key_header`` after ``key_prefix`` (``Authorization: Bearer <key>``, or
    ``x-api-key: <key>`` with ``key_prefix=""``); ``key_required`` makes a missing key a 401.
    ``endpoints`` are path endings an ``api_base`` may already name (``/v2/chat``): not repeated.
    """

    provider: str
    key_envs: tuple[str, ...] = ()
    base_envs: tuple[str, ...] = ()
    default_base: str | None = None
    key_header: str = "Authorization"
    key_prefix: str = "Bearer "
    key_required: bool = False
    endpoints: tuple[str, ...] = ()

    def key(self, params: Mapping[str, Any]) -> str | None:
        """``api_key``, else the first of ``key_envs`` set (unless the client chose the server)."""
        key = params.get("api_key")
        if key:
            return str(key)
        return None if params.get(NO_AMBIENT_CREDENTIALS) else _first_env(self.key_envs)

    def base(self, params: Mapping[str, Any]) -> str | None:
        """``api_base`` (or ``base_url``), else the first of ``base_envs`` set, else ``default_base``."""
        for name in BASE_PARAMS:
            if params.get(name):
                return str(params[name])
        found = None if params.get(NO_AMBIENT_CREDENTIALS) else _first_env(self.base_envs)
        return found or self.default_base

    def ambient(self, params: Mapping[str, Any]) -> list[str]:
        """The values :meth:`key` and :meth:`base` would take from the environment for ``params``:
        what ``Provider.ambient_credentials`` returns, so the core masks them."""
        if params.get(NO_AMBIENT_CREDENTIALS):
            return []
        found = [] if params.get("api_key") else [_first_env(self.key_envs)]
        if not any(params.get(name) for name in BASE_PARAMS):
            found.append(_first_env(self.base_envs))
        return [v for v in found if v]

    def url(self, params: Mapping[str, Any], path: str) -> yarl.URL:
        """The base URL (an ending in ``endpoints`` left out) joined with ``path`` (``/v2/chat``);
        a missing or malformed base is a 400 naming ``api_base``."""
        base = self.base(params)
        if not base:
            where = "".join(f" (or ${name})" for name in self.base_envs[:1])
            raise ProviderError(400, f"{self.provider} needs litellm_params.api_base{where}", param="api_base",
                                code="missing_api_base")
        return join_url(base, path, self.endpoints)

    def headers(self, params: Mapping[str, Any], fixed: Mapping[str, str] | None = None) -> dict[str, str]:
        """``Content-Type: application/json``, ``fixed``, the key, then ``extra_headers`` from
        ``litellm_params`` (over the others, as LiteLLM sends them)."""
        headers = {"Content-Type": "application/json", **(fixed or {})}
        key = self.key(params)
        if key:
            headers[self.key_header] = self.key_prefix + key
        elif self.key_required:
            names = ", ".join(["litellm_params.api_key", *(f"${name}" for name in self.key_envs)])
            raise ProviderError(401, f"{self.provider} needs an API key: {names}", kind="auth",
                                code="missing_api_key")
        extra = params.get("extra_headers")
        if isinstance(extra, dict):
            headers.update({str(k): str(v) for k, v in extra.items()})
        return headers


def _first_env(names: tuple[str, ...]) -> str | None:
    return next((os.environ[name] for name in names if os.environ.get(name)), None)


@lru_cache(maxsize=1024)
def join_url(base: str, path: str, endpoints: tuple[str, ...] = ()) -> yarl.URL:
    """``base`` (without a trailing ``/`` or an ending in ``endpoints``) + ``path``, parsed once
    per base and path; a malformed base (or a port out of range) is a 400 naming ``api_base``."""
    base = base.rstrip("/")
    for ending in endpoints:
        base = base.removesuffix(ending)
    try:
        url = yarl.URL(f"{base}{path}")
        url.port  # noqa: B018 - a port out of range raises here, not deep inside the client
    except ValueError:
        raise ProviderError(400, "litellm_params.api_base is not a valid URL", param="api_base",
                            code="invalid_api_base") from None
    return url

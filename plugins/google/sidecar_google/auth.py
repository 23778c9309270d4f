"""Vertex AI bearer tokens from google-auth, cached per credential.

A credential is ``vertex_credentials`` (a service-account JSON, as a file path, a JSON string or
a mapping) or, without it, the application default credentials. google-auth is imported on first
use and does blocking I/O, so loading and refreshing run in a thread. A request waits only when
there is no valid token; a token within :data:`REFRESH_BEFORE` seconds of expiry is still used
while one shared refresh runs in the background, and concurrent requests share one refresh.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Mapping
from datetime import timezone
from typing import Any

import msgspec

from sidecar import ProviderError

SCOPES = ["https://www.googleapis.com/auth/cloud-platform"]
REFRESH_BEFORE = 300.0
"""Seconds before expiry a token is refreshed (in the background while it is still valid)."""
MIN_VALID = 30.0
"""Seconds of validity below which a request waits for the refresh instead."""

log = logging.getLogger("sidecar")
_decode = msgspec.json.decode
_encode = msgspec.json.Encoder(order="sorted").encode


def credential_key(value: Any) -> str:
    """The cache key of a ``vertex_credentials`` value ('' for the application default)."""
    if not value:
        return ""
    return _encode(value).decode() if isinstance(value, Mapping) else str(value)


class _Source:
    """One credential: its google-auth object, current token and expiry, and refresh task."""

    def __init__(self, spec: Any) -> None:
        self.spec = spec
        self.credentials: Any = None
        self.project: str | None = None
        self.token: str | None = None
        self.expires = 0.0
        self.refreshing: asyncio.Task[None] | None = None

    async def get(self) -> str:
        left = self.expires - time.time()
        if self.token is not None and left > REFRESH_BEFORE:
            return self.token
        task = self._refresh()
        if self.token is not None and left > MIN_VALID:
            return self.token  # still good: the refresh goes on in the background
        await asyncio.shield(task)  # (a client leaving does not cancel the refresh others wait for)
        assert self.token is not None
        return self.token

    def _refresh(self) -> asyncio.Task[None]:
        if self.refreshing is None or self.refreshing.done():
            self.refreshing = asyncio.get_running_loop().create_task(self._run())
            self.refreshing.add_done_callback(_consume)
        return self.refreshing

    async def _run(self) -> None:
        self.token, self.expires, project = await asyncio.to_thread(self._refresh_blocking)
        self.project = self.project or project

    def _refresh_blocking(self) -> tuple[str, float, str | None]:
        from google.auth import exceptions
        from google.auth.transport.requests import Request

        try:
            project = None
            if self.credentials is None:
                self.credentials, project = load_credentials(self.spec)
            self.credentials.refresh(Request())
        except exceptions.TransportError as exc:
            raise ProviderError(502, f"vertex_ai could not reach Google's token endpoint ({type(exc).__name__})",
                                kind="server", code="token_endpoint_unreachable") from None
        except exceptions.GoogleAuthError as exc:
            raise ProviderError(401, f"vertex_ai could not get an access token: {_reason(exc)}", kind="auth",
                                code="vertex_auth_failed") from None
        expiry = self.credentials.expiry
        expires = expiry.replace(tzinfo=timezone.utc).timestamp() if expiry else time.time() + 3600
        return self.credentials.token, expires, project


def _consume(task: asyncio.Task[None]) -> None:
    """A background refresh that failed is logged here; waiting requests get its error."""
    if not task.cancelled() and task.exception() is not None:
        log.debug("vertex_ai token refresh failed: %s", task.exception())


def _reason(exc: BaseException) -> str:
    """google-auth's first argument (the token endpoint's error), short; never the credential."""
    text = str(exc.args[0]) if exc.args else type(exc).__name__
    return text[:200]


def load_credentials(spec: Any) -> tuple[Any, str | None]:
    """(google-auth credentials, their project) for a ``vertex_credentials`` value: a mapping, a
    JSON string or a file path; the application default credentials when it is empty."""
    import google.auth
    from google.auth import exceptions
    from google.oauth2 import service_account

    if not spec:
        try:
            return google.auth.default(scopes=SCOPES)
        except exceptions.DefaultCredentialsError:
            raise ProviderError(401, "vertex_ai found no credentials: set litellm_params.vertex_credentials or "
                                     "application default credentials ($GOOGLE_APPLICATION_CREDENTIALS)",
                                kind="auth", code="vertex_auth_failed") from None
    info = spec if isinstance(spec, Mapping) else _read(str(spec))
    if not isinstance(info, Mapping):
        raise _bad_credentials()
    info = dict(info)
    try:
        if info.get("type", "service_account") == "service_account":
            creds = service_account.Credentials.from_service_account_info(info, scopes=SCOPES)
        else:
            creds, _ = google.auth.load_credentials_from_dict(info, scopes=SCOPES)
    except (ValueError, KeyError, exceptions.GoogleAuthError):
        raise _bad_credentials() from None
    return creds, info.get("project_id") or info.get("quota_project_id")


def _read(text: str) -> Any:
    if text.lstrip().startswith("{"):
        try:
            return _decode(text)
        except msgspec.DecodeError:
            raise _bad_credentials() from None
    try:
        with open(os.path.expanduser(text), "rb") as f:
            return _decode(f.read())
    except (OSError, msgspec.DecodeError):
        raise _bad_credentials() from None


def _bad_credentials() -> ProviderError:
    return ProviderError(401, "litellm_params.vertex_credentials is neither a service-account JSON nor a readable "
                              "file holding one", param="vertex_credentials", kind="auth",
                         code="invalid_vertex_credentials")


class TokenCache:
    """Bearer tokens per credential, for the life of the process (one worker's)."""

    def __init__(self) -> None:
        self._sources: dict[str, _Source] = {}

    async def token(self, credentials: Any) -> tuple[str, str | None]:
        """(a valid access token, the credential's own project if it names one)."""
        key = credential_key(credentials)
        source = self._sources.get(key)
        if source is None:
            source = self._sources[key] = _Source(credentials)
        return await source.get(), source.project

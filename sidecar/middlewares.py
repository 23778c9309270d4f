"""Middlewares: OpenAI error envelopes for every failure, and the master key."""

from __future__ import annotations

import asyncio
import hmac
import logging

from aiohttp import web
from multidict import istr

from sidecar import keys
from sidecar.errors import SidecarError
from sidecar.http import error_response
from sidecar.secrets import scrub

log = logging.getLogger("sidecar")

PUBLIC_PREFIXES = ("/health/",)


@web.middleware
async def errors(request: web.Request, handler) -> web.StreamResponse:
    """Every error leaves as ``{"error": {message, type, param, code}}``, never a traceback."""
    try:
        return await handler(request)
    except SidecarError as err:
        err.message = scrub(err.message)
        return error_response(err)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return error_response(_from_http_exception(request, exc))
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("unhandled error serving %s %s", request.method, request.path)
        return error_response(SidecarError(500, "internal error in llm-sidecar; see its log", type="internal_error"))


def _from_http_exception(request: web.Request, exc: web.HTTPException) -> SidecarError:
    if exc.status == 413:
        limit = request.app[keys.CONFIG].general.max_request_size_mb
        return SidecarError(413, f"request body is larger than {limit:g} MB "
                                 "(general_settings.max_request_size_mb)", code="request_too_large")
    if exc.status == 404:
        return SidecarError(404, f"no route {request.method} {request.path}", code="route_not_found")
    if exc.status == 405:
        err = SidecarError(405, f"method {request.method} is not allowed on {request.path}", code="method_not_allowed")
        err.headers = {"Allow": exc.headers.get("Allow", "")}  # RFC 9110: a 405 lists the allowed methods
        return err
    return SidecarError(exc.status, exc.reason or "request failed")


def presented_keys(request: web.Request) -> list[str]:
    """The keys a client sent: ``Authorization: Bearer``, ``x-api-key``, ``x-litellm-api-key``
    or ``api-key`` (what Azure OpenAI SDK clients send).

    A client may send several (a Vertex or Azure SDK puts its own token in ``Authorization`` and
    the gateway's key in ``x-litellm-api-key``, as LiteLLM documents): any one may match.
    """
    headers = request.headers
    keys_sent = []
    for name in _KEY_HEADERS:
        value = headers.get(name)
        if not value:
            continue
        value = value.strip()
        if value[:6].lower() == "bearer" and value[6:7] in ("", " "):
            value = value[7:].strip()
        if value:
            keys_sent.append(value)
    return keys_sent


_KEY_HEADERS = tuple(istr(name) for name in ("x-litellm-api-key", "Authorization", "x-api-key", "api-key"))
"""(``istr``: the case-insensitive headers look them up without folding the name each time)"""


def is_public(path: str, handler: object) -> bool:
    """Whether ``path`` (or its route's template) is served without the master key: health
    checks, and handlers marked with :func:`sidecar.hooks.public`."""
    return path.startswith(PUBLIC_PREFIXES) or getattr(handler, "sidecar_public", False)


def auth(master_key: str) -> web.middleware:
    """A middleware requiring ``master_key`` on every route but health checks."""
    expected = master_key.encode()

    @web.middleware
    async def require_master_key(request: web.Request, handler) -> web.StreamResponse:
        if not is_public(request.path, request.match_info.handler):
            sent = presented_keys(request)
            if not sent:
                raise SidecarError(401, "missing API key: send 'Authorization: Bearer <key>', 'x-api-key: <key>' "
                                        "or 'api-key: <key>'", code="missing_api_key")
            # every candidate is compared (no early exit), each in constant time
            if not sum(hmac.compare_digest(key.encode(), expected) for key in sent):
                raise SidecarError(401, "invalid API key", code="invalid_api_key")
        return await handler(request)

    return require_master_key

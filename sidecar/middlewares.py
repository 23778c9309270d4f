"""The one middleware: the master key, and OpenAI's error envelope for every failure.

Both in one coroutine layer: aiohttp adds a layer of its own to any middleware chain, and each
layer is a frame and an await on every request.
"""

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


def guard(master_key: str | None) -> web.middleware:
    """The middleware: with ``master_key``, required on every route but the public ones
    (:func:`is_public`); every error leaves as ``{"error": {message, type, param, code}}``,
    never a traceback."""
    expected = master_key.encode() if master_key else None
    bearer = b"Bearer " + expected if expected else b""
    public_routes: dict[web.AbstractRoute, bool] = {}  # (the route table's: bounded)

    @web.middleware
    async def sidecar_guard(request: web.Request, handler) -> web.StreamResponse:
        try:
            if expected is not None:
                match_info = request.match_info
                route = match_info.route
                public = public_routes.get(route)
                if public is None:
                    resource = route.resource
                    public = is_public(request.path if resource is None else resource.canonical, match_info.handler)
                    if resource is not None:
                        public_routes[route] = public
                if not public:
                    check_key(request, expected, bearer)
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
            return error_response(SidecarError(500, "internal error in llm-sidecar; see its log",
                                               type="internal_error"))

    return sidecar_guard


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
_AUTHORIZATION = _KEY_HEADERS[1]


def is_public(path: str, handler: object) -> bool:
    """Whether a route is served without the master key: one whose template (``path``; the
    request's path when no route matched) is a health check's, or whose handler is marked with
    :func:`sidecar.hooks.public`."""
    return path.startswith(PUBLIC_PREFIXES) or getattr(handler, "sidecar_public", False)


def check_key(request: web.Request, expected: bytes, bearer: bytes) -> None:
    """A 401 unless one of the keys the client sent is ``expected`` (``bearer``: ``b"Bearer "``
    and the key). ``Authorization: Bearer <key>``, what the OpenAI SDKs send, is compared first
    (in constant time); anything else takes reading every key header, five times the work."""
    authorization = request.headers.get(_AUTHORIZATION)
    if authorization is not None and hmac.compare_digest(authorization.encode("utf-8", "surrogateescape"), bearer):
        return
    sent = presented_keys(request)
    if not sent:
        raise SidecarError(401, "missing API key: send 'Authorization: Bearer <key>', 'x-api-key: <key>' "
                                "or 'api-key: <key>'", code="missing_api_key")
    # every candidate is compared (no early exit), each in constant time
    if not sum(hmac.compare_digest(key.encode("utf-8", "surrogateescape"), expected) for key in sent):
        raise SidecarError(401, "invalid API key", code="invalid_api_key")

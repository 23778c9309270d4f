"""From a handler to the router and back: one routed request answered, plain or streamed."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from sidecar import keys
from sidecar.dispatch import wants_base64
from sidecar.errors import SidecarError
from sidecar.http import answer_response
from sidecar.logs import tag_call
from sidecar.provider import CAPABILITY_METHODS
from sidecar.relay import relay_raw
from sidecar.routing.policy import request_options
from sidecar.routing.router import RoutedCall, Router
from sidecar.sse import UsageTap, stream_sse
from sidecar.wire import encode_base64
from sidecar.wire_media import RawAnswer


def new_call(request: web.Request, body: dict[str, Any], typed: Any, group: str, capability: str,
             openai_params: frozenset[str]) -> RoutedCall:
    """The router's record of this request (its router keys checked: a 400 names a bad one); the
    provider method that serves it is the capability's (:data:`sidecar.provider.CAPABILITY_METHODS`)."""
    # (by position: a class called with keywords gets them as a dict, ~5,000 instructions more)
    call = RoutedCall(group, CAPABILITY_METHODS[capability], capability, body, typed, openai_params,
                      request_options(body, request.headers.get("x-litellm-timeout")), bool(body.get("stream")))
    tag_call(call.id)  # (log lines of this request carry it: --log-format json)
    return call


def router_for(request: web.Request, body: dict[str, Any]) -> Router:
    """The app's router, or one built from the body's ``user_config`` (when the operator allows it)."""
    if "user_config" in body:
        from sidecar.routing.user_config import user_router

        return user_router(request, body["user_config"])
    return request.app[keys.ROUTER]


async def answer(request: web.Request, router: Router, call: RoutedCall) -> web.StreamResponse:
    """Run ``call`` through ``router`` and answer it; the call ends (``router.finish``) when the
    answer has been written, a stream when it ends."""
    try:
        result = await router.run(request, call)
    except SidecarError as err:
        err.headers = {**router.error_headers(call), **(err.headers or {})}
        raise
    usage = None
    try:
        if isinstance(result, RawAnswer):
            return await relay_raw(request, call.dep, call.provider_call, result, router.headers(call))
        if not call.stream:
            if call.capability == "embedding" and wants_base64(call.body, call.provider_call):
                result = encode_base64(result)
            usage = getattr(result, "usage", None)
            if isinstance(usage, dict):  # an image's or a transcription's: not chat tokens, no cost
                usage = None
            return answer_response(result, router.head(call, usage))
        tap = UsageTap(asked_for_usage(call.typed))
        try:
            return await stream_sse(request, call.dep, call.provider_call, result.rest, router.head(call),
                                    first=result.first, tap=tap)
        finally:
            call.usage, call.error = tap.usage, tap.error  # (router.finish counts and reports them)
    finally:
        router.finish(call, usage)


def asked_for_usage(typed: Any) -> bool:
    """Whether a stream's client asked for the usage chunk (``stream_options.include_usage``)."""
    options = getattr(typed, "stream_options", None)
    return bool(options and options.include_usage)

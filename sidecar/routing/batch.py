"""Batch completions (LiteLLM's ``"model": "gpt-4o,llama3"``): one request to several groups.

Each group is called concurrently through the router (its retries and fallbacks included); the
answer is a JSON list of chat completions in the order given, a failed member holding its error
envelope in its slot. ``"fastest_response": true`` answers only the first success and cancels
the rest. Streaming a batch is refused.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from sidecar.errors import SidecarError, bad_request
from sidecar.http import header_value, json_response
from sidecar.logs import tag_call
from sidecar.routing.router import RoutedCall, Router
from sidecar.routing.serve import new_call
from sidecar.wire import OPENAI_CHAT_PARAMS


def is_batch(router: Router, model: str) -> bool:
    """A comma in a name that no group, alias or wildcard serves."""
    return "," in model and not router.resolve(model)[0]


async def batch_completions(request: web.Request, router: Router, body: dict[str, Any], typed: Any) -> web.Response:
    names = [name.strip() for name in typed.model.split(",")]
    if not all(names):
        raise bad_request(f"`model` {typed.model!r} names an empty model group in its comma-separated list",
                          param="model", code="invalid_value")
    if body.get("stream"):
        raise bad_request("batch completions (several comma-separated models) cannot be streamed; "
                          "send one model, or set stream to false", param="stream", code="invalid_value")
    calls = []
    for name in names:
        call = new_call(request, {**body, "model": name}, typed, name, "chat", OPENAI_CHAT_PARAMS)
        call.batch = True
        router.check_names(call)
        calls.append(call)
    if calls[0].opts.fastest_response:
        return await _fastest(request, router, calls)
    results = await asyncio.gather(*(_member(request, router, call) for call in calls))
    return json_response([result if ok else result.body() for result, ok in results],
                         headers={"x-litellm-model-group": header_value(",".join(names))})


async def _member(request: web.Request, router: Router, call: RoutedCall) -> tuple[Any, bool]:
    """One member's completion, or its error; and whether it succeeded."""
    tag_call(call.id)  # (its own task: its log lines carry its own id)
    try:
        result = await router.run(request, call)
    except SidecarError as err:
        return err, False
    router.finish(call, getattr(result, "usage", None))
    return result, True


async def _fastest(request: web.Request, router: Router, calls: list[RoutedCall]) -> web.Response:
    """The first member to succeed; the others are cancelled. All failed: the first's error."""
    tasks = {asyncio.ensure_future(_member(request, router, call)): call for call in calls}
    failures: dict[asyncio.Future, Any] = {}
    try:
        pending = set(tasks)
        while pending:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                result, ok = task.result()
                if ok:
                    call = tasks[task]
                    return json_response(result, headers=router.headers(call, getattr(result, "usage", None)))
                failures[task] = result
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    first: SidecarError = failures[next(iter(tasks))]
    return json_response(first.body(), status=first.status, headers=first.headers)

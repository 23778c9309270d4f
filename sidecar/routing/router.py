"""The router: one call's whole life, from choosing a deployment to its end.

:meth:`Router.run` chooses, attempts, classifies, retries and falls back; a stream counts as
served once its first chunk arrived. :meth:`Router.finish` is the one place a call ends (plain
or streamed, served or failed): limits are released there, latency and tokens recorded.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
import time
from typing import TYPE_CHECKING, Any

from aiohttp import web

from sidecar.dispatch import build_call, scrubbed
from sidecar.errors import ProviderError, SidecarError
from sidecar.events import CallEvent, PreCall
from sidecar.http import convert, head_items, header_value
from sidecar.info import response_cost, token_prices
from sidecar.provider import ProviderCall
from sidecar.registry import Deployment, Registry
from sidecar.routing import report
from sidecar.routing.attempt import prime, retry_after
from sidecar.routing.choose import candidates, estimate_input_tokens, pick
from sidecar.routing.ids import call_id
from sidecar.routing.policy import RequestOptions, RouteInfo, RouterPolicy, route_info
from sidecar.routing.state import RouterState
from sidecar.wire import Usage

if TYPE_CHECKING:
    from sidecar.hooks import EventBus, PreCallRunner

log = logging.getLogger("sidecar")

COOLABLE = frozenset({"rate_limit", "auth", "timeout", "not_found", "server"})
"""Kinds that may cool a deployment down (LiteLLM's 429, 401, 408, 404 and 5xx)."""
NO_FALLBACK = frozenset({"bad_request"})
"""Kinds no fallback is tried for: the request itself is wrong, and would be everywhere."""
MAX_RETRY_AFTER = 60.0
BACKOFF_START, BACKOFF_MAX = 0.5, 8.0


class _MockFailure(ProviderError):
    """``mock_testing_fallbacks``: a failure made up for testing a config (no cooldown, no retry)."""


class RoutedCall:
    """One client request as the router carries it.

    A plain class, not a dataclass: most of its fields keep their class-level default for the
    whole call, so making one sets only the eight every request has, its id, start and attempt
    counts (the generated ``__init__`` of 32 fields cost about 11,500 instructions a request)."""

    group: str
    method: str
    capability: str
    body: dict[str, Any]
    typed: Any
    openai_params: frozenset[str]
    opts: RequestOptions
    stream: bool
    id: str
    started: float
    attempts: dict[str, int]
    attempts_made: int = 0
    """The attempts made so far, in every group (the sum of :attr:`attempts`)."""
    deadline: float | None = None
    estimate: int = 0
    retries: int = 0
    fallbacks: int = 0
    max_retries: int = 0
    dep: Deployment | None = None
    route: RouteInfo | None = None
    served_group: str = ""
    provider_call: ProviderCall | None = None
    timeout: float | None = None
    upstream_seconds: float = 0.0
    attempt_started: float = 0.0
    """When the current attempt began (monotonic): a failed attempt's time is measured from it."""
    failed_seconds: float = 0.0
    """The last failed attempt's time (an error answer's overhead is the rest, as an answer's is
    the rest of the attempt that served it)."""
    failed_dep: str | None = None
    """The last deployment that failed (an error answer's ``x-litellm-model-id``)."""
    finished: bool = False
    upload: Any = None
    """A transcription's file (:class:`sidecar.uploads.Upload`), handed to each attempt's ProviderCall."""
    batch: bool = False
    usage: Any = None
    """A stream's usage, when its final chunk carried one."""
    error: SidecarError | None = None
    """A stream's failure after its first chunk (the client got an error event)."""
    cost: float | None = None
    """The answer's cost in USD, once :meth:`Router.head` priced it (the call's event reuses it)."""
    first_at: float = 0.0
    """When a stream's first chunk arrived (monotonic)."""
    failed_attempt: CallEvent | None = None
    """The last failed attempt's event, held until it is known whether the client gets its error."""
    resolved: tuple[list[Deployment], str | None] | None = None
    """What the requested group resolved to when the call began (its deployments, a wildcard's capture)."""

    def __init__(self, group: str, method: str, capability: str, body: dict[str, Any], typed: Any,
                 openai_params: frozenset[str], opts: RequestOptions, stream: bool = False) -> None:
        self.group = group
        self.method = method
        self.capability = capability
        self.body = body
        self.typed = typed
        self.openai_params = openai_params
        self.opts = opts
        self.stream = stream
        self.id = call_id()
        self.started = time.monotonic()
        self.attempts = {}

    def __repr__(self) -> str:
        return f"RoutedCall(id={self.id!r}, group={self.group!r}, capability={self.capability!r})"


class Router:
    def __init__(self, registry: Registry, policy: RouterPolicy, state: RouterState,
                 synced: dict[str, Any] | None = None) -> None:
        self.registry = registry
        self.policy = policy
        self.state = state
        self.synced = synced if synced is not None else {}
        self._needs_estimate = policy.pre_call_checks or policy.strategy.startswith("usage-based")
        self._live_version = -1
        self._groups: dict[int, tuple[list[Deployment], list[RouteInfo], bool, bool]] = {}
        """By the id of a resolved deployment list: its routes, whether one has a ``tpm`` limit,
        and whether it is a single deployment with no limit (cleared when the registry changes)."""
        self._names: dict[tuple[str, str], tuple[str, str]] = {}
        """By (deployment id, group): the two as header values (:func:`header_value`, made once)."""
        self.pre_call: PreCallRunner | None = None
        """``sidecar_pre_call`` implementations, if any plugin has one (:mod:`sidecar.hooks`)."""
        self.events: EventBus | None = None
        """Where finished calls are told to ``sidecar_call_finished``, if any plugin listens."""

    # ---------------------------------------------------------------- names

    def resolve(self, name: str) -> tuple[list[Deployment], str | None]:
        """The deployments serving ``name``: a group, a wildcard, an alias, or a ``model_info.id``."""
        deps, captured = self.registry.resolve(name)
        if deps:
            return deps, captured
        target = self.policy.aliases.get(name)
        if target is not None:
            return self.registry.resolve(target)
        dep = self.registry.get(name)
        return ([dep], None) if dep is not None else ([], None)

    def check_names(self, call: RoutedCall) -> None:
        """A 404 for an unknown model, a 400 for an unknown group in the body's ``fallbacks``."""
        if self.registry.version != self._live_version:  # forget the stats of deleted deployments
            self._live_version = self.registry.version
            self.state.forget({dep.id for dep in self.registry})
            self._groups.clear()
            self._names.clear()
        call.resolved = self.resolve(call.group)
        if not call.resolved[0]:
            raise self.registry.not_found(call.group)
        for name in call.opts.fallbacks or ():
            if not self.resolve(name)[0]:
                raise SidecarError(400, f"`fallbacks` names {name!r}, which is not a model group here",
                                   param="fallbacks", code="unknown_fallback")

    # ---------------------------------------------------------------- a call's life

    async def run(self, request: web.Request, call: RoutedCall) -> Any:
        """The provider's answer (a stream: primed with its first chunk) from the first
        deployment that serves the call, through retries and fallbacks; else the last error.
        A call's life starts here and ends in :meth:`finish`: at once when it fails here, else
        when its answer has been written (a stream's when it ends)."""
        try:
            if self.pre_call is not None:
                await self._pre_call(request, call)
            return await self._run(request, call)
        except SidecarError as err:
            self.finish(call, error=err)
            raise

    async def _pre_call(self, request: web.Request, call: RoutedCall) -> None:
        """The plugins' ``sidecar_pre_call``: the body they leave is the one routed (typed anew)."""
        assert self.pre_call is not None
        pre = PreCall(call_id=call.id, group=call.group, capability=call.capability, body=call.body,
                      headers=request.headers, stream=call.stream)
        body = await self.pre_call.run(pre)
        call.typed = convert(body, type(call.typed))
        call.body = body
        call.stream = bool(body.get("stream"))
        model = body.get("model")
        if isinstance(model, str) and model and model != call.group:
            call.group = model

    async def _run(self, request: web.Request, call: RoutedCall) -> Any:
        if call.opts.timeout is not None:
            call.deadline = call.started + call.opts.timeout
            call.timeout = call.opts.timeout
        if self._needs_estimate:
            call.estimate = estimate_input_tokens(call.body)
        self.check_names(call)
        try:
            return await self._run_group(request, call, call.group, original=True)
        except ProviderError as err:
            first = err
        last = first
        for target in self._fallbacks(call, first.kind)[:self.policy.max_fallbacks]:
            if self._past_deadline(call):
                break
            call.fallbacks += 1
            try:
                return await self._run_group(request, call, target, original=False)
            except ProviderError as err:
                last = err
            except SidecarError as err:  # the fallback's deployment cannot take this request (a param...)
                log.warning("fallback %r cannot serve the request: %s", target, err.message,
                            extra={"call_id": call.id})
        raise self._final(call, last)

    def finish(self, call: RoutedCall, usage: Any = None, failed: bool = False,
               error: SidecarError | None = None) -> None:
        """The call's end (once). Served: limits released, tokens and latency recorded, its event
        sent (``failed``: a stream that broke after its first chunk). With ``error``, the call
        failed before any answer (every attempt's limits are already released): the client gets
        ``error``, and listeners the final event."""
        if error is not None:
            if not call.finished:
                call.finished = True
                if self.events is not None:
                    report.final_failure(self, call, error)
            return
        if call.finished or call.dep is None or call.route is None:
            return
        call.finished = True
        now = time.monotonic()
        if usage is None:
            usage = call.usage
        self.state.end(call.dep.id, call.route.limits, getattr(usage, "total_tokens", None) or call.estimate, now)
        if not call.stream and not failed:
            self._sample(call.dep.id, now, call.upstream_seconds)
        if self.events is not None:
            self.events.emit(report.served(self, call, usage, now))

    def headers(self, call: RoutedCall, usage: Any = None) -> dict[str, str]:
        """:meth:`head` as a dict (an answer aiohttp prepares: a batch's, a relayed file's)."""
        return dict(head_items(self.head(call, usage)))

    def head(self, call: RoutedCall, usage: Any = None) -> str:
        """The answer's headers as head lines (``name: value\\r\\n`` each, for
        :class:`~sidecar.http.OnePieceHead`): LiteLLM's ``x-litellm-*`` (and ``x-ratelimit-*``
        where the deployment has limits); with ``usage``, the cost. One f-string: a dict joined
        into lines cost six times as much (callgrind). Every value is a number, the call's own id
        or a name passed through :func:`header_value`, so no line can hold a CR or LF."""
        dep, route = call.dep, call.route
        assert dep is not None and route is not None
        total_ms = (time.monotonic() - call.started) * 1000
        overhead_ms = total_ms - call.upstream_seconds * 1000
        if overhead_ms < 0.0:
            overhead_ms = 0.0
        names = self._names.get((dep.id, call.served_group))
        if names is None:
            if len(self._names) >= 4096:
                self._names.clear()
            names = self._names[dep.id, call.served_group] = (header_value(dep.id), header_value(call.served_group))
        head = (f"x-litellm-call-id: {call.id}\r\nx-litellm-model-id: {names[0]}\r\n"
                f"x-litellm-model-group: {names[1]}\r\nx-litellm-attempted-retries: {call.retries}\r\n"
                f"x-litellm-max-retries: {call.max_retries}\r\nx-litellm-attempted-fallbacks: {call.fallbacks}\r\n"
                f"x-litellm-response-duration-ms: {total_ms:.3f}\r\nx-litellm-overhead-duration-ms: {overhead_ms:.3f}\r\n")
        if call.timeout is not None:
            head += f"x-litellm-timeout: {call.timeout:g}\r\n"
        limits = route.limits
        if limits.rpm is not None or limits.tpm is not None:
            requests, tokens, _, _ = self.state.usage(dep.id, time.monotonic())
            if limits.rpm is not None:
                head += (f"x-ratelimit-limit-requests: {limits.rpm}\r\n"
                         f"x-ratelimit-remaining-requests: {max(limits.rpm - requests, 0)}\r\n")
            if limits.tpm is not None:
                if not call.finished:  # this answer's tokens are counted when it ends, just after
                    tokens += getattr(usage, "total_tokens", None) or 0
                head += (f"x-ratelimit-limit-tokens: {limits.tpm}\r\n"
                         f"x-ratelimit-remaining-tokens: {max(limits.tpm - tokens, 0)}\r\n")
        if usage is not None and call.provider_call is not None:
            prices = token_prices(dep, call.provider_call.model, self.synced)
            if type(usage) is Usage:  # (a chat's: its fields read directly, not through getattr)
                call.cost = response_cost(prices, usage.prompt_tokens or 0, usage.completion_tokens or 0)
            else:
                call.cost = response_cost(prices, getattr(usage, "prompt_tokens", 0) or 0,
                                          getattr(usage, "completion_tokens", 0) or 0,
                                          getattr(usage, "search_units", 0) or 0)  # (a rerank's)
            head += f"x-litellm-response-cost: {call.cost!r}\r\n"
        return head

    def error_headers(self, call: RoutedCall) -> dict[str, str]:
        """The ``x-litellm-*`` headers an error answer carries: those of an answer, the model id
        naming the last deployment tried (none when no attempt was made)."""
        total_ms = (time.monotonic() - call.started) * 1000
        headers = {
            "x-litellm-call-id": call.id,
            "x-litellm-model-group": header_value(call.group),
            "x-litellm-attempted-retries": str(call.retries),
            "x-litellm-max-retries": str(call.max_retries),
            "x-litellm-attempted-fallbacks": str(call.fallbacks),
            "x-litellm-response-duration-ms": f"{total_ms:.3f}",
            "x-litellm-overhead-duration-ms": f"{max(total_ms - call.failed_seconds * 1000, 0.0):.3f}",
        }
        if call.failed_dep is not None:
            headers["x-litellm-model-id"] = header_value(call.failed_dep)
        if call.timeout is not None:
            headers["x-litellm-timeout"] = f"{call.timeout:g}"
        return headers

    # ---------------------------------------------------------------- one group

    async def _run_group(self, request: web.Request, call: RoutedCall, group: str, original: bool) -> Any:
        deps, captured = call.resolved if original and call.resolved is not None else self.resolve(group)
        if not deps:
            log.warning("fallback group %r is not configured; skipped", group, extra={"call_id": call.id})
            raise ProviderError(404, f"fallback model group {group!r} is not configured", code="model_not_found")
        routes, tpm_limited, single = self._routes(deps)
        if not call.estimate and tpm_limited:
            call.estimate = estimate_input_tokens(call.body)
        excluded: set[str] = set()
        tries = 0
        last: ProviderError | None = None
        while True:
            now = time.monotonic()
            if single:  # (the only deployment of a group is never cooled down, and has no limit)
                dep, route = deps[0], routes[0]
            else:
                found = candidates(deps, routes, self.state, self.policy, call.estimate, now, excluded)
                if not found.free:
                    if last is not None:
                        raise last
                    raise self._none_free(group, found.wait, found.too_small, len(deps), call)
                dep, route = pick(found.free, self.state, self.policy, now)
            if original and not call.max_retries:
                call.max_retries = self._max_retries(route, call)
            try:
                return await self._attempt(request, call, group, dep, route, captured, original)
            except _Busy:
                excluded.add(dep.id)
                continue
            except ProviderError as err:
                last = err
                cooled = False
                if not isinstance(err, _MockFailure):
                    cooled = self._failed(dep, route, err, len(deps), call)
                    allowed = self.policy.retries_for(err.kind, route.num_retries, call.opts.num_retries)
                else:
                    allowed = 0
                if self.events is not None:
                    report.attempt_failed(self, call, group, dep, err, original, cooled)
                if tries >= allowed or self._past_deadline(call):
                    raise
                tries += 1
                call.retries += 1
                excluded.add(dep.id)
                now = time.monotonic()
                if not single and candidates(deps, routes, self.state, self.policy, call.estimate, now, excluded).free:
                    continue  # another deployment is free: retry there at once
                wait = self._retry_wait(err, tries)
                if not single:
                    found = candidates(deps, routes, self.state, self.policy, call.estimate, now)
                    if not found.free and found.wait > wait:
                        wait = found.wait  # (no deployment frees sooner: a shorter wait would find none)
                if wait > MAX_RETRY_AFTER or (call.deadline is not None and now + wait >= call.deadline):
                    raise  # (a wait past 60 s or past the call's timeout is not started)
                await asyncio.sleep(wait)
                excluded.clear()

    def _routes(self, deps: list[Deployment]) -> tuple[list[RouteInfo], bool, bool]:
        """The deployments' routes, whether one has a ``tpm`` limit, and whether the group is one
        deployment with no limit (then it is never cooled down nor skipped): worked out once per
        resolved list until the registry changes."""
        cached = self._groups.get(id(deps))
        if cached is not None and cached[0] is deps:
            return cached[1], cached[2], cached[3]
        routes = [route_info(d, self.policy, self.price) for d in deps]
        tpm_limited = any(r.limits.tpm is not None for r in routes)
        single = len(deps) == 1 and not routes[0].limits.active and not self.policy.pre_call_checks
        if len(self._groups) >= 4096:
            self._groups.clear()
        self._groups[id(deps)] = (deps, routes, tpm_limited, single)
        return routes, tpm_limited, single

    async def _attempt(self, request: web.Request, call: RoutedCall, group: str, dep: Deployment,
                       route: RouteInfo, captured: str | None, original: bool) -> Any:
        now = time.monotonic()
        if self.state.begin(dep.id, route.limits, call.estimate, now):
            raise _Busy()
        call.attempt_started = now
        call.attempts[group] = call.attempts.get(group, 0) + 1
        call.attempts_made += 1
        try:
            if original and call.opts.mock_failure is not None:
                raise _MockFailure(500 if call.opts.mock_failure == "server" else 400,
                                   f"mock_testing_fallbacks: a {call.opts.mock_failure} failure made up for "
                                   f"model group {group!r}", kind=call.opts.mock_failure, code="mock_failure")
            params = self._params(call, route, dep)
            pcall = build_call(request, call.body, call.typed, dep, captured, call.capability,
                               call.openai_params, params)
            pcall.upload = call.upload
            started = time.monotonic()
            result = await self._call_provider(call, dep, pcall)
            call.upstream_seconds = time.monotonic() - started
        except BaseException:
            now = time.monotonic()
            self.state.end(dep.id, route.limits, 0, now)
            call.failed_seconds = now - call.attempt_started
            call.failed_dep = dep.id
            raise
        call.dep, call.route, call.provider_call, call.served_group = dep, route, pcall, group
        if call.failed_attempt is not None and self.events is not None:
            self.events.emit(call.failed_attempt)  # (a retry or fallback served: not final)
            call.failed_attempt = None
        alias_of = self.policy.aliases.get(group)
        if alias_of is not None and not self.registry.resolve(group)[0]:
            call.served_group = alias_of  # (x-litellm-model-group names the group, not the alias)
        if call.stream:
            call.first_at = time.monotonic()
            self._sample(dep.id, call.first_at, call.upstream_seconds)  # time to first token
        return result

    async def _call_provider(self, call: RoutedCall, dep: Deployment, pcall: ProviderCall) -> Any:
        """The provider's answer, a stream primed with its first chunk, within the call's deadline;
        with a ``mock_response``, the core's made-up answer instead (no upstream call)."""
        mocked = call.body.get("mock_response")
        if mocked is None:
            mocked = pcall.params.get("mock_response")
        if mocked is None:
            fn = getattr(dep.provider, call.method)
        else:  # (sidecar.mocking is imported only by the calls that ask for it)
            from sidecar import mocking

            fn = functools.partial(mocking.answer, call.method, mocked, call.body)
        try:
            if call.deadline is None:
                result = await fn(pcall)
                return await prime(result) if call.stream else result
            async with asyncio.timeout(max(call.deadline - time.monotonic(), 0.0)):
                result = await fn(pcall)
                return await prime(result) if call.stream else result
        except SidecarError as err:
            raise scrubbed(err, dep, pcall, call.id) from None
        except TimeoutError:
            raise scrubbed(ProviderError(504, f"{dep.provider.name} upstream did not answer within the "
                                              f"request's timeout of {call.opts.timeout:g} s", code="timeout"),
                           dep, pcall, call.id) from None
        except NotImplementedError:
            raise SidecarError(400, f"provider {dep.provider.name!r} does not implement this endpoint",
                               param="model", code="unsupported_capability") from None

    def _params(self, call: RoutedCall, route: RouteInfo, dep: Deployment) -> dict[str, Any]:
        """The deployment's params with this attempt's timeouts: the request's (what is left of
        it), else the deployment's, else the router's."""
        params = dep.litellm_params
        if call.deadline is not None:
            left = max(call.deadline - time.monotonic(), 0.001)
            return {**params, "timeout": left, "stream_timeout": call.opts.timeout}
        policy = self.policy
        timeout = route.timeout
        stream_timeout = route.stream_timeout
        if (timeout is None and policy.timeout is not None) or (stream_timeout is None and policy.stream_timeout is not None):
            params = {**params}
            if timeout is None and policy.timeout is not None:
                params["timeout"] = timeout = policy.timeout
            if stream_timeout is None and policy.stream_timeout is not None:
                params["stream_timeout"] = stream_timeout = policy.stream_timeout
        call.timeout = (stream_timeout or timeout) if call.stream else timeout
        return params

    # ---------------------------------------------------------------- failures

    def _failed(self, dep: Deployment, route: RouteInfo, err: ProviderError, group_size: int, call: RoutedCall) -> bool:
        """Count a failure, and cool the deployment down when the rules say so (then True)."""
        now = time.monotonic()
        kind = err.kind
        fails, fails_of_kind, requests = self.state.failed(dep.id, kind, now, time.time())
        if kind == "timeout":
            self._sample(dep.id, now, 1000.0)  # a timed-out deployment is not the fastest
        policy = self.policy
        if policy.disable_cooldowns or group_size < 2 or kind not in COOLABLE:
            return False
        if kind == "rate_limit":
            cool = True
        elif kind in policy.allowed_fails_by_kind:
            cool = fails_of_kind > policy.allowed_fails_by_kind[kind]
        elif policy.allowed_fails is not None:
            cool = fails > policy.allowed_fails
        else:  # LiteLLM's default: not-retryable kinds at once, others past half of this minute's requests
            cool = kind in ("auth", "not_found") or fails * 2 > max(requests, 1)
        if not cool:
            return False
        seconds = route.cooldown_time
        if seconds is None:
            seconds = retry_after(err)
        if seconds is None:
            seconds = policy.cooldown_time
        if self.state.cool(dep.id, now + seconds):
            log.warning("deployment %s (%s) cooling down for %.3g s after a %s failure",
                        dep.id, dep.model_name, seconds, kind, extra={"call_id": call.id})
            return True
        return False

    def _retry_wait(self, err: ProviderError, tries: int) -> float:
        """The upstream's ``Retry-After``, else backoff with jitter (0.5 s doubling, at most 8 s).
        The caller starts no wait over :data:`MAX_RETRY_AFTER` (60 s) or past the call's
        deadline: the group's retries end there (its fallbacks follow), rather than sleeping a
        minute to ask an upstream that said it would still refuse, or into a timeout."""
        wait = retry_after(err)
        if wait is None or wait <= 0:
            wait = min(BACKOFF_START * 2 ** (tries - 1), BACKOFF_MAX) * (0.75 + random.random() / 4)
        return max(wait, self.policy.retry_after)

    def _fallbacks(self, call: RoutedCall, kind: str) -> list[str]:
        if call.opts.disable_fallbacks or kind in NO_FALLBACK:
            return []
        policy, group = self.policy, call.group
        if kind == "context_window":
            return policy.context_window_fallbacks.get(group) or policy.context_window_fallbacks.get("*") or []
        if kind == "content_policy":
            return policy.content_policy_fallbacks.get(group) or policy.content_policy_fallbacks.get("*") or []
        if call.opts.fallbacks is not None:
            return call.opts.fallbacks
        return policy.fallbacks.get(group) or policy.fallbacks.get("*") or policy.default_fallbacks

    def _none_free(self, group: str, wait: float, too_small: int, size: int, call: RoutedCall) -> ProviderError:
        if too_small and too_small == size:
            return ProviderError(400, f"the request's ~{call.estimate} input tokens exceed the context window "
                                      f"(max_input_tokens) of every deployment of model group {group!r}",
                                 kind="context_window", code="context_length_exceeded", param="messages")
        seconds = max(int(wait + 0.999), 1)
        return ProviderError(429, f"no deployment of model group {group!r} is free now (cooling down or at its "
                                  f"rpm/tpm/max_parallel_requests limit); try again in {seconds} s",
                             kind="rate_limit", code="no_deployments_available",
                             headers={"Retry-After": str(seconds)})

    def _final(self, call: RoutedCall, err: ProviderError) -> SidecarError:
        """The error the client gets: the last one, saying how many attempts were made where."""
        total = sum(call.attempts.values())
        if total > 1 or call.fallbacks:
            where = ", ".join(f"{g} x{n}" for g, n in call.attempts.items()) or "none"
            err.message = f"{err.message} (after {total} attempts: {where})"
        if err.kind == "timeout" and call.opts.timeout is not None:
            err.status, err.type = 408, "timeout_error"
        return err

    def _past_deadline(self, call: RoutedCall) -> bool:
        return call.deadline is not None and time.monotonic() >= call.deadline

    # ---------------------------------------------------------------- small things

    def _max_retries(self, route: RouteInfo, call: RoutedCall) -> int:
        for value in (call.opts.num_retries, route.num_retries):
            if value is not None:
                return value
        return self.policy.num_retries

    def _sample(self, dep_id: str, now: float, seconds: float) -> None:
        if self.policy.strategy == "latency-based-routing":
            self.state.sample(dep_id, now, seconds)

    def price(self, dep: Deployment) -> float:
        """What cost-based routing compares: input+output USD per token (0 for other strategies)."""
        if self.policy.strategy != "cost-based-routing":
            return 0.0
        prices = token_prices(dep, dep.upstream_model(), self.synced)
        cost = prices[0] + prices[1]
        return cost if cost else 1.0  # (LiteLLM prices an unknown model at $1 a token)


class _Busy(Exception):
    """The chosen deployment reached a limit between choosing and starting (another worker)."""

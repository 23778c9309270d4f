"""From :class:`sidecar.CallEvent` s to LiteLLM's metrics.

The recorder runs in the sidecar's event thread (a plain ``sidecar_call_finished``), once per
upstream attempt, so it keeps the work per event small: the series a served attempt moves are
bound once per (group asked for, group, deployment, model) and kept; every other series is bound
once per label values. Which event moves what:

- every attempt with a deployment: ``litellm_deployment_total_requests`` and its success or
  failure counter, and ``litellm_deployment_state`` (0 served, 1 failed, 2 cooled down);
  a cooldown also ``litellm_deployment_cooled_down``;
- a served attempt: tokens, spend, the latency histograms, the remaining rpm/tpm gauges;
- the final event (what the client got): ``litellm_proxy_total_requests_metric``, and
  ``litellm_proxy_failed_requests_metric`` for an error;
- fallback attempts: once per fallback group tried, ``litellm_deployment_successful_fallbacks``
  or ``litellm_deployment_failed_fallbacks``, labelled with the failure that caused the fallback.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from sidecar import CallEvent, hookimpl
from sidecar_prometheus.errors import exception_class
from sidecar_prometheus.families import Families

__all__ = ["Recorder"]

MAX_OPEN_CALLS = 10_000
"""Calls with a failed attempt whose final event has not come yet (they are forgotten past this:
their final event may have been dropped by a full event queue)."""
UNKNOWN_MODEL = "other"
"""``requested_model`` of a request for a model nothing serves (as LiteLLM: the name is the client's
to choose, so it would make a series per typo)."""


class _Served:
    """The series a served attempt of one deployment moves, bound once."""

    __slots__ = ("api_latency", "input", "latency", "output", "overhead", "proxy_total",
                 "remaining_requests", "remaining_tokens", "spend", "state", "success", "total", "tokens",
                 "ttft", "ttft_labels", "upstream")

    def __init__(self, f: Families, requested: str, event: CallEvent, user: tuple[str, ...]) -> None:
        model, dep_id, provider = event.model or "", event.deployment_id or "", event.provider or ""
        deployment = (event.group, requested, model, dep_id, provider)
        usage = (model, requested, dep_id, provider, *user)
        latency = (event.group, requested, model, dep_id, provider, *user)
        upstream = (event.group, provider, model, dep_id)
        self.proxy_total = f.proxy_total.labels(requested, "200", dep_id, provider, *user)
        self.success = f.deployment_success.labels(*deployment)
        self.total = f.deployment_total.labels(*deployment)
        self.state = f.state.labels(model, dep_id, provider)
        self.input = f.input_tokens.labels(*usage)
        self.output = f.output_tokens.labels(*usage)
        self.tokens = f.total_tokens.labels(*usage)
        self.spend = f.spend.labels(*usage)
        self.latency = f.request_latency.labels(*latency)
        self.api_latency = f.api_latency.labels(*latency)
        self.overhead = f.overhead.labels(*upstream)
        # bound when first needed: a series bound is shown, and these are not for every deployment
        self.ttft: Any = None  # (streams only)
        self.ttft_labels = latency
        self.remaining_requests: Any = None  # (deployments with an rpm / a tpm only)
        self.remaining_tokens: Any = None
        self.upstream = upstream


class _Open:
    """A call with a failed attempt, until its final event: why it fell back, and a fallback
    group's failure not yet counted (its group may retry)."""

    __slots__ = ("pending", "reason")

    def __init__(self) -> None:
        self.reason: tuple[str, str] = ("", "")
        self.pending: tuple[str, tuple[str, ...]] | None = None


class Recorder:
    """``sidecar_call_finished`` for one app (registered from ``sidecar_configure`` when the app's
    config turns ``prometheus`` on)."""

    def __init__(self, app: web.Application, families: Families, end_user: bool = False) -> None:
        self.app = app
        self.f = families
        self.end_user = end_user
        self._served: dict[tuple[Any, ...], _Served] = {}
        self._bound: dict[tuple[Any, tuple[str, ...]], Any] = {}
        self._classes: dict[tuple[Any, ...], str] = {}
        self._open: dict[str, _Open] = {}

    @hookimpl
    def sidecar_call_finished(self, event: CallEvent, app: web.Application) -> None:
        if app is self.app:  # (a plugin manager shared by several apps calls every app's recorder)
            self.record(event)

    def record(self, event: CallEvent) -> None:
        requested = event.requested_group
        if event.deployment_id is None and event.error_code == "model_not_found":
            requested = UNKNOWN_MODEL
        user = ((event.user or "",) if self.end_user else ())
        if event.ok:
            self._served_attempt(event, requested, user)
            failure = None
        else:
            failure = self._failure(event)
            if event.deployment_id is not None:
                self._failed_attempt(event, requested, failure)
            if event.final:
                self._bind(self.f.proxy_total, (requested, str(event.status), event.deployment_id or "",
                                                event.provider or "", *user)).inc()
                self._bind(self.f.proxy_failed, (requested, str(event.status), failure[1], event.deployment_id or "",
                                                 event.provider or "", *user)).inc()
        if event.fallback or self._open or (failure is not None and not event.final):
            self._fallback(event, requested, failure)

    def _served_attempt(self, event: CallEvent, requested: str, user: tuple[str, ...]) -> None:
        key = (requested, event.group, event.deployment_id, event.model, event.provider, user)
        s = self._served.get(key)
        if s is None:
            s = self._served[key] = _Served(self.f, requested, event, user)
        s.total.inc()
        s.success.inc()
        s.state.set(0)
        if event.final:
            s.proxy_total.inc()
        if event.prompt_tokens:
            s.input.inc(event.prompt_tokens)
        if event.completion_tokens:
            s.output.inc(event.completion_tokens)
        if event.total_tokens:
            s.tokens.inc(event.total_tokens)
        if event.cost:
            s.spend.inc(event.cost)
        s.latency.observe(event.duration)
        api = event.upstream_duration
        if event.stream:
            if s.ttft is None:
                s.ttft = self.f.time_to_first_token.labels(*s.ttft_labels)
            s.ttft.observe(event.upstream_duration)
            if event.time_to_first_token is not None:  # the upstream call lasted to the stream's end
                api = event.duration - event.time_to_first_token + event.upstream_duration
        s.api_latency.observe(api)
        s.overhead.observe(max(event.duration - api, 0.0))
        if event.remaining_requests is not None:
            if s.remaining_requests is None:
                s.remaining_requests = self.f.remaining_requests.labels(*s.upstream)
            s.remaining_requests.set(event.remaining_requests)
        if event.remaining_tokens is not None:
            if s.remaining_tokens is None:
                s.remaining_tokens = self.f.remaining_tokens.labels(*s.upstream)
            s.remaining_tokens.set(event.remaining_tokens)

    def _failure(self, event: CallEvent) -> tuple[str, str]:
        """(exception_status, exception_class) of a failed attempt: the upstream's status if it
        answered (the client gets a 502 for its 500), else the one the client gets."""
        key = (event.provider, event.error_kind, event.status, event.upstream_status, event.error_code)
        name = self._classes.get(key)
        if name is None:
            name = self._classes[key] = exception_class(*key)
        return str(event.upstream_status or event.status), name

    def _failed_attempt(self, event: CallEvent, requested: str, failure: tuple[str, str]) -> None:
        model, dep_id, provider = event.model or "", event.deployment_id or "", event.provider or ""
        deployment = (event.group, requested, model, dep_id, provider)
        self._bind(self.f.deployment_total, deployment).inc()
        self._bind(self.f.deployment_failure, (*deployment, *failure)).inc()
        self._bind(self.f.state, (model, dep_id, provider)).set(2 if event.cooled_down else 1)
        if event.cooled_down:
            self._bind(self.f.cooled_down, (model, dep_id, provider, failure[0])).inc()

    def _fallback(self, event: CallEvent, requested: str, failure: tuple[str, str] | None) -> None:
        """LiteLLM counts a fallback group once, when it served or when it failed; the failure
        labels are those of the attempt that made the request fall back (empty when the group asked
        for had no deployment free to try)."""
        call = self._open.get(event.call_id)
        if call is not None and call.pending is not None and call.pending[0] != event.group:
            self._bind(self.f.fallback_failed, call.pending[1]).inc()  # the next group is being tried
            call.pending = None
        if event.fallback:
            labels = (requested, event.group, *(call.reason if call is not None else ("", "")))
            if event.ok:
                self._bind(self.f.fallback_ok, labels).inc()
            elif event.final:
                self._bind(self.f.fallback_failed, labels).inc()
            else:
                call = call or self._opened(event.call_id)
                call.pending = (event.group, labels)
        elif failure is not None and not event.final:
            call = call or self._opened(event.call_id)
            call.reason = failure
        if event.final:
            self._open.pop(event.call_id, None)

    def _opened(self, call_id: str) -> _Open:
        if len(self._open) >= MAX_OPEN_CALLS:
            self._open.clear()
        call = self._open[call_id] = _Open()
        return call

    def _bind(self, metric: Any, values: tuple[str, ...]) -> Any:
        """``metric.labels(*values)``, kept (prometheus_client checks and locks on every lookup)."""
        child = self._bound.get((metric, values))
        if child is None:
            child = self._bound[(metric, values)] = metric.labels(*values)
        return child

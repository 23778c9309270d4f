"""Choosing a deployment: which are candidates, then the routing strategy among them.

Candidates are the group's deployments that are not cooling down, not at a limit (``rpm``,
``tpm``, ``max_parallel_requests``) and, with ``enable_pre_call_checks``, whose
``max_input_tokens`` fits the request's estimated input. The lowest ``order`` wins; the strategy
picks among those left.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

from sidecar.routing.policy import RouteInfo, RouterPolicy
from sidecar.routing.state import RouterState

_random = random.random
_choice = random.choice


def estimate_input_tokens(body: dict[str, Any]) -> int:
    """A cheap, offline guess of a request's input tokens: 4 characters of text a token, plus 4
    a message, 85 an image part (a low-detail image), and the tools' JSON by the same rule.

    It errs low for text that tokenizes densely (code, CJK scripts: up to 2-3x more tokens)
    and for high-detail images, high for long runs of plain English words; it is a limit's
    and a context check's guess, billed only where an upstream reports no usage at all (Gemini's
    embeddings: LiteLLM counts those with its tokenizer).
    """
    chars, extra = 0, 0
    for message in body.get("messages") or ():
        extra += 4
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            chars += len(content)
        elif isinstance(content, list):
            for part in content:
                if isinstance(part, dict):
                    text = part.get("text")
                    if isinstance(text, str):
                        chars += len(text)
                    elif part.get("type") in ("image_url", "input_image", "image"):
                        extra += 85
    prompt = body.get("input", body.get("prompt"))
    if isinstance(prompt, str):
        chars += len(prompt)
    elif isinstance(prompt, list):
        chars += sum(len(p) if isinstance(p, str) else 4 * (len(p) if isinstance(p, list) else 1) for p in prompt)
    tools = body.get("tools")
    if tools:
        chars += len(repr(tools))
    return chars // 4 + extra


class Candidates:
    """The free deployments of a group for one request, and when the first busy one frees."""

    __slots__ = ("free", "wait", "too_small")

    def __init__(self, free: list[Any], wait: float, too_small: int) -> None:
        self.free = free
        self.wait = wait
        """Seconds until a deployment that is not free now may be (0 when none is busy)."""
        self.too_small = too_small
        """How many were left out because the input does not fit their context window."""


def candidates(deps: Sequence[Any], routes: Sequence[RouteInfo], state: RouterState, policy: RouterPolicy,
               estimate: int, now: float, excluded: set[str] | frozenset[str] = frozenset()) -> Candidates:
    free: list[tuple[Any, RouteInfo]] = []
    wait = float("inf")
    too_small = 0
    for dep, route in zip(deps, routes):
        if dep.id in excluded:
            continue
        until = state.cooling_until(dep.id)
        if until > now:
            wait = min(wait, until - now)
            continue
        if policy.pre_call_checks and route.max_input_tokens is not None and estimate > route.max_input_tokens:
            too_small += 1
            continue
        if route.limits:
            busy = state.wait_for(dep.id, route.limits, estimate, now)
            if busy:
                wait = min(wait, busy)
                continue
        free.append((dep, route))
    if len(free) > 1:
        lowest = min(route.order for _, route in free)
        free = [(d, r) for d, r in free if r.order == lowest]
    return Candidates(free, 0.0 if wait == float("inf") else wait, too_small)


def pick(free: list[tuple[Any, RouteInfo]], state: RouterState, policy: RouterPolicy, now: float) -> tuple[Any, RouteInfo]:
    """The routing strategy's choice among ``free`` (never empty)."""
    if len(free) == 1:
        return free[0]
    strategy = policy.strategy
    if strategy == "simple-shuffle":
        return _shuffle(free)
    if strategy == "least-busy":
        return _lowest(free, lambda d, r: state.in_flight(d.id))
    if strategy == "latency-based-routing":
        return _by_latency(free, state, policy, now)
    if strategy in ("usage-based-routing", "usage-based-routing-v2"):
        return _lowest(free, lambda d, r: state.usage(d.id, now)[1])
    if strategy == "cost-based-routing":
        return _lowest(free, lambda d, r: r.price)
    return _shuffle(free)


def _shuffle(free: list[tuple[Any, RouteInfo]]) -> tuple[Any, RouteInfo]:
    """Random, weighted by ``weight`` (when the first has one), else ``rpm``, else ``tpm``."""
    first = free[0][1]
    if first.weight is not None:
        weights = [r.weight or 0.0 for _, r in free]
    elif first.limits.rpm is not None:
        weights = [float(r.limits.rpm or 0) for _, r in free]
    elif first.limits.tpm is not None:
        weights = [float(r.limits.tpm or 0) for _, r in free]
    else:
        return _choice(free)
    total = sum(weights)
    if total <= 0:
        return _choice(free)
    point = _random() * total
    for item, weight in zip(free, weights):
        point -= weight
        if point < 0:
            return item
    return free[-1]


def _lowest(free: list[tuple[Any, RouteInfo]], key) -> tuple[Any, RouteInfo]:
    """The lowest by ``key``; ties broken at random, so equal deployments share the load."""
    scored = [(key(d, r), (d, r)) for d, r in free]
    best = min(score for score, _ in scored)
    return _choice([item for score, item in scored if score == best])


def _by_latency(free: list[tuple[Any, RouteInfo]], state: RouterState, policy: RouterPolicy,
                now: float) -> tuple[Any, RouteInfo]:
    """Lowest recent latency; a deployment with no recent sample is tried first (it may be the
    fastest); with ``lowest_latency_buffer``, random among those within ``lowest x (1 + buffer)``."""
    scored = []
    for dep, route in free:
        latency = state.latency(dep.id, now, policy.ttl)
        if latency is None:
            return dep, route
        scored.append((latency, (dep, route)))
    best = min(latency for latency, _ in scored)
    bound = best * (1 + policy.latency_buffer)
    return _choice([item for latency, item in scored if latency <= bound])

"""Host names to addresses for new connections, cached for a while (aiohttp's connector caches
them for 10 s too): a burst of new connections to one upstream resolves its name once, not once
per connection in the loop's thread pool (in Kubernetes, where ``ndots: 5`` tries each search
domain first, one lookup can be several DNS queries). Concurrent lookups of one name share one."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from typing import Any

DEFAULT_TTL = 10.0
"""Seconds a name's addresses are reused (aiohttp's ``ttl_dns_cache``)."""

Address = tuple[int, Any]
"""A socket family and the address to connect to (``getaddrinfo``'s ``sockaddr``)."""


def is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


class Resolver:
    """Addresses of ``host:port``, each name looked up at most once per ``ttl`` seconds (0: every
    time); :meth:`forget` drops a name whose addresses all failed, so the next connection asks again."""

    def __init__(self, loop: asyncio.AbstractEventLoop, ttl: float = DEFAULT_TTL, max_names: int = 1024) -> None:
        self.loop = loop
        self.ttl = ttl
        self.max_names = max_names
        self._cache: dict[tuple[str, int], tuple[float, list[Address]]] = {}
        self._pending: dict[tuple[str, int], asyncio.Task[list[Address]]] = {}

    async def addresses(self, host: str, port: int) -> list[Address]:
        """The addresses to try, in the resolver's order; ``socket.gaierror`` when there are none.
        The lookup runs as its own task, which a caller that gives up (its timeout) does not cancel:
        the others waiting for it still get its answer."""
        key = (host, port)
        cached = self._cache.get(key)
        if cached is not None and cached[0] > self.loop.time():
            return cached[1]
        task = self._pending.get(key)
        if task is None:
            task = self._pending[key] = self.loop.create_task(self._lookup(host, port))
            task.add_done_callback(lambda done: self._done(key, done))
        return await asyncio.shield(task)

    def _done(self, key: tuple[str, int], task: asyncio.Task[list[Address]]) -> None:
        del self._pending[key]
        if task.cancelled() or task.exception() is not None:  # (retrieved: no "never retrieved" log)
            return
        if self.ttl > 0:
            if len(self._cache) >= self.max_names:
                self._cache.clear()
            self._cache[key] = (self.loop.time() + self.ttl, task.result())

    def forget(self, host: str, port: int) -> None:
        self._cache.pop((host, port), None)

    async def _lookup(self, host: str, port: int) -> list[Address]:
        infos = await self.loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        found: list[Address] = []
        for family, _, _, _, sockaddr in infos:
            address = (family, sockaddr)
            if address not in found:
                found.append(address)
        if not found:
            raise socket.gaierror(socket.EAI_NONAME, "the name did not resolve")
        return found

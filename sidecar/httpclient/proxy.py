"""Proxies from the environment, read once: ``HTTPS_PROXY`` for https URLs (a CONNECT tunnel),
``HTTP_PROXY`` for http URLs (absolute-form requests), ``NO_PROXY`` for the hosts that bypass them."""

from __future__ import annotations

import base64
from urllib.parse import unquote, urlsplit
from urllib.request import getproxies_environment, proxy_bypass_environment


class Proxy:
    """One proxy: where to connect and the ``Proxy-Authorization`` its URL's user:password give."""

    __slots__ = ("host", "port", "tls", "authorization", "id")

    def __init__(self, url: str) -> None:
        parts = urlsplit(url if "://" in url else "http://" + url)
        if not parts.hostname:
            raise ValueError("a proxy URL in the environment has no host")
        self.tls = parts.scheme == "https"
        self.host = parts.hostname
        self.port = parts.port or (443 if self.tls else 80)
        self.authorization: str | None = None
        if parts.username is not None:
            user_pass = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
            self.authorization = "Basic " + base64.b64encode(user_pass.encode()).decode("ascii")
        self.id = f"{parts.scheme}://{self.host}:{self.port}"  # the pool key's part: no credentials

    def __repr__(self) -> str:
        return f"<Proxy {self.id}>"


SCHEMES = ("http", "https")
"""The URL schemes a proxy from the environment serves (``HTTP_PROXY``, ``HTTPS_PROXY``)."""


def proxies_in_environment() -> bool:
    """Whether ``HTTP_PROXY`` or ``HTTPS_PROXY`` (either case) is set."""
    env = getproxies_environment()
    return any(env.get(scheme) for scheme in SCHEMES)


class ProxyConfig:
    """The environment's proxies, looked up per target host."""

    __slots__ = ("_env", "_proxies")

    def __init__(self, trust_env: bool) -> None:
        self._env = getproxies_environment() if trust_env else {}
        self._proxies: dict[str, Proxy] = {}
        for scheme in SCHEMES:
            url = self._env.get(scheme)
            if url:
                self._proxies[scheme] = Proxy(url)

    def for_target(self, scheme: str, host_port: str) -> Proxy | None:
        """The proxy for ``scheme://host_port``, or None (no proxy, or NO_PROXY names the host)."""
        proxy = self._proxies.get(scheme)
        if proxy is None or proxy_bypass_environment(host_port, self._env):
            return None
        return proxy

"""Where a URL goes: its pool key, the address to connect to, its ``Host`` header and request
target, parsed once per distinct URL (a small cache: a sidecar calls a few URLs many times)."""

from __future__ import annotations

import yarl

from sidecar.httpclient.proxy import Proxy, ProxyConfig

_DEFAULT_PORTS = {"http": 80, "https": 443}


class Target:
    """A parsed request URL."""

    __slots__ = ("key", "https", "host", "port", "host_header", "request_target", "proxy")

    def __init__(self, url: yarl.URL, proxies: ProxyConfig) -> None:
        scheme = url.scheme
        if scheme not in _DEFAULT_PORTS:
            raise ValueError("the upstream URL's scheme is not http or https")
        host = url.raw_host
        if not host:
            raise ValueError("the upstream URL has no host")
        port = url.port or _DEFAULT_PORTS[scheme]
        self.https = scheme == "https"
        self.host = host
        self.port = port
        hostsub = url.host_subcomponent or host  # IPv6 in brackets
        self.host_header = hostsub if url.explicit_port in (None, _DEFAULT_PORTS[scheme]) else f"{hostsub}:{port}"
        path = url.raw_path_qs or "/"
        self.proxy: Proxy | None = proxies.for_target(scheme, f"{host}:{port}")
        # through an http proxy, an http URL's request line names the whole URL (absolute-form)
        self.request_target = f"http://{self.host_header}{path}" if self.proxy and not self.https else path
        self.key = (scheme, host, port, self.proxy.id if self.proxy else None)


class Targets:
    """The parsed targets of the URLs seen (``str`` or :class:`yarl.URL`), bounded."""

    __slots__ = ("_cache", "_proxies")

    def __init__(self, proxies: ProxyConfig) -> None:
        self._cache: dict[object, Target] = {}
        self._proxies = proxies

    def get(self, url: str | yarl.URL) -> Target:
        target = self._cache.get(url)
        if target is None:
            if len(self._cache) > 1024:
                self._cache.clear()
            target = Target(url if isinstance(url, yarl.URL) else yarl.URL(url), self._proxies)
            self._cache[url] = target
        return target

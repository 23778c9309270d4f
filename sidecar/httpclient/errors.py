"""The lean client's errors, as aiohttp's types so ``except aiohttp.ClientError`` keeps working.
No message names a host, a URL or a credential."""

from __future__ import annotations

import os
import socket
import ssl

import aiohttp
import yarl
from multidict import CIMultiDict, CIMultiDictProxy

# aiohttp raises ConnectionTimeoutError (3.10+) when connecting takes too long, ServerTimeoutError
# when a read does; both are asyncio.TimeoutError.
ConnectTimeoutError: type[aiohttp.ServerTimeoutError] = getattr(aiohttp, "ConnectionTimeoutError",
                                                               aiohttp.ServerTimeoutError)
ReadTimeoutError = getattr(aiohttp, "SocketTimeoutError", aiohttp.ServerTimeoutError)


class _NoKey:
    """Stands in for aiohttp's connection key: the lean client's errors carry no host (see above)."""

    host = ""
    port = None
    ssl = True
    is_ssl = True
    proxy = None


class UpstreamConnectError(aiohttp.ClientConnectorError):
    """Connecting to the upstream failed: refused, unresolvable, unreachable, or TLS failed. An
    :class:`aiohttp.ClientConnectorError` (its TLS and proxy kinds too), so a plugin's ``except``
    for aiohttp's client catches the lean client's; neither its text nor its attributes
    (``os_error``, ``strerror``, ``host``) name a host."""

    proxy = False
    """(what :func:`sidecar.upstream.connection_error` reads: the proxy failed, this text says how)"""

    def __init__(self, message: str, os_error: OSError | None = None) -> None:
        # the OSError's errno with its own text, not asyncio's (which names the address); the
        # original stays the exception's __cause__
        text = _own_text(os_error)
        clean = OSError(os_error.errno if text is not None else None, text or message)  # type: ignore[union-attr]
        super().__init__(_NoKey(), clean)  # type: ignore[arg-type]
        self._certificate_error = clean  # (read by the certificate kind)
        self.message = message
        self.args = (message,)

    def __str__(self) -> str:
        return self.message


class UpstreamTLSError(UpstreamConnectError, aiohttp.ClientConnectorSSLError):
    """TLS with the upstream failed (not its certificate: a protocol or handshake failure)."""


class UpstreamCertificateError(UpstreamConnectError, aiohttp.ClientConnectorCertificateError):
    """The upstream's TLS certificate was not accepted (untrusted, expired, or not for its host)."""


class ProxyConnectError(UpstreamConnectError, aiohttp.ClientProxyConnectionError):
    """The proxy from ``HTTPS_PROXY`` / ``HTTP_PROXY`` could not be reached or refused the tunnel."""

    proxy = True


class ProxyCertificateError(ProxyConnectError, aiohttp.ClientConnectorCertificateError):
    """The TLS certificate of a proxy reached over TLS (an ``https://`` proxy URL) was not accepted."""


_DNSError = getattr(aiohttp, "ClientConnectorDNSError", aiohttp.ClientConnectorError)  # (aiohttp 3.11+)


class UpstreamNameError(UpstreamConnectError, _DNSError):
    """The upstream's host name did not resolve."""


_NO_REQUEST = aiohttp.RequestInfo(yarl.URL(), "", CIMultiDictProxy(CIMultiDict()), yarl.URL())


class MalformedAnswerError(aiohttp.ClientResponseError):
    """The upstream's answer head is not HTTP/1.x (a bad status line or header)."""

    def __init__(self, message: str) -> None:
        super().__init__(_NO_REQUEST, (), status=502, message=message)

    def __str__(self) -> str:
        return self.message


def connect_error(exc: BaseException, proxy: bool = False) -> UpstreamConnectError:
    """The error for a failed connect to the upstream (or to the ``proxy``; ``exc`` the OSError or
    ssl.SSLError), its text free of addresses (an OSError's text often names them)."""
    who = "the proxy" if proxy else "the upstream"
    os_error = exc if isinstance(exc, OSError) else None
    if isinstance(exc, ssl.SSLCertVerificationError):
        why = exc.verify_message or "not verified"
        if "hostname" in why.lower() or "ip address mismatch" in why.lower():
            why = "it is not for this host"
        return (ProxyCertificateError if proxy else UpstreamCertificateError)(
            f"{who}'s TLS certificate was not accepted: {why}", os_error)
    if isinstance(exc, ssl.SSLError):
        return (ProxyConnectError if proxy else UpstreamTLSError)(
            f"TLS with {who} failed ({exc.reason or type(exc).__name__})", os_error)
    failed: type[UpstreamConnectError] = ProxyConnectError if proxy else UpstreamConnectError
    if isinstance(exc, socket.gaierror) and not proxy:
        failed = UpstreamNameError
    return failed(f"could not connect to {who} ({_own_text(exc) or type(exc).__name__})", os_error)


def _own_text(exc: BaseException | None) -> str | None:
    """An OSError's own text, by its errno (or the resolver's), never asyncio's, which names the
    address ("Connect call failed ('10.0.0.1', 443)"); None for what has none (a TLS error)."""
    if isinstance(exc, socket.gaierror):
        return exc.strerror or "the name did not resolve"
    if isinstance(exc, OSError) and exc.errno and not isinstance(exc, ssl.SSLError):
        return os.strerror(exc.errno)
    return None

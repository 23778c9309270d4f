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


class UpstreamConnectError(aiohttp.ClientConnectionError):
    """Connecting to the upstream failed: refused, unresolvable, unreachable, or TLS failed
    (the lean client's :class:`aiohttp.ClientConnectorError`)."""

    unreachable = True
    """(what :func:`sidecar.upstream.connection_error` reads: a 502 ``upstream_unreachable``)"""
    certificate = False
    proxy = False


class UpstreamCertificateError(UpstreamConnectError):
    """The upstream's TLS certificate was not accepted (untrusted, expired, or not for its host)."""

    certificate = True


class ProxyConnectError(UpstreamConnectError):
    """The proxy from ``HTTPS_PROXY`` / ``HTTP_PROXY`` could not be reached or refused the tunnel."""

    proxy = True


class ProxyCertificateError(ProxyConnectError):
    """The TLS certificate of a proxy reached over TLS (an ``https://`` proxy URL) was not accepted."""

    certificate = True


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
    if isinstance(exc, ssl.SSLCertVerificationError):
        why = exc.verify_message or "not verified"
        if "hostname" in why.lower() or "ip address mismatch" in why.lower():
            why = "it is not for this host"
        return (ProxyCertificateError if proxy else UpstreamCertificateError)(
            f"{who}'s TLS certificate was not accepted: {why}")
    failed = ProxyConnectError if proxy else UpstreamConnectError
    if isinstance(exc, ssl.SSLError):
        return failed(f"TLS with {who} failed ({exc.reason or type(exc).__name__})")
    # the errno's own text: asyncio's strerror names the address ("Connect call failed ('10.0.0.1', 443)")
    if isinstance(exc, socket.gaierror):
        what = exc.strerror or "the name did not resolve"
    elif isinstance(exc, OSError) and exc.errno:
        what = os.strerror(exc.errno)
    else:
        what = type(exc).__name__
    return failed(f"could not connect to {who} ({what})")

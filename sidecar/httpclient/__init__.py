"""A lean keep-alive HTTP/1.1 client for upstream calls (asyncio Protocols and llhttp through
httptools): :class:`LeanSession` stands in for the :class:`aiohttp.ClientSession` subset the
sidecar uses. Imported only when selected (it imports httptools)."""

from sidecar.httpclient.errors import (
    MalformedAnswerError,
    ProxyCertificateError,
    ProxyConnectError,
    UpstreamCertificateError,
    UpstreamConnectError,
)
from sidecar.httpclient.response import LeanResponse
from sidecar.httpclient.session import LeanSession, RequestContext

__all__ = ["LeanResponse", "LeanSession", "MalformedAnswerError", "ProxyCertificateError", "ProxyConnectError",
           "RequestContext", "UpstreamCertificateError", "UpstreamConnectError"]

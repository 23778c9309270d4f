"""What an attempt's outcome tells the router: a failure's ``Retry-After``, and a stream primed
with its first chunk (a stream counts as served once that arrived)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

from sidecar.errors import SidecarError


def retry_after(err: SidecarError) -> float | None:
    """Seconds from ``retry-after-ms`` or ``Retry-After`` (seconds or an HTTP date), if sent."""
    headers = err.headers
    if not headers:
        return None
    lowered = {k.lower(): v for k, v in headers.items()}
    try:
        if "retry-after-ms" in lowered:
            return float(lowered["retry-after-ms"]) / 1000
        value = lowered.get("retry-after")
        if value is None:
            return None
        try:
            return float(value)
        except ValueError:
            from email.utils import parsedate_to_datetime  # (rare: most send seconds)

            return max(parsedate_to_datetime(value).timestamp() - time.time(), 0.0)
    except (ValueError, TypeError):
        return None


class PrimedStream:
    """A stream whose first item has arrived: ``first`` (None for an empty stream) and ``rest``."""

    __slots__ = ("first", "rest")

    def __init__(self, first: Any, rest: Any) -> None:
        self.first = first
        self.rest = rest


async def prime(result: Any) -> PrimedStream:
    """Wait for a stream's first item (a failure before it is the attempt's failure). The rest is
    the provider's own iterator, not a wrapper: a wrapping generator would cost every item."""
    it = result.__aiter__()
    try:
        first = await it.__anext__()
    except StopAsyncIteration:
        return PrimedStream(None, _empty())
    except BaseException:
        aclose = getattr(it, "aclose", None)
        if aclose is not None:
            await aclose()
        raise
    return PrimedStream(first, it)


async def _empty() -> AsyncIterator[Any]:
    return
    yield  # noqa: unreachable - makes this an async generator

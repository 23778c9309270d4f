"""Which values are credentials, and how to keep them out of answers and logs."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

__all__ = ["MASK", "is_secret_param", "scrub", "secret_values"]

_SECRET_NAME = re.compile(
    r"((^|_)(key|apikey|token|secret|password|passwd|credentials?|auth|authorization|signature)$"
    r"|^aws_|^azure_ad|^vertex_credentials$|^api_base$|^base_url$|headers$|^client_secret)",
    re.IGNORECASE,
)

_KEYLIKE = re.compile(r"\b(sk|pk|rk)-[A-Za-z0-9_\-*]{8,}")
MASK = "***"


def is_secret_param(name: str) -> bool:
    """True for ``litellm_params`` keys that hold credentials or where a server lives."""
    return bool(_SECRET_NAME.search(name))


def secret_values(params: Mapping[str, Any], extra_secret: Iterable[str] = (),
                  ambient: Iterable[str] = ()) -> tuple[str, ...]:
    """The credential values in ``params`` plus ``ambient`` ones (longest first), to scrub."""
    extra = set(extra_secret)
    values: set[str] = {str(v) for v in ambient if v}
    for k, v in params.items():
        if v and (k in extra or is_secret_param(k)):
            values.update(_leaves(v))
    values = {v for v in values if len(v) >= 4}
    for value in list(values):
        host = _netloc(value) if "://" in value else ""
        if host:
            values.add(host)
    return longest_first(values)


def longest_first(values: Iterable[str]) -> tuple[str, ...]:
    """Secrets in masking order: a longer one first, so a secret inside another is not half-masked."""
    return tuple(sorted(set(values), key=len, reverse=True))


def _leaves(value: Any) -> list[str]:
    """Every string inside ``value`` (a header dict's values, a credentials list...)."""
    if isinstance(value, Mapping):
        return [leaf for v in value.values() for leaf in _leaves(v)]
    if isinstance(value, list | tuple):
        return [leaf for v in value for leaf in _leaves(v)]
    return [str(value)]


class KnownSecrets:
    """Every credential a deployment of this process has held, for the log filter to mask.

    Deployments change at runtime, so the set grows as they are built (before a change reaches
    the database, whose driver may log it) and is never scanned per deployment; a secret stays
    masked after its deployment is gone. The masking order is computed once per change.
    """

    def __init__(self) -> None:
        self._values: set[str] = set()
        self._ordered: tuple[str, ...] = ()

    def add(self, values: Iterable[str]) -> None:
        new = set(values) - self._values
        if new:
            self._values |= new
            self._ordered = longest_first(self._values)

    def __iter__(self):
        return iter(self._ordered)

    def __len__(self) -> int:
        return len(self._ordered)


KNOWN_SECRETS = KnownSecrets()


def scrub(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with every known secret and anything shaped like an API key masked."""
    for value in secrets:
        if value in text:
            text = text.replace(value, MASK)
    return _KEYLIKE.sub(MASK, text)


def _netloc(url: str) -> str:
    try:
        return urlsplit(url).netloc
    except ValueError:  # not a URL after all (an unclosed "[", say)
        return ""


def strip_url_credentials(url: str) -> str:
    """``url`` without user:password and query string (where tokens like ``?key=`` live); a
    string that does not parse as a URL is withheld whole."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return MASK
    netloc = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))

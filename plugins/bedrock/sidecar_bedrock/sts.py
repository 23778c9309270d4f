"""LiteLLM's STS params: ``aws_role_name`` assumed with the deployment's credentials (STS
``AssumeRole``, with ``aws_session_name`` and ``aws_external_id``), or with
``aws_web_identity_token`` (``AssumeRoleWithWebIdentity``), at ``aws_sts_endpoint`` when given.
Blocking (botocore): called in a thread, as the rest of :mod:`sidecar_bedrock.auth`.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable, Mapping
from typing import Any

from sidecar import ProviderError

ROLE_PARAMS = ("aws_role_name", "aws_session_name", "aws_external_id", "aws_web_identity_token", "aws_sts_endpoint")
"""LiteLLM's STS params: the role to assume, and how."""
WEB_IDENTITY = "assume-role-with-web-identity"
"""botocore's name for credentials got by web identity (its ``method``)."""
_TOKEN_SOURCES = {
    "oidc/file/": lambda rest: _read(rest),
    "oidc/env/": lambda rest: os.environ.get(rest, ""),
    "oidc/env_path/": lambda rest: _read(os.environ.get(rest, "")),
}
"""LiteLLM's ``aws_web_identity_token`` forms read here: a file, a variable, a file a variable names."""


def check_role_params(params: Mapping[str, Any]) -> None:
    """A 400 for an STS param without ``aws_role_name``, or a token source this plugin cannot read."""
    for name in ROLE_PARAMS[1:]:
        if params.get(name) and not params.get("aws_role_name"):
            raise ProviderError(400, f"bedrock: litellm_params.{name} is only used with aws_role_name (the role "
                                     "to assume); set it too, or remove this one", param=name,
                                code="invalid_params", kind="bad_request")
    token = params.get("aws_web_identity_token")
    if isinstance(token, str) and token.startswith("oidc/") and not token.startswith(tuple(_TOKEN_SOURCES)):
        raise ProviderError(400, "bedrock: aws_web_identity_token reads oidc/file/<path>, oidc/env/<VARIABLE> "
                                 "or oidc/env_path/<VARIABLE> here, or takes the token itself; other oidc/ "
                                 "providers are not supported", param="aws_web_identity_token",
                            code="invalid_params", kind="bad_request")


def already_the_role(role: str, creds: Any) -> bool:
    """Whether the machine's own credentials already are ``role``'s, got by web identity (a
    Kubernetes pod's ``$AWS_ROLE_ARN``): then nothing is assumed again, as LiteLLM does."""
    return getattr(creds, "method", None) == WEB_IDENTITY and os.environ.get("AWS_ROLE_ARN") == role


def assumed(session: Any, source: Any, params: Mapping[str, Any], region: str) -> Any:
    """Credentials of ``aws_role_name``, fetched now and again before they expire (botocore's
    refreshing credentials): assumed with ``source``, or with ``aws_web_identity_token`` (read
    afresh at each refresh: a token file rotates)."""
    from botocore.credentials import (
        AssumeRoleCredentialFetcher,
        AssumeRoleWithWebIdentityCredentialFetcher,
        DeferredRefreshableCredentials,
    )

    endpoint = params.get("aws_sts_endpoint")
    create: Callable[..., Any] = functools.partial(_client, session, region, str(endpoint) if endpoint else None)
    extra: dict[str, Any] = {"RoleSessionName": str(params.get("aws_session_name") or f"llm-sidecar-{int(time.time())}")}
    role = str(params["aws_role_name"])
    token = params.get("aws_web_identity_token")
    if token:
        fetcher: Any = AssumeRoleWithWebIdentityCredentialFetcher(create, functools.partial(_token, str(token)), role,
                                                                  extra_args=extra)
    else:
        if params.get("aws_external_id"):  # (AssumeRoleWithWebIdentity takes none)
            extra["ExternalId"] = str(params["aws_external_id"])
        fetcher = AssumeRoleCredentialFetcher(create, source, role, extra_args=extra)
    return DeferredRefreshableCredentials(refresh_using=functools.partial(_fetch, fetcher.fetch_credentials),
                                          method=WEB_IDENTITY if token else "assume-role")


def _client(session: Any, region: str, endpoint: str | None, service: str, **kwargs: Any) -> Any:
    return session.create_client(service, region_name=region, endpoint_url=endpoint, **kwargs)


def _fetch(fetch: Callable[[], Any]) -> Any:
    """STS's answer; its refusal as a 401 (``auth``: the deployment cools down), anything else as
    a 502. Each names AWS's error code only: its message names the caller's ARN and account, and
    botocore logs a failed refresh with this text before the core could mask anything."""
    from botocore.exceptions import ClientError

    try:
        return fetch()
    except ProviderError:
        raise
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code") or "an error"
        hint = " (the role's trust policy must let these credentials assume it)" if code == "AccessDenied" else ""
        raise ProviderError(401, f"bedrock could not assume aws_role_name: STS answered {code}{hint}",
                            kind="auth", code="sts_refused") from None
    except Exception as exc:  # unreachable, or an answer that is not STS's (a proxy's page)
        raise ProviderError(502, f"bedrock could not assume aws_role_name: STS failed ({type(exc).__name__})",
                            code="upstream_unreachable") from None


def _token(value: str) -> str:
    for prefix, read in _TOKEN_SOURCES.items():
        if value.startswith(prefix):
            token = read(value[len(prefix):]).strip()
            if not token:
                raise ProviderError(401, f"bedrock: aws_web_identity_token ({prefix}...) gave no token",
                                    kind="auth", code="missing_credentials")
            return token
    return value


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except OSError:
        return ""

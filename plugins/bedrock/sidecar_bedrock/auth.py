"""AWS credentials and SigV4 signing, by botocore (imported on first use, in a thread).

Credentials come from ``litellm_params`` (``aws_access_key_id``, ``aws_secret_access_key``,
``aws_session_token``), else ``aws_profile_name``'s profile, else botocore's chain (environment,
shared files, SSO, web identity, container and instance roles). With ``aws_role_name`` (LiteLLM's
STS params), those credentials assume that role (STS ``AssumeRole``, with ``aws_session_name``
and ``aws_external_id``); with ``aws_web_identity_token`` too, the token does
(``AssumeRoleWithWebIdentity``), at ``aws_sts_endpoint`` when given. They are resolved once per
deployment, off the event loop, and refreshed (again in a thread) when botocore says they are
about to expire (a role's: 15 minutes before its session ends).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from typing import Any

from sidecar import NO_AMBIENT_CREDENTIALS, ProviderError
from sidecar_bedrock.sts import ROLE_PARAMS, already_the_role, assumed, check_role_params

SERVICE = "bedrock"
"""The SigV4 signing name of the Bedrock runtime (its service model's ``signingName``)."""
DEFAULT_REGION = "us-east-1"
KEY_PARAMS = ("aws_access_key_id", "aws_secret_access_key", "aws_session_token")
ENV_KEYS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")


def _no_credentials() -> ProviderError:
    return ProviderError(401, "bedrock found no AWS credentials: set aws_access_key_id and aws_secret_access_key "
                              "(or aws_profile_name) in litellm_params, or the AWS environment variables",
                         kind="auth", code="missing_credentials")


class Identity:
    """A deployment's credentials and region, as resolved once."""

    def __init__(self, credentials: Any, region: str) -> None:
        self.credentials = credentials
        self.region = region
        self.frozen = credentials.get_frozen_credentials()
        """What requests are signed with: a snapshot, so signing never refreshes on the event loop."""

    def stale(self) -> bool:
        """Whether botocore would refresh the credentials on their next use (its advisory window,
        15 minutes before expiry): a blocking call, to be made in a thread."""
        refresh_needed = getattr(self.credentials, "refresh_needed", None)
        return bool(refresh_needed and refresh_needed())


def _resolve(params: Mapping[str, Any]) -> Identity:
    """Blocking: imports botocore and may read files or call a metadata service or STS."""
    from botocore.credentials import Credentials
    from botocore.exceptions import ProfileNotFound
    from botocore.session import Session

    check_role_params(params)
    region = params.get("aws_region_name")
    role = params.get("aws_role_name")
    by_token = bool(role and params.get("aws_web_identity_token"))  # (the token is the credential)
    own_only = bool(params.get(NO_AMBIENT_CREDENTIALS))  # (the client's: nothing of the machine's)
    session: Any = None
    creds: Any = None
    if params.get("aws_access_key_id") and params.get("aws_secret_access_key"):
        creds = Credentials(str(params["aws_access_key_id"]), str(params["aws_secret_access_key"]),
                            str(params["aws_session_token"]) if params.get("aws_session_token") else None)
        if not region and not own_only:
            region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    elif own_only and not by_token:
        raise _no_credentials()
    elif not own_only:
        profile = params.get("aws_profile_name")
        try:
            session = Session(profile=str(profile)) if profile else Session()
            region = region or os.environ.get("AWS_REGION") or session.get_config_variable("region")
            if not by_token:
                creds = session.get_credentials()
        except ProfileNotFound:
            raise ProviderError(401, "bedrock: aws_profile_name names a profile the AWS config files do not have",
                                kind="auth", code="missing_credentials") from None
        if creds is None and not by_token:
            raise _no_credentials()
    region = str(region or DEFAULT_REGION)
    if role and (params.get("aws_profile_name") or not already_the_role(str(role), creds)):
        creds = assumed(session or Session(), creds, params, region)
    return Identity(creds, region)


class Signer:
    """Resolves a deployment's identity once (in a thread) and signs its requests."""

    def __init__(self) -> None:
        self._identities: dict[tuple[str, tuple[Any, ...]], Identity] = {}
        self._locks: dict[tuple[str, tuple[Any, ...]], asyncio.Lock] = {}

    async def identity(self, deployment_id: str, params: Mapping[str, Any]) -> Identity:
        key = (deployment_id, tuple(str(params.get(k)) for k in (*KEY_PARAMS, *ROLE_PARAMS, "aws_profile_name",
                                                                 "aws_region_name", NO_AMBIENT_CREDENTIALS)))
        found = self._identities.get(key)
        if found is not None and not found.stale():
            return found
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            found = self._identities.get(key)
            if found is None:
                if len(self._identities) > 1024:  # (deployments come and go at runtime)
                    self._identities.clear()
                found = self._identities[key] = await asyncio.to_thread(_resolve, params)
            elif found.stale():
                found.frozen = await asyncio.to_thread(found.credentials.get_frozen_credentials)  # refreshes them
        return found

    @staticmethod
    def headers(identity: Identity, url: str, body: bytes, headers: dict[str, str]) -> dict[str, str]:
        """``headers`` plus SigV4's ``Authorization``, ``X-Amz-Date`` and, with session
        credentials, ``X-Amz-Security-Token``, for a POST of ``body`` to ``url``."""
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        request = AWSRequest(method="POST", url=url, data=body, headers=headers)
        SigV4Auth(identity.frozen, SERVICE, identity.region).add_auth(request)
        return dict(request.headers.items())


def ambient_keys(params: Mapping[str, Any]) -> list[str]:
    """The environment's AWS keys a deployment without its own would use (to mask them)."""
    if params.get("aws_access_key_id") or params.get(NO_AMBIENT_CREDENTIALS):
        return []
    return [v for v in (os.environ.get(name) for name in ENV_KEYS) if v]

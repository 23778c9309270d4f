"""The ``bedrock`` plugin's STS roles (LiteLLM's ``aws_role_name`` and friends) through the
gateway, against an in-process STS that answers AssumeRole and AssumeRoleWithWebIdentity and a
Bedrock runtime that checks the role's SigV4 signatures."""

from __future__ import annotations

import logging

import pytest
from fake_bedrock import (
    ACCESS_KEY,
    REGION,
    ROLE_ARN,
    ROLE_KEY,
    ROLE_SECRET,
    ROLE_TOKEN,
    SECRET_KEY,
    WEB_TOKEN,
    BedrockFake,
    StsFake,
)
from fake_upstreams import start
from openai_helpers import assert_envelope, post, user
from test_bedrock_provider import CLAUDE, bedrock, entry, gateway_for, health_kind  # noqa: F401 (a fixture)

from sidecar.testing import deployment


@pytest.fixture
def no_ambient_aws(monkeypatch, tmp_path):
    """No AWS credentials or role from this machine's environment or files."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_ROLE_ARN",
                 "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


def role_entry(fake: BedrockFake, sts: StsFake, **params) -> dict:
    return deployment("m", f"bedrock/{CLAUDE}", aws_bedrock_runtime_endpoint=fake.root_url, aws_region_name=REGION,
                      aws_role_name=ROLE_ARN, aws_sts_endpoint=sts.root_url, **params)


async def test_aws_role_name_is_assumed_with_the_deployments_keys_and_its_session_is_reused(
        make_client, aiohttp_server, no_ambient_aws):
    """LiteLLM's ``aws_role_name``: STS ``AssumeRole``, signed with the deployment's own keys,
    with ``aws_session_name`` and ``aws_external_id``; Bedrock calls are signed with the role's
    session credentials, fetched once while they are good."""
    sts = await start(aiohttp_server, StsFake())
    fake = await start(aiohttp_server, BedrockFake(ROLE_KEY, ROLE_SECRET, ROLE_TOKEN))
    client = await make_client({"model_list": [role_entry(
        fake, sts, aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY, aws_session_name="team-a",
        aws_external_id="ext-42")]})
    for _ in range(2):
        status, answer, _ = await post(client, "/v1/chat/completions", {"model": "m", "messages": user("hi")})
        assert status == 200, answer
    assert fake.last.headers["X-Amz-Security-Token"] == ROLE_TOKEN
    (call,) = sts.calls
    assert call["Action"] == "AssumeRole" and call["RoleArn"] == ROLE_ARN
    assert call["RoleSessionName"] == "team-a" and call["ExternalId"] == "ext-42"


async def test_a_web_identity_token_assumes_the_role_unsigned(make_client, aiohttp_server, no_ambient_aws):
    sts = await start(aiohttp_server, StsFake())
    fake = await start(aiohttp_server, BedrockFake(ROLE_KEY, ROLE_SECRET, ROLE_TOKEN))
    client = await make_client({"model_list": [role_entry(fake, sts, aws_web_identity_token=WEB_TOKEN)]})
    status, answer, _ = await post(client, "/v1/chat/completions", {"model": "m", "messages": user("hi")})
    assert status == 200, answer
    (call,) = sts.calls
    assert call["Action"] == "AssumeRoleWithWebIdentity" and call["WebIdentityToken"] == WEB_TOKEN
    assert call["RoleSessionName"].startswith("llm-sidecar-")  # (none given: one made up, as LiteLLM does)


async def test_a_pod_already_running_as_the_role_assumes_nothing_more(make_client, aiohttp_server, no_ambient_aws,
                                                                      monkeypatch, tmp_path):
    """EKS's web identity (``$AWS_ROLE_ARN``, ``$AWS_WEB_IDENTITY_TOKEN_FILE``) already gives the
    pod ``aws_role_name``: botocore's chain gets its credentials, and no AssumeRole follows."""
    sts = await start(aiohttp_server, StsFake())
    fake = await start(aiohttp_server, BedrockFake(ROLE_KEY, ROLE_SECRET, ROLE_TOKEN))
    (tmp_path / "token").write_text(WEB_TOKEN)
    monkeypatch.setenv("AWS_ROLE_ARN", ROLE_ARN)
    monkeypatch.setenv("AWS_WEB_IDENTITY_TOKEN_FILE", str(tmp_path / "token"))
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", sts.root_url)  # (botocore's own chain asks the fake)
    client = await make_client({"model_list": [role_entry(fake, sts)]})
    status, answer, _ = await post(client, "/v1/chat/completions", {"model": "m", "messages": user("hi")})
    assert status == 200, answer
    assert [call["Action"] for call in sts.calls] == ["AssumeRoleWithWebIdentity"]


async def test_a_refused_role_is_an_auth_error_that_shows_no_secret(make_client, aiohttp_server, no_ambient_aws, caplog):
    sts = await start(aiohttp_server, StsFake(refuse=True))
    fake = await start(aiohttp_server, BedrockFake(ROLE_KEY, ROLE_SECRET, ROLE_TOKEN))
    client = await make_client({"model_list": [role_entry(fake, sts, aws_access_key_id=ACCESS_KEY,
                                                          aws_secret_access_key=SECRET_KEY, num_retries=0)]})
    with caplog.at_level(logging.DEBUG, logger="sidecar"):  # (libraries at WARNING, as `sidecar serve` keeps them)
        status, answer, _ = await post(client, "/v1/chat/completions", {"model": "m", "messages": user("hi")})
    assert status == 401, answer
    error = assert_envelope(answer)
    assert "AccessDenied" in error["message"] and "Refreshing temporary credentials failed" in caplog.text and error["type"] == "authentication_error"
    assert await health_kind(client, "dep-m") == "auth" and not fake.received
    for secret in (SECRET_KEY, ROLE_ARN):  # (aws_* params are masked wherever they appear)
        assert secret not in error["message"] and secret not in caplog.text


async def test_a_role_a_client_sends_is_refused_else_assumed_only_with_its_own_credentials(
        make_client, aiohttp_server, no_ambient_aws):
    """``aws_role_name`` in a request body is a client-side credential: refused unless the operator
    allows them; allowed, the deployment's keys (or the machine's) never assume a role the client
    chose, so without keys of its own the client gets a 401 and STS is never asked."""
    sts = await start(aiohttp_server, StsFake())
    fake = await start(aiohttp_server, BedrockFake())
    body = {"model": "m", "messages": user("hi"), "aws_role_name": ROLE_ARN, "aws_sts_endpoint": sts.root_url}
    for allowed, expected in ((False, 400), (True, 401)):
        client = await make_client({"model_list": [entry("m", CLAUDE, fake)],
                                    "general_settings": {"allow_client_side_credentials": allowed}})
        status, answer, _ = await post(client, "/v1/chat/completions", body)
        assert status == expected, answer
        error = assert_envelope(answer)
        if not allowed:
            assert error["param"] == "aws_role_name"
        else:
            assert error["code"] == "missing_credentials" and ACCESS_KEY not in str(answer)
    assert not sts.calls and not fake.received


async def test_sts_params_without_a_role_are_refused_not_ignored(make_client, bedrock):
    client = await gateway_for(make_client, bedrock, CLAUDE, aws_session_name="orphan")
    status, answer, _ = await post(client, "/v1/chat/completions", {"model": "m", "messages": user("hi")})
    assert status == 400 and assert_envelope(answer)["param"] == "aws_session_name"
    assert not bedrock.received

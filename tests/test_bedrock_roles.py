"""The ``bedrock`` plugin's STS roles (LiteLLM's ``aws_role_name`` and friends) through the
gateway, against an in-process STS that answers AssumeRole and AssumeRoleWithWebIdentity and a
Bedrock runtime that checks the role's SigV4 signatures."""

from __future__ import annotations

import logging

import pytest
from fake_bedrock import (
    ACCESS_KEY,
    CALLER_ARN,
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
from test_bedrock_provider import CLAUDE, bedrock, entry, gateway_for, health_kind, no_ambient_aws  # noqa: F401 (fixtures)

from sidecar.testing import deployment


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


async def test_a_web_identity_token_is_read_from_a_file_at_each_fetch(make_client, aiohttp_server, no_ambient_aws,
                                                                      tmp_path):
    """LiteLLM's ``oidc/file/<path>`` (and ``oidc/env_path/<VARIABLE>``): the token file is read
    when the role's session is fetched, so a rotated token is used; other ``oidc/`` providers are
    a 400 naming the param."""
    rotated = "eyJhbGciOiJSUzI1NiJ9.rotated-token.sig"
    (tmp_path / "token").write_text(rotated + "\n")
    sts = await start(aiohttp_server, StsFake(web_token=rotated))
    fake = await start(aiohttp_server, BedrockFake(ROLE_KEY, ROLE_SECRET, ROLE_TOKEN))
    client = await make_client({"model_list": [
        role_entry(fake, sts, aws_web_identity_token=f"oidc/file/{tmp_path / 'token'}"),
        {**role_entry(fake, sts, aws_web_identity_token="oidc/circleci_v2/"), "model_name": "ci",
         "model_info": {"id": "dep-ci"}}]})
    status, answer, _ = await post(client, "/v1/chat/completions", {"model": "m", "messages": user("hi")})
    assert status == 200, answer
    assert [c["WebIdentityToken"] for c in sts.calls] == [rotated]
    status, answer, _ = await post(client, "/v1/chat/completions", {"model": "ci", "messages": user("hi")})
    assert status == 400 and assert_envelope(answer)["param"] == "aws_web_identity_token"
    assert len(sts.calls) == 1


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
    """STS's refusal is a 401 naming its error code; its message, which names the caller's ARN
    and account, reaches neither the client nor the log."""
    sts = await start(aiohttp_server, StsFake(refuse=True))
    fake = await start(aiohttp_server, BedrockFake(ROLE_KEY, ROLE_SECRET, ROLE_TOKEN))
    client = await make_client({"model_list": [role_entry(fake, sts, aws_access_key_id=ACCESS_KEY,
                                                          aws_secret_access_key=SECRET_KEY, num_retries=0)]})
    with caplog.at_level(logging.DEBUG, logger="sidecar"):  # (libraries at WARNING, as `sidecar serve` keeps them)
        status, answer, _ = await post(client, "/v1/chat/completions", {"model": "m", "messages": user("hi")})
    assert status == 401, answer
    error = assert_envelope(answer)
    assert "AccessDenied" in error["message"] and error["type"] == "authentication_error"
    assert "Refreshing temporary credentials failed" in caplog.text  # (botocore's own warning, with our text)
    assert await health_kind(client, "dep-m") == "auth" and not fake.received
    for secret in (SECRET_KEY, ROLE_ARN, CALLER_ARN, "210987654321"):
        assert secret not in error["message"] and secret not in caplog.text


@pytest.mark.parametrize(("sent", "allowed_status"), [({"aws_role_name": ROLE_ARN}, 401),
                                                       ({"aws_sts_endpoint": "STS"}, 400),
                                                       ({"aws_session_name": "chosen-by-the-client"}, 400)])
async def test_sts_params_a_client_sends_are_refused_else_never_used_with_the_deployments_credentials(
        make_client, aiohttp_server, no_ambient_aws, sent, allowed_status):
    """STS params in a request body are client-side credentials: refused unless the operator
    allows them. Allowed, they never steer the deployment's (or the machine's) credentials, which
    the call then goes without: a role of the client's choosing with no keys of its own is a 401;
    an STS endpoint or a session name without a role of its own, a 400 naming it. STS is never asked."""
    sts = await start(aiohttp_server, StsFake())
    fake = await start(aiohttp_server, BedrockFake())
    sent = {k: sts.root_url if v == "STS" else v for k, v in sent.items()}
    body = {"model": "m", "messages": user("hi"), **sent}
    (name,) = sent
    for allowed, expected in ((False, 400), (True, allowed_status)):
        client = await make_client({"model_list": [entry("m", CLAUDE, fake, aws_role_name=ROLE_ARN,
                                                         aws_sts_endpoint=sts.root_url)],
                                    "general_settings": {"allow_client_side_credentials": allowed}})
        status, answer, _ = await post(client, "/v1/chat/completions", body)
        assert status == expected, answer
        error = assert_envelope(answer)
        if expected == 400:
            assert error["param"] == name
        else:
            assert error["code"] == "missing_credentials" and ACCESS_KEY not in str(answer)
    assert not sts.calls and not fake.received


async def test_a_role_a_client_sends_with_its_own_keys_is_assumed_with_them(make_client, aiohttp_server,
                                                                            no_ambient_aws):
    client_key, client_secret = "AKIACLIENTOWNKEY0001", "client/own/secret/0123456789abcd"
    sts = await start(aiohttp_server, StsFake(source_key=client_key))
    fake = await start(aiohttp_server, BedrockFake(ROLE_KEY, ROLE_SECRET, ROLE_TOKEN))
    client = await make_client({"model_list": [entry("m", CLAUDE, fake)],
                                "general_settings": {"allow_client_side_credentials": True}})
    body = {"model": "m", "messages": user("hi"), "aws_role_name": ROLE_ARN, "aws_sts_endpoint": sts.root_url,
            "aws_access_key_id": client_key, "aws_secret_access_key": client_secret}
    status, answer, _ = await post(client, "/v1/chat/completions", body)
    assert status == 200, answer
    assert [c["Action"] for c in sts.calls] == ["AssumeRole"]  # (the fake takes only the client's key for it)
    assert fake.last.headers["X-Amz-Security-Token"] == ROLE_TOKEN


async def test_sts_params_without_a_role_are_refused_not_ignored(make_client, bedrock):
    client = await gateway_for(make_client, bedrock, CLAUDE, aws_session_name="orphan")
    status, answer, _ = await post(client, "/v1/chat/completions", {"model": "m", "messages": user("hi")})
    assert status == 400 and assert_envelope(answer)["param"] == "aws_session_name"
    assert not bedrock.received


async def test_an_sts_endpoint_a_client_sends_must_be_an_allowed_host(make_client, aiohttp_server, no_ambient_aws):
    sts = await start(aiohttp_server, StsFake())
    fake = await start(aiohttp_server, BedrockFake())
    client = await make_client({"model_list": [entry("m", CLAUDE, fake)],
                                "general_settings": {"allow_client_side_credentials": True,
                                                     "allowed_api_base_hosts": ["sts.example.com"]}})
    body = {"model": "m", "messages": user("hi"), "aws_role_name": ROLE_ARN, "aws_sts_endpoint": sts.root_url,
            "aws_access_key_id": ACCESS_KEY, "aws_secret_access_key": SECRET_KEY}
    status, answer, _ = await post(client, "/v1/chat/completions", body)
    assert status == 400 and assert_envelope(answer)["param"] == "aws_sts_endpoint"
    assert answer["error"]["code"] == "api_base_not_allowed" and not sts.calls

"""What counts as a credential, and how it is masked."""

from __future__ import annotations

from sidecar.secrets import is_secret_param, scrub, secret_values, strip_url_credentials


def test_secret_param_names():
    for name in ("api_key", "api_base", "base_url", "azure_ad_token", "aws_secret_access_key", "aws_region_name",
                 "vertex_credentials", "extra_headers", "password", "client_secret", "session_token"):
        assert is_secret_param(name), name
    for name in ("model", "max_tokens", "timeout", "rpm", "tpm", "api_version", "temperature", "dimensions"):
        assert not is_secret_param(name), name


def test_secret_values_reach_inside_header_dicts_and_urls():
    params = {"model": "openai/x", "api_key": "sk-abcdefgh", "api_base": "https://u:p@host.example:8443/v1",
              "extra_headers": {"Authorization": "Bearer tok-123456", "X-Team": "blue-team"}}
    values = secret_values(params)
    assert {"sk-abcdefgh", "Bearer tok-123456", "blue-team", "u:p@host.example:8443"} <= set(values)
    assert "openai/x" not in values
    text = "upstream said: Bearer tok-123456 refused at https://u:p@host.example:8443/v1 for sk-abcdefgh"
    cleaned = scrub(text, values)
    for secret in ("tok-123456", "host.example", "sk-abcdefgh", "u:p"):
        assert secret not in cleaned


def test_key_shaped_strings_are_masked_even_when_unknown():
    assert "sk-proj-0123456789" not in scrub("Incorrect API key provided: sk-proj-0123456789.")


def test_url_credentials_and_query_are_stripped():
    assert strip_url_credentials("https://user:pw@example.com:8080/v1?key=zzz") == "https://example.com:8080/v1"

"""Every client mistake answers OpenAI's error envelope with the right status, naming the field
at fault; none is a 500 or a traceback."""

from __future__ import annotations

import pytest

from gateway_helpers import PREFIXES, assert_error, assert_valid_stream, stream_text
from openai_spec import assert_valid

pytestmark = pytest.mark.parametrize("prefix", PREFIXES)

MESSAGES = [{"role": "user", "content": "hi"}]
ECHO_MODELS = [
    {"model_name": "mock-gpt", "litellm_params": {"model": "mock/mock-gpt"}},
    {"model_name": "shout", "litellm_params": {"model": "echo/shout"}},
]


async def post_raw(client, path: str, data: bytes):
    return await client.post(path, data=data, headers={"Content-Type": "application/json"})


@pytest.mark.parametrize("route", ["/chat/completions", "/embeddings", "/moderations"])
async def test_malformed_json(make_client, prefix, route):
    client = await make_client()
    resp = await post_raw(client, prefix + route, b'{"model": "mock-gpt", "messages": [')
    await assert_error(resp, 400, mentions=("JSON",))
    resp = await post_raw(client, prefix + route, b"")
    await assert_error(resp, 400, mentions=("empty",))


@pytest.mark.parametrize("body", [b"[1, 2]", b'"text"', b"42", b"null"])
async def test_non_object_body(make_client, prefix, body):
    client = await make_client()
    resp = await post_raw(client, f"{prefix}/chat/completions", body)
    await assert_error(resp, 400, mentions=("JSON object",))


@pytest.mark.parametrize(("field", "value", "param"), [
    ("temperature", "hot", "temperature"),
    ("messages", "x", "messages"),
    ("messages", [{"content": "no role"}], "messages[0].role"),
    ("messages", [{"role": "user", "content": 5}], "messages[0].content"),
    ("n", "two", "n"),
    ("stream", "yes", "stream"),
    ("stop", 7, "stop"),
    ("tools", {"type": "function"}, "tools"),
    ("stream_options", {"include_usage": "yes"}, "stream_options.include_usage"),
    ("model", 5, "model"),
    ("metadata", "not-an-object", "metadata"),
])
async def test_wrong_type_names_the_field(make_client, prefix, field, value, param):
    client = await make_client()
    body = {"model": "mock-gpt", "messages": MESSAGES, field: value}
    resp = await client.post(f"{prefix}/chat/completions", json=body)
    err = await assert_error(resp, 400, param=param)
    *where, name = param.rsplit(".", 1) if "." in param else [param]
    assert name.split("[")[0] in err["message"]
    assert "$." + (where[0] if where else param) in err["message"]


async def test_wrong_type_in_embeddings_and_moderations(make_client, prefix):
    client = await make_client()
    resp = await client.post(f"{prefix}/embeddings", json={"model": "mock-embedding", "input": "x", "dimensions": "8"})
    await assert_error(resp, 400, param="dimensions")
    resp = await client.post(f"{prefix}/moderations", json={"model": "mock-moderation", "input": 3})
    await assert_error(resp, 400, param="input")


@pytest.mark.parametrize("missing", ["messages", "model"])
async def test_missing_field(make_client, prefix, missing):
    client = await make_client()
    body = {"model": "mock-gpt", "messages": MESSAGES}
    del body[missing]
    resp = await client.post(f"{prefix}/chat/completions", json=body)
    await assert_error(resp, 400, param=missing, mentions=(missing,))


async def test_missing_embedding_input(make_client, prefix):
    client = await make_client()
    resp = await client.post(f"{prefix}/embeddings", json={"model": "mock-embedding"})
    await assert_error(resp, 400, param="input")


async def test_empty_messages(make_client, prefix):
    client = await make_client()
    resp = await client.post(f"{prefix}/chat/completions", json={"model": "mock-gpt", "messages": []})
    await assert_error(resp, 400, param="messages")


@pytest.mark.parametrize(("route", "body"), [
    ("/chat/completions", {"messages": MESSAGES}),
    ("/embeddings", {"input": "x"}),
    ("/moderations", {"input": "x"}),
])
async def test_unknown_model(make_client, prefix, route, body):
    client = await make_client()
    resp = await client.post(prefix + route, json={"model": "gpt-17", **body})
    err = await assert_error(resp, 404, param="model", code="model_not_found",
                             mentions=("gpt-17", "mock-gpt", "mock-embedding", "mock-moderation"))
    assert err["type"] == "not_found_error"


async def test_body_too_large(make_client, prefix):
    client = await make_client({"model_list": ECHO_MODELS, "general_settings": {"max_request_size_mb": 0.001}})
    small = await client.post(f"{prefix}/chat/completions", json={"model": "mock-gpt", "messages": MESSAGES})
    assert small.status == 200
    big = [{"role": "user", "content": "word " * 1000}]
    resp = await client.post(f"{prefix}/chat/completions", json={"model": "mock-gpt", "messages": big})
    await assert_error(resp, 413, mentions=("max_request_size_mb",))


async def test_default_limit_allows_bodies_over_aiohttps_1mib(make_client, prefix):
    client = await make_client()
    big = [{"role": "user", "content": "x" * (2 * 1024 * 1024)}]
    resp = await client.post(f"{prefix}/chat/completions", json={"model": "mock-gpt", "messages": big,
                                                                 "max_tokens": 3})
    assert resp.status == 200, await resp.text()


async def test_unknown_route_and_method(make_client, prefix):
    client = await make_client()
    resp = await client.get(f"{prefix}/no/such/route")
    await assert_error(resp, 404, code="route_not_found")
    resp = await client.post(f"{prefix}/completions-typo", json={})
    await assert_error(resp, 404)
    resp = await client.get(f"{prefix}/chat/completions")
    await assert_error(resp, 405)
    assert resp.headers["Allow"] == "POST"
    resp = await client.request("TRACE", f"{prefix}/models")
    await assert_error(resp, 405, code="method_not_allowed")
    assert resp.headers["Allow"] == "GET"


@pytest.mark.parametrize("param", ["tools", "seed", "response_format", "n"])
async def test_unsupported_openai_param(make_client, prefix, param):
    client = await make_client({"model_list": ECHO_MODELS})
    value = {"tools": [{"type": "function", "function": {"name": "f"}}], "seed": 1,
             "response_format": {"type": "json_object"}, "n": 2}[param]
    resp = await client.post(f"{prefix}/chat/completions",
                             json={"model": "shout", "messages": MESSAGES, param: value})
    err = await assert_error(resp, 400, param=param, code="unsupported_params", mentions=(param, "drop_params"))
    assert err["type"] == "invalid_request_error"


async def test_drop_params_in_request(make_client, prefix):
    client = await make_client({"model_list": ECHO_MODELS})
    body = {"model": "shout", "messages": MESSAGES, "seed": 1, "tools": [{"type": "function",
                                                                           "function": {"name": "f"}}]}
    resp = await client.post(f"{prefix}/chat/completions", json={**body, "drop_params": True})
    assert resp.status == 200, await resp.text()
    data = await resp.json()
    assert_valid(data, "CreateChatCompletionResponse")
    assert data["choices"][0]["message"]["content"] == "HI"
    resp = await client.post(f"{prefix}/chat/completions", json={**body, "drop_params": False})
    await assert_error(resp, 400)


@pytest.mark.parametrize("where", ["litellm_params", "router_settings"])
async def test_drop_params_in_config(make_client, prefix, where):
    params = {"model": "echo/shout"}
    config = {"model_list": [{"model_name": "shout", "litellm_params": params}]}
    if where == "litellm_params":
        params["drop_params"] = True
    else:
        config["router_settings"] = {"drop_params": True}
    client = await make_client(config)
    resp = await client.post(f"{prefix}/chat/completions",
                             json={"model": "shout", "messages": MESSAGES, "seed": 3, "stream": True})
    assert resp.status == 200, await resp.text()
    assert stream_text(assert_valid_stream(await resp.read())) == "HI"
    # the request can still insist on strictness
    resp = await client.post(f"{prefix}/chat/completions",
                             json={"model": "shout", "messages": MESSAGES, "seed": 3, "drop_params": False})
    await assert_error(resp, 400, param="seed")


async def test_non_openai_keys_are_not_rejected(make_client, prefix):
    client = await make_client({"model_list": ECHO_MODELS})
    resp = await client.post(f"{prefix}/chat/completions", json={
        "model": "shout", "messages": MESSAGES, "top_k": 40, "repetition_penalty": 1.1,
        "guided_json": {"type": "object"}, "temperature": 0.1, "user": "me"})
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["choices"][0]["message"]["content"] == "HI"


@pytest.mark.parametrize("field", ["api_key", "api_base", "base_url", "api_version", "extra_headers"])
async def test_client_side_credentials_refused(make_client, prefix, field):
    client = await make_client()
    resp = await client.post(f"{prefix}/chat/completions",
                             json={"model": "mock-gpt", "messages": MESSAGES, field: "sk-client-secret"})
    err = await assert_error(resp, 400, param=field, mentions=(field, "allow_client_side_credentials"))
    assert "sk-client-secret" not in err["message"]
    resp = await client.post(f"{prefix}/embeddings",
                             json={"model": "mock-embedding", "input": "x", field: "sk-client-secret"})
    await assert_error(resp, 400, param=field)


async def test_client_side_credentials_allowed(make_client, prefix):
    client = await make_client({"model_list": ECHO_MODELS,
                                "general_settings": {"allow_client_side_credentials": True}})
    resp = await client.post(f"{prefix}/chat/completions", json={
        "model": "mock-gpt", "messages": MESSAGES, "api_key": "sk-client", "api_base": "http://127.0.0.1:9"})
    assert resp.status == 200, await resp.text()
    assert_valid(await resp.json(), "CreateChatCompletionResponse")


async def test_metadata_accepted_and_not_forwarded(make_client, prefix):
    client = await make_client({"model_list": ECHO_MODELS})
    # echo's supported params do not list metadata: it is the gateway's, so it never reaches echo
    resp = await client.post(f"{prefix}/chat/completions", json={
        "model": "shout", "messages": MESSAGES, "metadata": {"tags": ["a"], "trace_id": "t1"}})
    assert resp.status == 200, await resp.text()
    resp = await client.post(f"{prefix}/embeddings", json={"model": "mock-gpt", "input": "x",
                                                          "metadata": {"k": "v"}})
    assert resp.status == 200


async def test_capability_the_provider_lacks(make_client, prefix):
    client = await make_client({"model_list": ECHO_MODELS})
    resp = await client.post(f"{prefix}/embeddings", json={"model": "shout", "input": "x"})
    await assert_error(resp, 400, param="model", code="unsupported_capability", mentions=("shout", "embedding"))
    resp = await client.post(f"{prefix}/moderations", json={"model": "shout", "input": "x"})
    await assert_error(resp, 400, param="model", mentions=("moderation",))


@pytest.mark.parametrize(("extra", "param"), [
    ({"tools": [{"type": "function", "function": "x"}]}, "tools[0].function"),
    ({"tools": [{"type": "function", "function": {"name": "f", "parameters": "bad"}}]},
     "tools[0].function.parameters"),
    ({"max_tokens": 0}, "max_tokens"),
    ({"max_completion_tokens": -1}, "max_completion_tokens"),
])
async def test_malformed_values_the_mock_refuses(make_client, prefix, extra, param):
    client = await make_client()
    resp = await client.post(f"{prefix}/chat/completions", json={"model": "mock-gpt", "messages": MESSAGES, **extra})
    await assert_error(resp, 400, param=param)


@pytest.mark.parametrize("extra", [
    {"tools": [{"type": "function", "function": {"name": "f"}}], "tool_choice": {"type": "function", "function": None}},
    {"tools": [{"type": "function", "function": {"name": "f", "parameters": {
        "type": "object", "properties": {"a": "bad", "b": {"enum": "x"}}, "required": "ab"}}}]},
    {"response_format": {"type": "json_schema", "json_schema": "x"}},
    {"response_format": {"type": "json_schema", "json_schema": {"schema": "x"}}},
])
async def test_odd_shapes_never_fail_the_server(make_client, prefix, extra):
    client = await make_client()
    resp = await client.post(f"{prefix}/chat/completions", json={"model": "mock-gpt", "messages": MESSAGES, **extra})
    assert resp.status == 200, await resp.text()
    assert_valid(await resp.json(), "CreateChatCompletionResponse")


async def test_control_characters_in_a_model_name_still_get_an_answer(make_client, prefix):
    """A header cannot carry a control character (aiohttp drops the connection rather than send
    one): the model group header has them percent-encoded."""
    client = await make_client()
    resp = await client.post(f"{prefix}/chat/completions", json={"model": "gpt\n\x1f17", "messages": MESSAGES})
    await assert_error(resp, 404, param="model", code="model_not_found")
    assert resp.headers["x-litellm-model-group"] == "gpt%0A%1F17"
    added = await client.post("/model/new", json={"model_name": "tab\tand\x7fdel", "litellm_params": {
        "model": "mock/mock-gpt"}, "model_info": {"id": "id\r\n1"}})
    assert added.status == 200, await added.text()
    resp = await client.post(f"{prefix}/chat/completions", json={"model": "tab\tand\x7fdel", "messages": MESSAGES})
    assert resp.status == 200, await resp.text()
    assert resp.headers["x-litellm-model-group"] == "tab\tand%7Fdel"  # (a tab may be sent)
    assert resp.headers["x-litellm-model-id"] == "id%0D%0A1"


async def test_a_whole_float_is_an_integer(make_client, prefix):
    """JSON has one number type: ``"n": 1.0`` is 1 (Python's json writes floats so), ``1.5`` a 400."""
    client = await make_client()
    resp = await client.post(f"{prefix}/chat/completions", json={"model": "mock-gpt", "messages": MESSAGES,
                                                                 "max_tokens": 16.0, "n": 1.0, "seed": -3.0})
    assert resp.status == 200, await resp.text()
    assert_valid(await resp.json(), "CreateChatCompletionResponse")
    resp = await client.post(f"{prefix}/chat/completions", json={"model": "mock-gpt", "messages": MESSAGES,
                                                                 "max_tokens": 16.5})
    await assert_error(resp, 400, param="max_tokens", mentions=("float",))

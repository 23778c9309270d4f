"""The ``openai`` plugin when things go wrong: upstream errors, cuts and timeouts, credentials
that must never leak, and params a provider does not support."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import aiohttp
import pytest
from fake_upstreams import (
    MID_STREAM_ERROR,
    OPENAI_ERRORS,
    refused_base_url,
)
from openai_helpers import KEY, WAIT, WRONG_KEY, assert_envelope, dep, post, stream, user
from openai_spec import assert_valid

# ---------------------------------------------------------------- upstream failures


@pytest.mark.parametrize("streaming", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize(("upstream", "status"), [(400, 400), (401, 401), (403, 403), (404, 404), (429, 429),
                                                  (500, 502), (503, 502)])
async def test_upstream_error_status_and_message(make_client, openai_fake, upstream, status, streaming):
    client = await make_client({"model_list": [dep("m", f"openai/error-{upstream}", openai_fake.base_url)]})
    got_status, answer, _ = await post(client, "/v1/chat/completions",
                                       {"model": "m", "messages": user("hi"), "stream": streaming})
    assert got_status == status, answer
    error = assert_envelope(answer)
    if upstream != 401:
        assert OPENAI_ERRORS[upstream]["message"] in error["message"]
    else:
        assert "Incorrect API key provided" in error["message"]
    if upstream == 400:
        assert (error["param"], error["code"]) == ("temperature", "decimal_above_max_value")
    if upstream == 429:
        assert error["code"] == "rate_limit_exceeded"
    if status == 502:
        assert error["type"] == "upstream_error"


@pytest.mark.parametrize("streaming", [False, True], ids=["json", "stream"])
async def test_refused_connection_is_502(make_client, streaming):
    client = await make_client({"model_list": [dep("m", "openai/gpt-4o-mini", refused_base_url())]})
    status, answer, _ = await post(client, "/v1/chat/completions",
                                   {"model": "m", "messages": user("hi"), "stream": streaming})
    assert status == 502, answer
    assert assert_envelope(answer)["code"] == "upstream_unreachable"


@pytest.mark.parametrize("streaming", [False, True], ids=["json", "stream"])
async def test_slow_upstream_is_504(make_client, openai_fake, streaming):
    client = await make_client({"model_list": [dep("m", "openai/slow", openai_fake.base_url, timeout=0.3)]})
    status, answer, _ = await post(client, "/v1/chat/completions",
                                   {"model": "m", "messages": user("hi"), "stream": streaming})
    assert status == 504, answer
    error = assert_envelope(answer)
    assert (error["type"], error["code"]) == ("timeout_error", "timeout")


async def test_json_body_cut_mid_way_is_502(make_client, openai_fake):
    client = await make_client({"model_list": [dep("m", "openai/cut", openai_fake.base_url)]})
    status, answer, _ = await post(client, "/v1/chat/completions", {"model": "m", "messages": user("hi")})
    assert status == 502, answer
    assert_envelope(answer)


async def test_stream_cut_mid_way_ends_with_error_event_then_done(make_client, openai_fake):
    client = await make_client({"model_list": [dep("m", "openai/cut", openai_fake.base_url)]})
    _, events = await stream(client, {"model": "m", "messages": user("one two three four")})
    *chunks, last = events
    assert chunks, "the chunks sent before the cut reach the client"
    for chunk in chunks:
        assert_valid(chunk, "CreateChatCompletionStreamResponse")
    error = assert_envelope(last)
    assert error["code"] == "upstream_disconnected"


async def test_error_event_mid_stream_is_forwarded_then_done(make_client, openai_fake):
    client = await make_client({"model_list": [dep("m", "openai/error-mid-stream", openai_fake.base_url)]})
    _, events = await stream(client, {"model": "m", "messages": user("one two three four")})
    *chunks, last = events
    assert len(chunks) == 2
    error = assert_envelope(last)
    assert MID_STREAM_ERROR["message"] in error["message"]


async def test_an_error_before_the_first_chunk_is_a_plain_error_answer(make_client, openai_fake):
    # as LiteLLM's proxy: nothing was streamed yet, so the client gets the status, not a 200 stream
    client = await make_client({"model_list": [dep("m", "openai/error-first", openai_fake.base_url)]})
    status, answer, headers = await post(client, "/v1/chat/completions",
                                         {"model": "m", "messages": user("hi"), "stream": True})
    assert status == 502, answer
    assert headers["Content-Type"].startswith("application/json")
    error = assert_envelope(answer)
    assert MID_STREAM_ERROR["message"] in error["message"]


async def test_a_chunk_that_is_not_json_ends_the_stream_after_the_good_ones(make_client, openai_fake):
    client = await make_client({"model_list": [dep("m", "openai/bad-chunk", openai_fake.base_url)]})
    _, events = await stream(client, {"model": "m", "messages": user("one two three four")})
    *chunks, last = events
    assert len(chunks) == 2  # the role chunk and the first word: all the upstream sent before the bad one
    error = assert_envelope(last)
    assert error["code"] == "bad_upstream_response"
    assert "not valid" in error["message"]


async def test_stream_stalling_mid_way_ends_with_timeout_event(make_client, openai_fake):
    client = await make_client({"model_list": [dep("m", "openai/stall", openai_fake.base_url, timeout=1.5)]})
    _, events = await stream(client, {"model": "m", "messages": user("one two three four")})
    *chunks, last = events
    assert len(chunks) == 2
    error = assert_envelope(last)
    assert (error["type"], error["code"]) == ("timeout_error", "timeout")


async def test_client_leaving_mid_stream_closes_the_upstream_stream(make_client, openai_fake):
    client = await make_client({"model_list": [dep("m", "openai/drip", openai_fake.base_url)]})
    resp = await asyncio.wait_for(client.post("/v1/chat/completions",
                                              json={"model": "m", "messages": user("hi"), "stream": True}), WAIT)
    assert resp.status == 200
    first = await asyncio.wait_for(resp.content.readline(), WAIT)
    assert first.startswith(b"data: {")
    resp.close()
    await asyncio.wait_for(openai_fake.stream_abandoned.wait(), WAIT)
    assert not openai_fake.stream_finished.is_set()


async def test_error_inside_a_chunk_is_an_error_event(make_client, openai_fake):
    client = await make_client({"model_list": [dep("m", "openrouter/error-in-chunk", openai_fake.base_url)]})
    _, events = await stream(client, {"model": "m", "messages": user("one two three four")})
    *chunks, last = events
    assert len(chunks) == 2
    for chunk in chunks:
        assert_valid(chunk, "CreateChatCompletionStreamResponse")
    error = assert_envelope(last)
    assert "Provider disconnected unexpectedly" in error["message"]
    assert error["code"] == "502"


async def test_the_word_error_in_content_is_not_an_error(make_client, openai_fake):
    client = await make_client({"model_list": [dep("m", "openai/gpt-4o-mini", openai_fake.base_url)]})
    said = '{"error": {"message": "x"}} error "error"'
    _, chunks = await stream(client, {"model": "m", "messages": user(said)})
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks) == f"Hello from OpenAI. {said}"


# ---------------------------------------------------------------- credentials never leak


async def test_upstream_credentials_never_leak(make_client, openai_fake, caplog):
    caplog.set_level(logging.DEBUG)
    refused = refused_base_url()
    client = await make_client({"model_list": [
        dep("wrong-key", "openai/gpt-4o-mini", openai_fake.base_url, api_key=WRONG_KEY),
        dep("err-401", "openai/error-401", openai_fake.base_url),
        dep("err-500", "openai/error-500", openai_fake.base_url),
        dep("cut", "openai/cut", openai_fake.base_url),
        dep("mid", "openai/error-mid-stream", openai_fake.base_url),
        dep("slow", "openai/slow", openai_fake.base_url, timeout=0.3),
        dep("refused", "openai/gpt-4o-mini", refused),
    ]})
    scenarios = [(model, streaming) for model in ("wrong-key", "err-401", "err-500", "cut", "slow", "refused")
                 for streaming in (False, True)] + [("mid", True)]
    seen: list[str] = []
    for model, streaming in scenarios:
        async def go():
            resp = await client.post("/v1/chat/completions",
                                     json={"model": model, "messages": user("hi"), "stream": streaming})
            return resp, await resp.text()
        resp, text = await asyncio.wait_for(go(), WAIT)
        assert resp.status >= 400 or 'data: {"error":' in text, (model, streaming, text)
        seen.append(text)
        seen.extend(f"{k}: {v}" for k, v in resp.headers.items())
    # the upstream echoed the key it was given: the client sees the message, masked
    assert sum("Incorrect API key provided: ***." in text for text in seen) == 4
    # every failure is logged for the operator, without credentials
    failures = [r for r in caplog.records if r.name == "sidecar" and "failed" in r.getMessage()]
    assert len(failures) == len(scenarios)
    logged = caplog.text + "\n".join(r.getMessage() for r in caplog.records)
    host = openai_fake.base_url.split("//")[1].split("/")[0]
    for secret in (KEY, WRONG_KEY, "secret-123456789", "wrong-key-987654321", openai_fake.base_url, host,
                   refused, refused.split("//")[1].split("/")[0]):
        for text in seen:
            assert secret not in text
        assert secret not in logged


# ---------------------------------------------------------------- unsupported params


async def test_unsupported_param_is_a_400_naming_it(make_client, openai_fake):
    client = await make_client({"model_list": [dep("groq", "groq/llama-3.1-8b-instant", openai_fake.base_url)]})
    for param, value in (("modalities", ["text", "audio"]), ("audio", {"voice": "alloy", "format": "wav"})):
        status, answer, _ = await post(client, "/v1/chat/completions",
                                       {"model": "groq", "messages": user("hi"), param: value})
        assert status == 400, answer
        error = assert_envelope(answer)
        assert error["param"] == param
        assert repr(param) in error["message"]
    assert openai_fake.received == []


@pytest.mark.parametrize("where", ["request", "litellm_params", "router_settings"])
async def test_drop_params_drops_unsupported_params(make_client, openai_fake, where):
    params = {"drop_params": True} if where == "litellm_params" else {}
    config: dict[str, Any] = {"model_list": [dep("groq", "groq/llama-3.1-8b-instant", openai_fake.base_url, **params)]}
    if where == "router_settings":
        config["router_settings"] = {"drop_params": True}
    client = await make_client(config)
    body = {"model": "groq", "messages": user("hi"), "modalities": ["text"], "audio": {"voice": "alloy"},
            "temperature": 0.2, "top_k": 5}
    if where == "request":
        body["drop_params"] = True
    status, answer, _ = await post(client, "/v1/chat/completions", body)
    assert status == 200, answer
    assert openai_fake.last.body == {"model": "llama-3.1-8b-instant", "messages": user("hi"), "temperature": 0.2,
                                     "top_k": 5}


async def test_request_drop_params_false_overrides_router_settings(make_client, openai_fake):
    client = await make_client({"model_list": [dep("groq", "groq/llama-3.1-8b-instant", openai_fake.base_url)],
                                "router_settings": {"drop_params": True}})
    status, answer, _ = await post(client, "/v1/chat/completions", {"model": "groq", "messages": user("hi"),
                                                                    "modalities": ["text"], "drop_params": False})
    assert status == 400, answer
    assert assert_envelope(answer)["param"] == "modalities"
    assert openai_fake.received == []


async def test_a_clean_end_after_the_finish_without_done_is_complete(make_client, openai_fake):
    client = await make_client({"model_list": [dep("gpt", "openai/no-done", openai_fake.base_url)]})
    _, events = await stream(client, {"model": "gpt", "messages": user("hi"), "stream": True})  # ends in [DONE]
    assert all("error" not in e for e in events)
    assert [e["choices"][0]["finish_reason"] for e in events if e["choices"]][-1] == "stop"


async def test_a_clean_end_before_any_finish_is_still_an_error(make_client, openai_fake):
    client = await make_client({"model_list": [dep("gpt", "openai/no-done-early", openai_fake.base_url)]})
    _, events = await stream(client, {"model": "gpt", "messages": user("hi"), "stream": True})  # ends in [DONE]
    assert events[-1]["error"]["code"] == "upstream_disconnected"


async def test_a_clean_end_inside_the_last_event_is_still_an_error(make_client, openai_fake):
    # the cut event names its finish_reason, but an event counts only once its line is complete
    client = await make_client({"model_list": [dep("gpt", "openai/no-done-cut", openai_fake.base_url)]})
    _, events = await stream(client, {"model": "gpt", "messages": user("one two")})
    *chunks, last = events
    assert chunks and all(c["choices"][0]["finish_reason"] is None for c in chunks)
    assert assert_envelope(last)["code"] == "upstream_disconnected"


async def test_iter_sse_data_gives_a_plugin_the_payloads_one_at_a_time(openai_fake):
    # the helper docs/plugins.md offers next to iter_sse_batches, used by third-party plugins
    from sidecar.upstream import iter_sse_data, open_stream, timeout_for

    body = {"model": "odd-framing", "messages": user("one two"), "stream": True}
    async with aiohttp.ClientSession() as session:
        resp = await open_stream(session, f"{openai_fake.base_url}/chat/completions",
                                 json.dumps(body).encode(), {"Authorization": f"Bearer {KEY}",
                                                              "Content-Type": "application/json"},
                                 timeout_for({}, True), "openai")
        payloads = [p async for p in iter_sse_data(resp, "openai")]
    chunks = [json.loads(p) for p in payloads]
    assert len(chunks) > 2 and all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks) == "Hello from OpenAI. one two"
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"

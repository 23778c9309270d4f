"""No credential in any log line, at any level, from the sidecar or the libraries it uses.

``sidecar serve --log-level DEBUG --library-log-level DEBUG`` runs model management with literal
keys, an upstream error that echoes the key, client-side credentials and a failed update; then
the whole log is searched for every key.
"""

from __future__ import annotations

import asyncio
import logging

import aiohttp
from fake_upstreams import OpenAIFake, start
from gateway_helpers import Server, until, write_config

from sidecar.logs import RepeatLimiter, mask

MASTER = "master-literal-key-5150"
CONFIG_KEY = "cfgkey-literal-AAAA1111"
NEW_KEY = "newkey-literal-BBBB2222"
UPDATED_KEY = "updkey-literal-CCCC3333"
PATCHED_KEY = "patkey-literal-DDDD4444"
FAILED_KEY = "failkey-literal-EEEE5555"
CLIENT_KEY = "clikey-literal-FFFF6666"
ALL_KEYS = (MASTER, CONFIG_KEY, NEW_KEY, UPDATED_KEY, PATCHED_KEY, FAILED_KEY, CLIENT_KEY)
CHAT = {"messages": [{"role": "user", "content": "hi"}]}
AUTH = {"Authorization": f"Bearer {MASTER}"}


def config(tmp_path, base_url: str):
    return write_config(tmp_path / "secrets.yaml", {
        "model_list": [{"model_name": "wrong-key", "litellm_params": {
            "model": "openai/gpt-4o-mini", "api_base": base_url, "api_key": CONFIG_KEY}}],
        "general_settings": {"master_key": MASTER, "database_url": f"sqlite:///{tmp_path}/sidecar.db",
                             "allow_client_side_credentials": True},
    })


async def post(session, url: str, body: dict, method: str = "POST") -> tuple[int, str]:
    async with session.request(method, url, json=body, headers=AUTH) as resp:
        return resp.status, await resp.text()


async def test_no_key_reaches_the_log_at_debug(tmp_path, aiohttp_server):
    fake = await start(aiohttp_server, OpenAIFake(api_key="the-only-right-key-0000"))  # every key above is wrong
    server = Server(config(tmp_path, fake.base_url), tmp_path,
                    extra_args=("--log-level", "DEBUG", "--library-log-level", "DEBUG"))
    try:
        await asyncio.to_thread(server.wait_ready)
        answers = []
        async with aiohttp.ClientSession() as session:
            url = server.url
            status, text = await post(session, url + "/model/new", {"model_name": "added", "litellm_params": {
                "model": "openai/gpt-4o-mini", "api_base": fake.base_url, "api_key": NEW_KEY},
                "model_info": {"id": "added-1"}})
            assert status == 200, text
            answers.append(text)
            for model in ("wrong-key", "added"):  # the upstream's 401 echoes the key it was given
                status, text = await post(session, url + "/v1/chat/completions", {"model": model, **CHAT})
                assert status == 401 and "Incorrect API key" in text, text
                answers.append(text)
            status, text = await post(session, url + "/v1/chat/completions",
                                      {"model": "wrong-key", "api_key": CLIENT_KEY, **CHAT})
            assert status == 401 and fake.last.headers["Authorization"] == f"Bearer {CLIENT_KEY}", text
            answers.append(text)
            status, text = await post(session, url + "/model/update", {"model_name": "added", "litellm_params": {
                "model": "openai/gpt-4o-mini", "api_key": FAILED_KEY, "timeout": "soon"},
                "model_info": {"id": "added-1"}})
            assert status == 400 and "timeout" in text, text  # the failed update
            answers.append(text)
            status, text = await post(session, url + "/model/update", {"model_name": "added", "litellm_params": {
                "model": "openai/gpt-4o-mini", "api_base": fake.base_url, "api_key": UPDATED_KEY},
                "model_info": {"id": "added-1"}})
            assert status == 200, text
            status, text = await post(session, url + "/model/added-1/update",
                                      {"litellm_params": {"api_key": PATCHED_KEY}}, method="PATCH")
            assert status == 200, text
            status, text = await post(session, url + "/v1/chat/completions", {"model": "added", **CHAT})
            assert status == 401 and fake.last.headers["Authorization"] == f"Bearer {PATCHED_KEY}", text
            answers.append(text)
            status, text = await post(session, url + "/model/delete", {"id": "added-1"})
            assert status == 200, text
        await until(lambda: "failed: 401" in server.output(), what="the upstream failure's log line")
        log = server.output()
        assert "DEBUG aiosqlite" in log  # the library that logs SQL parameters did log
        for key in ALL_KEYS:
            assert key not in log, f"{key} is in the log"
            assert all(key not in text for text in answers), f"{key} is in an answer"
    finally:
        server.stop()


async def test_libraries_stay_at_warning_unless_asked(tmp_path):
    server = Server(config(tmp_path, "http://127.0.0.1:9/v1"), tmp_path, extra_args=("--log-level", "DEBUG"))
    try:
        await asyncio.to_thread(server.wait_ready)
        async with aiohttp.ClientSession() as session:
            status, text = await post(session, server.url + "/model/new", {"model_name": "added", "litellm_params": {
                "model": "openai/gpt-4o-mini", "api_key": NEW_KEY}})
            assert status == 200, text
        log = server.output()
        assert "llm-sidecar serving" in log
        assert "DEBUG aiosqlite" not in log and "DEBUG asyncio" not in log
        assert NEW_KEY not in log
    finally:
        server.stop()


def test_credential_shaped_text_is_masked_even_when_unknown():
    masked = mask("""params ('{"api_key": "zz-unknown-secret-1", "model": "openai/x"}',) """
                  "Authorization: Bearer tok_abcdefghijkl password=hunter22 sk-proj-0123456789abc")
    for secret in ("zz-unknown-secret-1", "tok_abcdefghijkl", "hunter22", "sk-proj-0123456789abc"):
        assert secret not in masked, masked
    assert "openai/x" in masked


def test_a_repeated_warning_is_rate_limited_with_a_count():
    clock = [0.0]
    limiter = RepeatLimiter(interval=60, clock=lambda: clock[0])

    def record(msg: str, level: int = logging.WARNING) -> logging.LogRecord:
        return logging.LogRecord("sidecar", level, __file__, 1, msg, None, None)

    assert [limiter.filter(record("upstream x timed out")) for _ in range(5)] == [True, False, False, False, False]
    assert limiter.filter(record("another warning")) and limiter.filter(record("an info line", logging.INFO))
    clock[0] = 61.0
    again = record("upstream x timed out")
    assert limiter.filter(again)
    assert "4 more like this suppressed" in again.msg


def test_repeats_from_different_calls_are_one_kind_and_lines_still_name_their_call(monkeypatch):
    """Through the handler `sidecar serve` logs with: the call id (an ``extra``) is printed after
    the message, text or JSON, but does not make a line new; the count comes with the next
    line of that kind let through."""
    import io

    import msgspec

    from sidecar.logs import REPEAT_INTERVAL_SECONDS, CallTagging, make_handler

    monkeypatch.setattr(CallTagging, "on", CallTagging.on)  # (a JsonFormatter turns it on)
    assert REPEAT_INTERVAL_SECONDS == 10
    clock = [0.0]
    for log_format in ("text", "json"):
        out = io.StringIO()
        handler = make_handler(log_format, out, clock=lambda: clock[0])
        logger = logging.getLogger("sidecar.test-repeats")
        logger.addHandler(handler)
        logger.propagate = False
        try:
            clock[0] = 0.0
            for n in range(20):
                logger.warning("deployment %s failed: %s", "d1", "502 refused", extra={"call_id": f"call-{n}"})
            clock[0] = 11.0
            logger.warning("deployment %s failed: %s", "d1", "502 refused", extra={"call_id": "call-last"})
        finally:
            logger.removeHandler(handler)
            logger.propagate = True
        lines = out.getvalue().splitlines()
        assert len(lines) == 2, lines
        if log_format == "json":
            first, last = (msgspec.json.decode(line) for line in lines)
            assert (first["call_id"], last["call_id"]) == ("call-0", "call-last")
            assert first["message"] == "deployment d1 failed: 502 refused"
            assert last["message"].endswith("[19 more like this suppressed in the last 11 s]")
        else:
            assert lines[0].endswith("deployment d1 failed: 502 refused [call call-0]")
            assert lines[1].endswith("[19 more like this suppressed in the last 11 s] [call call-last]")

"""Helpers shared by the gateway tests: SSE parsing and error-envelope checks."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Callable

from openai_spec import assert_valid

PREFIXES = ["/v1", ""]
"""Every OpenAI route is served with and without ``/v1``."""


def parse_sse(raw: bytes | str) -> tuple[list[dict[str, Any]], bool]:
    """The JSON payloads of an SSE body, and whether its last event was ``data: [DONE]``."""
    text = raw.decode() if isinstance(raw, bytes) else raw
    events = [e for e in text.split("\n\n") if e.strip()]
    payloads: list[dict[str, Any]] = []
    done = False
    for i, event in enumerate(events):
        data_lines = [line[5:].strip() for line in event.split("\n") if line.startswith("data:")]
        assert data_lines, f"SSE event without data: {event!r}"
        data = "\n".join(data_lines)
        if data == "[DONE]":
            assert i == len(events) - 1, "[DONE] must be the last event"
            done = True
        else:
            payloads.append(json.loads(data))
    return payloads, done


def assert_valid_stream(raw: bytes | str) -> list[dict[str, Any]]:
    """Every chunk passes OpenAI's chunk schema and the stream ends with ``[DONE]``."""
    chunks, done = parse_sse(raw)
    assert done, "stream did not end with data: [DONE]"
    assert chunks, "stream had no chunks"
    for chunk in chunks:
        assert "error" not in chunk, chunk
        assert_valid(chunk, "CreateChatCompletionStreamResponse")
    return chunks


def stream_text(chunks: list[dict[str, Any]], index: int = 0) -> str:
    return "".join(
        c["delta"].get("content") or "" for chunk in chunks for c in chunk["choices"] if c["index"] == index
    )


async def assert_error(resp, status: int, *, param: str | None = None, code: str | None = None,
                       mentions: tuple[str, ...] = ()) -> dict[str, Any]:
    """``resp`` is ``status`` with OpenAI's error envelope; returns the inner error object."""
    text = await resp.text()
    assert resp.status == status, f"expected {status}, got {resp.status}: {text}"
    assert resp.content_type == "application/json", resp.content_type
    assert "Traceback" not in text
    body = json.loads(text)
    assert set(body) == {"error"}, body
    err = body["error"]
    assert set(err) == {"message", "type", "param", "code"}, err
    assert isinstance(err["message"], str) and err["message"], err
    assert isinstance(err["type"], str) and err["type"], err
    assert_valid(body, "ErrorResponse")
    if param is not None:
        assert err["param"] == param, err
    if code is not None:
        assert err["code"] == code, err
    for word in mentions:
        assert word in err["message"], (word, err)
    return err


# ---------------------------------------------------------------- `sidecar` as a subprocess

SIDECAR = str(Path(sys.executable).with_name("sidecar"))
"""The console script of the venv running the tests."""


def run_sidecar(*args: str, env: dict[str, str] | None = None, cwd: str | Path | None = None,
                timeout: float = 60) -> subprocess.CompletedProcess:
    """Run ``sidecar ARGS`` to completion (bounded by ``timeout``)."""
    return subprocess.run([SIDECAR, *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})}, cwd=cwd)


async def until(predicate: Callable[[], object], timeout: float = 10.0, what: str = "the condition") -> None:
    """Wait (on the clock, not on a count of loop turns) until ``predicate()`` holds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_config(path: Path, data: dict[str, Any]) -> Path:
    """``data`` as a YAML file (the sidecar reads YAML; JSON is YAML)."""
    path.write_text(json.dumps(data, indent=2))
    return path


class Server:
    """``sidecar serve`` in a subprocess on a free port; its output goes to a file (no pipe to fill)."""

    def __init__(self, config: Path | None, tmp_path: Path, env: dict[str, str] | None = None,
                 extra_args: tuple[str, ...] = (), prefix: tuple[str, ...] = ()) -> None:
        """``prefix`` runs before the command (``("prlimit", "--nofile=256")``)."""
        self.port = free_port()
        self.log_path = tmp_path / f"serve-{self.port}.log"
        self._log = self.log_path.open("w")
        config_args = ["--config", str(config)] if config is not None else []
        self.proc = subprocess.Popen(
            [*prefix, SIDECAR, "serve", *config_args, "--host", "127.0.0.1", "--port", str(self.port), *extra_args],
            stdout=self._log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}, cwd=tmp_path,
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        self._log.flush()
        return self.log_path.read_text()

    def wait_ready(self, timeout: float = 30) -> None:
        """Poll readiness until it answers 200 (or fail with the server's output)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"sidecar serve exited {self.proc.returncode}:\n{self.output()}")
            try:
                with urllib.request.urlopen(self.url + "/health/readiness", timeout=2) as resp:
                    if resp.status == 200:
                        return
            except (OSError, urllib.error.URLError):
                pass
            time.sleep(0.05)
        raise AssertionError(f"sidecar serve not ready after {timeout}s:\n{self.output()}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self._log.close()

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

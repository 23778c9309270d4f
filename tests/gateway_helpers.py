"""Helpers shared by the gateway tests: the kit's SSE and error-envelope checks, and ``sidecar`` run
as a subprocess."""

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

import aiohttp

from sidecar.testing import assert_error, assert_valid_stream, parse_sse, stream_text  # noqa: F401 - shared

PREFIXES = ["/v1", ""]
"""Every OpenAI route is served with and without ``/v1``."""


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


async def answers(url: str, timeout: float = 2) -> bool:
    """Whether a GET of ``url`` answers 200 now (False on a refused, reset or slow connection)."""
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session:
            async with session.get(url) as resp:
                return resp.status == 200
    except (aiohttp.ClientError, asyncio.TimeoutError):
        return False


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

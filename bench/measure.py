"""Measuring: wrk runs, streaming time to first byte, correctness probes, per-target results."""

from __future__ import annotations

import asyncio
import http.client
import json
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common import AUTH, CHAT_BODY, EMBED_BODY, HOST, STREAM_BODY, http_get, http_post

# ---------------------------------------------------------------- wrk

LUA_TEMPLATE = """
wrk.method = {method}
{body}
wrk.headers["Authorization"] = {auth}
wrk.headers["Content-Type"] = "application/json"

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {{"requests":%d,"duration_us":%d,"bytes":%d,"connect":%d,"read":%d,"write":%d,' ..
    '"status":%d,"timeout":%d,"p50":%.0f,"p90":%.0f,"p99":%.0f,"max":%.0f,"mean":%.1f}}\\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
end
"""


def lua_string(s: str) -> str:
    return json.dumps(s)  # a JSON string literal is a valid Lua string literal for ASCII text


def write_lua(path: Path, method: str, body: dict | None) -> None:
    body_line = f"wrk.body = {lua_string(json.dumps(body))}" if body is not None else ""
    path.write_text(LUA_TEMPLATE.format(method=lua_string(method), body=body_line, auth=lua_string(AUTH)))


def run_wrk(url: str, lua: Path, concurrency: int, duration: float, timeout_s: int = 10) -> dict[str, Any]:
    argv = ["wrk", "-t1", f"-c{concurrency}", f"-d{duration:g}s", f"--timeout={timeout_s}s", "-s", str(lua), url]
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=duration + timeout_s + 30)
    except subprocess.TimeoutExpired:
        return {"error": "wrk did not finish in time"}
    for line in out.stdout.splitlines():
        if line.startswith("WRKJSON "):
            raw = json.loads(line[8:])
            secs = raw["duration_us"] / 1e6
            errors = raw["connect"] + raw["read"] + raw["write"] + raw["status"] + raw["timeout"]
            return {
                "requests": raw["requests"], "rps": raw["requests"] / secs if secs else 0.0,
                "p50_ms": raw["p50"] / 1000, "p90_ms": raw["p90"] / 1000, "p99_ms": raw["p99"] / 1000,
                "max_ms": raw["max"] / 1000, "errors": errors,
                "error_kinds": {k: raw[k] for k in ("connect", "read", "write", "status", "timeout") if raw[k]},
                "bytes_per_req": raw["bytes"] / raw["requests"] if raw["requests"] else 0,
            }
    return {"error": f"wrk printed no result (exit {out.returncode}): {(out.stderr or out.stdout)[-300:]}"}


def timed_gets(port: int, path: str, n: int, budget: float) -> dict[str, Any]:
    """Sequential GETs timed here (for answers too slow for a wrk point), bounded in count and time."""
    times, errors = [], 0
    deadline = time.perf_counter() + budget
    for _ in range(n):
        if time.perf_counter() > deadline:
            break
        t0 = time.perf_counter()
        try:
            status, _ = http_get(port, path, timeout=max(1.0, deadline - t0))
            errors += status != 200
        except (OSError, http.client.HTTPException):
            errors += 1
            continue
        times.append((time.perf_counter() - t0) * 1000)
    total = sum(times) / 1000
    return {"requests": len(times), "rps": len(times) / total if total else 0.0, "p50_ms": pct(times, 50) or 0.0,
            "p99_ms": pct(times, 99) or 0.0, "errors": errors, "error_kinds": {}, "sequential": True}


# ---------------------------------------------------------------- streaming TTFB (aiohttp client)


async def _ttfb(port: int, n: int, time_budget: float) -> dict[str, Any]:
    import aiohttp

    url = f"http://{HOST}:{port}/v1/chat/completions"
    ttfb, total, bad = [], [], 0
    deadline = time.perf_counter() + time_budget
    connector = aiohttp.TCPConnector(limit=1)
    async with aiohttp.ClientSession(connector=connector, headers={"Authorization": AUTH}) as session:
        for _ in range(n):
            if time.perf_counter() > deadline:
                break
            t0 = time.perf_counter()
            try:
                async with session.post(url, json=STREAM_BODY, timeout=aiohttp.ClientTimeout(total=30)) as resp:
                    first = await resp.content.readany()
                    t1 = time.perf_counter()
                    rest = await resp.read()
                    t2 = time.perf_counter()
                    data = first + rest
                    if resp.status != 200 or data.count(b"data: ") != 21 or b"[DONE]" not in data:
                        bad += 1
                        continue
            except (aiohttp.ClientError, asyncio.TimeoutError):
                bad += 1
                continue
            ttfb.append((t1 - t0) * 1000)
            total.append((t2 - t0) * 1000)
    return {"n": len(ttfb), "bad": bad, "ttfb_p50": pct(ttfb, 50), "ttfb_p99": pct(ttfb, 99),
            "total_p50": pct(total, 50), "total_p99": pct(total, 99)}


def measure_ttfb(port: int, n: int, time_budget: float = 30.0) -> dict[str, Any]:
    try:
        return asyncio.run(_ttfb(port, n, time_budget))
    except Exception as exc:  # a bench must go on
        return {"error": f"{type(exc).__name__}: {exc}"}


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    k = min(len(s) - 1, max(0, round(q / 100 * (len(s) - 1))))
    return s[k]


# ---------------------------------------------------------------- correctness probe


def probe(port: int) -> str:
    """One chat, one stream, one embedding: 'ok' or what was wrong (a benchmark of errors is no benchmark)."""
    problems = []
    try:
        s, b = http_post(port, "/v1/chat/completions", CHAT_BODY)
        if s != 200 or b'"choices"' not in b:
            problems.append(f"chat {s}: {b[:150]!r}")
        s, b = http_post(port, "/v1/chat/completions", STREAM_BODY)
        if s != 200 or b.count(b"data: ") != 21 or b"[DONE]" not in b:
            problems.append(f"stream {s}: {b.count(b'data: ')} events: {b[:150]!r}")
        s, b = http_post(port, "/v1/embeddings", EMBED_BODY)
        if s != 200 or b'"embedding"' not in b:
            problems.append(f"embeddings {s}: {b[:150]!r}")
    except (OSError, http.client.HTTPException) as exc:
        problems.append(f"{type(exc).__name__}: {exc}")
    return "ok" if not problems else "; ".join(problems)


# ---------------------------------------------------------------- targets


@dataclass
class Target:
    key: str
    label: str
    points: dict[str, dict[str, Any]] = field(default_factory=dict)
    ttfb: dict[str, Any] | None = None
    startup: dict[str, float | None] = field(default_factory=dict)
    rss: dict[str, float | None] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    probe: str | None = None
    available: bool = True
    loop: str | None = None

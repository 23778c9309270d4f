"""Benchmark driver: llm-sidecar side by side with the direct upstream and LiteLLM's proxy.

Starts the instant fake upstream (``bench/upstream.py``), llm-sidecar (plain asyncio, and on
uvloop when it can be had) and LiteLLM's proxy (from ``bench/.venv-litellm``, installed on first
use), each with an equivalent generated config pointing at the upstream, then measures with
``wrk`` (a compiled load generator). Prints a Markdown table and writes ``bench/RESULTS.md``.

    .venv/bin/python bench/run.py [--duration 5] [--no-litellm] [--no-uvloop] [--out bench/RESULTS.md]

Everything listens on and is sent to 127.0.0.1 only; every loop is bounded in count and time.
See bench/README.md for what each number means.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import http.client
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
VENV_PY = REPO / ".venv" / "bin" / "python"
SIDECAR_BIN = REPO / ".venv" / "bin" / "sidecar"
LITELLM_VENV = BENCH / ".venv-litellm"
LITELLM_BIN = LITELLM_VENV / "bin" / "litellm"
DEPS = BENCH / ".deps"  # uvloop (and py-spy for profiling), kept out of the project's .venv
HOST = "127.0.0.1"
MASTER_KEY = "sk-bench-0123456789abcdef0123456789abcdef"
AUTH = f"Bearer {MASTER_KEY}"
NOTES_MARK = "<!-- everything below this line is kept when run.py rewrites the file -->"

CHAT_BODY = {"model": "bench-chat", "messages": [{"role": "user", "content": "Say hello in one short sentence."}]}
STREAM_BODY = {**CHAT_BODY, "stream": True}
EMBED_BODY = {"model": "bench-embed", "input": "The quick brown fox jumps over the lazy dog."}

# (key, label, path, method, body, concurrency)
LOAD_POINTS = [
    ("chat_c1", "chat, c=1", "/v1/chat/completions", "POST", CHAT_BODY, 1),
    ("chat_c16", "chat, c=16", "/v1/chat/completions", "POST", CHAT_BODY, 16),
    ("chat_c64", "chat, c=64", "/v1/chat/completions", "POST", CHAT_BODY, 64),
    ("stream_c1", "stream (20 chunks), c=1", "/v1/chat/completions", "POST", STREAM_BODY, 1),
    ("stream_c64", "stream (20 chunks), c=64", "/v1/chat/completions", "POST", STREAM_BODY, 64),
    ("embed_c16", "embeddings (1536 floats), c=16", "/v1/embeddings", "POST", EMBED_BODY, 16),
]


def log(msg: str) -> None:
    sys.stderr.write(f"[bench {time.strftime('%H:%M:%S')}] {msg}\n")
    sys.stderr.flush()


# ---------------------------------------------------------------- processes


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _children(pid: int) -> list[int]:
    out = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                out += [int(x) for x in f.read().split()]
    except OSError:
        pass
    return out


def process_tree(pid: int) -> list[int]:
    seen, todo = [], [pid]
    while todo and len(seen) < 256:
        p = todo.pop()
        if p not in seen:
            seen.append(p)
            todo += _children(p)
    return seen


def rss_mb(pid: int) -> float | None:
    """VmRSS summed over the process and its children, in MB (10^6 bytes)."""
    total, found = 0, False
    for p in process_tree(pid):
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
                        found = True
        except OSError:
            pass
    return total * 1024 / 1e6 if found else None


def cpu_seconds(pid: int) -> float:
    """utime + stime of the process tree, in seconds."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for p in process_tree(pid):
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            pass
    return total / tick


def busy_jiffies() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    with open("/proc/stat") as f:
        vals = [int(x) for x in f.readline().split()[1:]]
    idle = vals[3] + (vals[4] if len(vals) > 4 else 0)
    return sum(vals) - idle, sum(vals)


class OtherLoad:
    """CPU used by processes that are not this bench's (a test run, a build) during one point,
    in cores: the machine's busy time minus the servers', wrk's and this driver's own."""

    def __init__(self, servers: list) -> None:
        self.servers = servers
        self.t0 = time.perf_counter()
        self.busy0, _ = busy_jiffies()
        self.ours0 = self._ours()

    def _ours(self) -> float:
        import resource

        ru_c, ru_s = resource.getrusage(resource.RUSAGE_CHILDREN), resource.getrusage(resource.RUSAGE_SELF)
        return (sum(cpu_seconds(s.pid) for s in self.servers) + ru_c.ru_utime + ru_c.ru_stime
                + ru_s.ru_utime + ru_s.ru_stime)

    def cores(self) -> float:
        wall = time.perf_counter() - self.t0
        busy = (busy_jiffies()[0] - self.busy0) / os.sysconf("SC_CLK_TCK")
        return max(0.0, (busy - (self._ours() - self.ours0)) / wall) if wall > 0 else 0.0


@dataclass
class Server:
    name: str
    proc: subprocess.Popen
    base: str
    port: int
    log_path: Path
    startup_s: float | None = None

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_tail(self, n: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM to the process we started (and its own process group), SIGKILL if it lingers."""
        if self.proc.poll() is None:
            tree = process_tree(self.proc.pid)
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)  # start_new_session=True: its group is ours
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                for p in tree:
                    try:
                        os.kill(p, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                self.proc.wait(5)


def spawn(name: str, argv: list[str], env: dict[str, str], cwd: Path, logdir: Path, port: int) -> Server:
    log_path = logdir / f"{name}.log"
    logf = open(log_path, "wb")
    proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=logf, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    logf.close()
    return Server(name, proc, f"http://{HOST}:{port}", port, log_path)


def http_get(port: int, path: str, timeout: float = 5.0, auth: bool = True) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Authorization": AUTH} if auth else {})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def http_post(port: int, path: str, body: dict, timeout: float = 30.0) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request("POST", path, body=json.dumps(body),
                     headers={"Authorization": AUTH, "Content-Type": "application/json"})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def wait_ready(server: Server, t0: float, timeout: float, path: str = "/health/readiness") -> float | None:
    """Seconds from ``t0`` (just before spawn) to the first 200 on ``path``; None on time-out or exit."""
    deadline = t0 + timeout
    while time.perf_counter() < deadline:
        if not server.alive():
            return None
        try:
            status, _ = http_get(server.port, path, timeout=2.0, auth=False)
            if status == 200:
                return time.perf_counter() - t0
        except (OSError, http.client.HTTPException):
            pass
        time.sleep(0.005)
    return None


# ---------------------------------------------------------------- configs


def deployment_yaml(model_name: str, model: str, api_base: str) -> str:
    return (f"  - model_name: {model_name}\n    litellm_params:\n      model: {model}\n"
            f"      api_base: {api_base}\n      api_key: sk-upstream-bench\n")


def write_config(path: Path, upstream: str, deployments: int, database: Path | None) -> None:
    """``deployments`` in all: bench-chat, bench-embed, then groups of 10 (group-0000 ...)."""
    api_base = f"{upstream}/v1"
    parts = ["model_list:\n",
             deployment_yaml("bench-chat", "openai/gpt-4o-mini", api_base),
             deployment_yaml("bench-embed", "openai/text-embedding-3-small", api_base)]
    models = ["openai/gpt-4o-mini", "openai/gpt-4o", "openai/text-embedding-3-small", "openai/gpt-4.1-mini"]
    for i in range(deployments - 2):
        parts.append(deployment_yaml(f"group-{i // 10:04d}", models[(i // 10) % len(models)], api_base))
    parts.append("general_settings:\n")
    parts.append(f"  master_key: {MASTER_KEY}\n")
    if database is not None:
        parts.append(f"  database_url: sqlite:///{database}\n")
    path.write_text("".join(parts))


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


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.tmp = Path(tempfile.mkdtemp(prefix="sidecar-bench-"))
        self.logdir = self.tmp / "logs"
        self.logdir.mkdir()
        self.lua: dict[str, Path] = {}
        self.targets: dict[str, Target] = {}
        self.meta: dict[str, Any] = {}
        self.upstream: Server | None = None
        self.servers: list[Server] = []
        self.started = time.perf_counter()

    # ------------------------------------------------ set-up

    def lua_for(self, key: str, method: str, body: dict | None) -> Path:
        if key not in self.lua:
            path = self.tmp / f"{key}.lua"
            write_lua(path, method, body)
            self.lua[key] = path
        return self.lua[key]

    def start_upstream(self, impl: str = "raw") -> Server:
        port = free_port()
        srv = spawn(f"upstream-{impl}", [str(VENV_PY), str(BENCH / "upstream.py"), "--port", str(port),
                                         "--impl", impl, "--max-seconds", "1500"],
                    dict(os.environ), REPO, self.logdir, port)
        self.servers.append(srv)
        if wait_ready(srv, time.perf_counter(), 20, path="/health") is None:
            raise SystemExit(f"the bench upstream did not start:\n{srv.log_tail()}")
        return srv

    def sidecar_argv(self, config: Path, port: int, uvloop: bool) -> tuple[list[str], dict[str, str]]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SIDECAR_", "PYTHONPATH"))}
        env["SIDECAR_CACHE_DIR"] = str(self.tmp / "sidecar-cache")  # not the user's ~/.cache
        serve = ["serve", "--config", str(config), "--host", HOST, "--port", str(port), "--log-level", "INFO"]
        extra = getattr(self.args, "sidecar_pythonpath", None)
        path = [x for x in (extra, str(DEPS) if uvloop else None) if x]
        if path:
            env["PYTHONPATH"] = os.pathsep.join(path)
        if uvloop:
            return [str(SIDECAR_BIN), *serve], env
        if not self.meta.get("venv_has_uvloop"):
            return [str(SIDECAR_BIN), *serve], env
        # the project's .venv has uvloop: hide it so this target really runs on plain asyncio
        boot = ("import sys; sys.modules['uvloop'] = None; sys.argv[0] = 'sidecar'; "
                "from sidecar.cli import main; sys.exit(main())")
        return [str(VENV_PY), "-c", boot, *serve], env

    def start_sidecar(self, name: str, config: Path, uvloop: bool, env_extra: dict[str, str] | None = None,
                      timeout: float = 60) -> Server:
        port = free_port()
        argv, env = self.sidecar_argv(config, port, uvloop)
        env.update(env_extra or {})
        t0 = time.perf_counter()
        srv = spawn(name, argv, env, self.tmp, self.logdir, port)
        self.servers.append(srv)
        srv.startup_s = wait_ready(srv, t0, timeout)
        return srv

    def start_litellm(self, name: str, config: Path, timeout: float) -> Server:
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("LITELLM_", "DATABASE_URL", "PYTHONPATH"))}
        env.update({"LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_LOG": "ERROR", "LITELLM_TELEMETRY": "False",
                    "NO_DOCS": "True", "PYTHONUNBUFFERED": "1"})
        argv = [str(LITELLM_BIN), "--config", str(config), "--host", HOST, "--port", str(port), "--num_workers", "1"]
        t0 = time.perf_counter()
        srv = spawn(name, argv, env, self.tmp, self.logdir, port)
        self.servers.append(srv)
        srv.startup_s = wait_ready(srv, t0, timeout)
        return srv

    # ------------------------------------------------ measuring

    def load(self, target: Target, srv: Server | None, port: int, points=LOAD_POINTS, duration=None) -> None:
        duration = duration or self.args.duration
        for key, _label, path, method, body, conc in points:
            lua = self.lua_for(key.split("_c")[0] if body is not None else key, method, body)
            cpu0 = cpu_seconds(srv.pid) if srv else None
            other = OtherLoad([p for p in (srv, self.upstream) if p is not None])
            res = run_wrk(f"http://{HOST}:{port}{path}", lua, conc, duration)
            if srv and "requests" in res and res["requests"]:
                res["cpu_us_per_req"] = (cpu_seconds(srv.pid) - cpu0) * 1e6 / res["requests"]
            res["other_cores"] = other.cores()
            target.points[key] = res
            log(f"  {target.key:16} {key:12} " + (
                f"{res['rps']:9.0f} rps  p50 {res['p50_ms']:7.2f} ms  p99 {res['p99_ms']:7.2f} ms  "
                f"errors {res['errors']}  other load {res['other_cores']:.2f} cores"
                if "rps" in res else res["error"]))

    def warm(self, port: int) -> None:
        run_wrk(f"http://{HOST}:{port}/v1/chat/completions", self.lua_for("chat", "POST", CHAT_BODY), 16, 1)
        run_wrk(f"http://{HOST}:{port}/v1/chat/completions", self.lua_for("stream", "POST", STREAM_BODY), 16, 1)

    def info_point(self, target: Target, port: int, key: str, query: str, deployments: int) -> None:
        path = "/model_group/info" + query
        try:
            status, body = http_get(port, path, timeout=60)
        except (OSError, http.client.HTTPException) as exc:
            target.info[key] = {"note": f"request failed: {exc}"}
            return
        if status == 404:
            target.info[key] = {"note": "404: /model_group/info is not served (yet); skipped"}
            return
        if status != 200:
            target.info[key] = {"note": f"answered {status}: {body[:120]!r}"}
            return
        groups = len(json.loads(body).get("data", []))
        lua = self.lua_for(f"info_get{abs(hash(query))}", "GET", None)
        res = run_wrk(f"http://{HOST}:{port}{path}", lua, 1, self.args.info_duration, timeout_s=30)
        if res.get("requests", 0) < 5:
            res = timed_gets(port, path, n=5, budget=60.0)  # too slow for a wrk point: time a few
        res.update({"deployments": deployments, "groups": groups, "size_kb": len(body) / 1000, "query": path})
        target.info[key] = res
        log(f"  {target.key:16} {key:12} " + (
            f"{res['rps']:9.0f} rps  p50 {res['p50_ms']:7.2f} ms  ({groups} groups, {len(body) / 1000:.0f} kB)"
            if "rps" in res else res.get("error", "")))

    # ------------------------------------------------ the runs

    def run_direct(self) -> None:
        t = self.targets.setdefault("direct", Target("direct", "direct (raw asyncio upstream)"))
        t.probe = probe(self.upstream.port)
        self.warm(self.upstream.port)
        self.load(t, None, self.upstream.port)
        t.ttfb = measure_ttfb(self.upstream.port, self.args.ttfb_n)

    def run_direct_aiohttp(self) -> None:
        """The issue's 25% target was set against an aiohttp upstream (~20k rps): a reference row."""
        t = self.targets.setdefault("direct_aiohttp", Target("direct_aiohttp", "direct (aiohttp upstream)"))
        up = self.start_upstream("aiohttp")
        try:
            t.probe = probe(up.port)
            self.warm(up.port)
            self.load(t, None, up.port, [p for p in LOAD_POINTS if p[0] in ("chat_c1", "chat_c64", "stream_c64")])
        finally:
            up.stop()

    def run_sidecar(self, key: str, label: str, uvloop: bool) -> None:
        t = self.targets.setdefault(key, Target(key, label))
        up = self.upstream.base
        # start-up with the default config (the mock provider; a fresh SQLite file each time)
        if not uvloop or self.args.uvloop_startup:
            times = []
            for i in range(3):
                db = self.tmp / f"{key}-default-{i}.db"
                srv = self.start_sidecar(f"{key}-default-{i}", REPO / "config" / "sidecar.yaml", uvloop,
                                         {"SIDECAR_DATABASE_URL": f"sqlite:///{db}"})
                times.append(srv.startup_s)
                if i == 0:
                    t.rss["idle_default"] = self._settled_rss(srv)
                srv.stop()
            ok = [x for x in times if x is not None]
            t.startup["default"] = statistics.median(ok) if len(ok) == len(times) else None
        # 10 deployments: start-up, then the load points
        cfg = self.tmp / f"{key}-10.yaml"
        write_config(cfg, up, 10, self.tmp / f"{key}-10.db")
        times = []
        for i in range(3):
            srv = self.start_sidecar(f"{key}-10-{i}", cfg, uvloop)
            times.append(srv.startup_s)
            if i < 2:
                srv.stop()
        ok = [x for x in times if x is not None]
        t.startup["10"] = statistics.median(ok) if len(ok) == len(times) else None
        if srv.startup_s is None:
            t.available = False
            t.notes.append(f"did not become ready: {srv.log_tail(5)}")
            srv.stop()
            return
        t.loop = "uvloop" if "(uvloop)" in srv.log_path.read_text(errors="replace") else "asyncio"
        self.measure_10(t, srv, self.args.ttfb_n)
        # 10,000 deployments: start-up, memory, /model_group/info
        cfg = self.tmp / f"{key}-10k.yaml"
        write_config(cfg, up, 10_000, self.tmp / f"{key}-10k.db")
        # the first start parses the YAML; big configs' parse is then cached (SIDECAR_CACHE_DIR)
        srv = self.start_sidecar(f"{key}-10k-cold", cfg, uvloop, timeout=120)
        t.startup["10k_cold"] = srv.startup_s
        srv.stop()
        srv = self.start_sidecar(f"{key}-10k", cfg, uvloop, timeout=120)
        t.startup["10k"] = srv.startup_s
        self.measure_10k(t, srv)

    def measure_10(self, t: Target, srv: Server, ttfb_n: int) -> None:
        """Everything measured on a gateway serving 10 deployments; stops it."""
        try:
            t.rss["idle"] = self._settled_rss(srv)
            t.probe = probe(srv.port)
            self.warm(srv.port)
            self.load(t, srv, srv.port)
            t.ttfb = measure_ttfb(srv.port, ttfb_n)
            self.info_point(t, srv.port, "info_10", "", 10)
            t.rss["after_load"] = rss_mb(srv.pid)
        finally:
            srv.stop()

    def measure_10k(self, t: Target, srv: Server) -> None:
        """Memory and /model_group/info on a gateway serving 10,000 deployments; stops it."""
        try:
            if srv.startup_s is not None:
                t.rss["idle_10k"] = self._settled_rss(srv)
                self.info_point(t, srv.port, "info_10k", "", 10_000)
                self.info_point(t, srv.port, "info_10k_one", "?model_group=group-0042", 10_000)
        finally:
            srv.stop()

    def run_litellm(self) -> None:
        t = self.targets.setdefault("litellm", Target("litellm", "LiteLLM proxy"))
        if not self.ensure_litellm(t):
            t.available = False
            return
        up = self.upstream.base
        cfg = self.tmp / "litellm-10.yaml"
        write_config(cfg, up, 10, None)
        srv = self.start_litellm("litellm-10", cfg, timeout=self.args.litellm_start_timeout)
        t.startup["10"] = srv.startup_s
        t.startup["default"] = srv.startup_s
        if srv.startup_s is None:
            t.available = False
            t.notes.append("did not become ready within "
                           f"{self.args.litellm_start_timeout:g} s: {srv.log_tail(8)}")
            srv.stop()
            return
        t.loop = "uvloop" if "uvloop" in self.meta.get("litellm_pkgs", "") else "asyncio"
        self.measure_10(t, srv, self.args.ttfb_n_litellm)
        if self.args.litellm_10k:
            cfg = self.tmp / "litellm-10k.yaml"
            write_config(cfg, up, 10_000, None)
            srv = self.start_litellm("litellm-10k", cfg, timeout=self.args.litellm_10k_timeout)
            t.startup["10k"] = srv.startup_s
            if srv.startup_s is None:
                t.notes.append(f"with 10,000 deployments: not ready within {self.args.litellm_10k_timeout:g} s")
            self.measure_10k(t, srv)

    def _settled_rss(self, srv: Server) -> float | None:
        time.sleep(1.0)
        return rss_mb(srv.pid)

    # ------------------------------------------------ installs

    def ensure_litellm(self, t: Target) -> bool:
        if self.args.no_litellm:
            t.notes.append("skipped (--no-litellm)")
            return False
        if not LITELLM_BIN.exists():
            log("installing litellm[proxy] into bench/.venv-litellm (first run only) ...")
            t0 = time.perf_counter()
            try:
                if not (LITELLM_VENV / "bin" / "python").exists():
                    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(LITELLM_VENV)], check=True,
                                   timeout=120)
                    subprocess.run([str(LITELLM_VENV / "bin" / "python"), "-m", "ensurepip", "--upgrade"],
                                   check=True, timeout=120, capture_output=True)
                subprocess.run([str(LITELLM_VENV / "bin" / "python"), "-m", "pip", "install", "--quiet",
                                "litellm[proxy]"], check=True, timeout=self.args.litellm_install_timeout,
                               capture_output=True)
            except (subprocess.SubprocessError, OSError) as exc:
                detail = getattr(exc, "stderr", b"") or b""
                t.notes.append(f"litellm[proxy] could not be installed: {type(exc).__name__} "
                               f"{detail[-300:].decode(errors='replace')}")
                return False
            self.meta["litellm_install_s"] = time.perf_counter() - t0
            log(f"litellm installed in {self.meta['litellm_install_s']:.0f} s")
        pkgs = pip_versions(LITELLM_VENV / "bin" / "python", ["litellm", "uvloop", "uvicorn", "fastapi"])
        self.meta["litellm_pkgs"] = ", ".join(f"{k} {v}" for k, v in pkgs.items() if v)
        self.meta["litellm_version"] = pkgs.get("litellm")
        return LITELLM_BIN.exists()

    def ensure_uvloop(self) -> bool:
        probe_cmd = [str(VENV_PY), "-c", "import uvloop; print(uvloop.__version__)"]
        env = {**os.environ, "PYTHONPATH": str(DEPS)}
        r = subprocess.run(probe_cmd, env=env, capture_output=True, text=True)
        if r.returncode != 0:
            log("installing uvloop into bench/.deps (the project's [speed] extra, kept out of .venv) ...")
            subprocess.run([str(VENV_PY), "-m", "pip", "install", "--quiet", "--target", str(DEPS), "uvloop>=0.19"],
                           capture_output=True, timeout=300)
            r = subprocess.run(probe_cmd, env=env, capture_output=True, text=True)
        if r.returncode == 0:
            self.meta["uvloop_version"] = r.stdout.strip()
            return True
        return False

    # ------------------------------------------------ all

    def run(self) -> None:
        a = self.args
        self.meta.update(machine_info())
        self.meta["venv_has_uvloop"] = subprocess.run(
            [str(VENV_PY), "-c", "import uvloop"], capture_output=True,
            env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"}).returncode == 0
        self.meta["duration"] = a.duration
        log(f"scratch dir {self.tmp}")
        only = set(a.only.split(",")) if a.only else None

        def wanted(name: str) -> bool:
            return only is None or name in only

        self.upstream = self.start_upstream("raw")
        try:
            if wanted("direct"):
                log("direct to the upstream")
                self.run_direct()
            if not a.no_aiohttp_reference and wanted("direct_aiohttp"):
                log("direct to an aiohttp upstream (reference for the issue's 25% target)")
                self.run_direct_aiohttp()
            if wanted("sidecar"):
                log("llm-sidecar on asyncio")
                self.run_sidecar("sidecar", "llm-sidecar (asyncio)", uvloop=False)
            if not a.no_uvloop and wanted("sidecar_uvloop") and self.ensure_uvloop():
                log("llm-sidecar on uvloop")
                self.run_sidecar("sidecar_uvloop", "llm-sidecar (uvloop)", uvloop=True)
            if wanted("litellm"):
                log("LiteLLM proxy")
                self.run_litellm()
        finally:
            for s in self.servers:
                s.stop()
        self.meta["elapsed_s"] = time.perf_counter() - self.started


# ---------------------------------------------------------------- machine


def pip_versions(python: Path, names: list[str]) -> dict[str, str | None]:
    code = ("import importlib.metadata as m, json, sys\nout = {}\nfor n in sys.argv[1:]:\n"
            "    try: out[n] = m.version(n)\n    except m.PackageNotFoundError: out[n] = None\nprint(json.dumps(out))")
    try:
        r = subprocess.run([str(python), "-c", code, *names], capture_output=True, text=True, timeout=60)
        return json.loads(r.stdout)
    except (subprocess.SubprocessError, OSError, ValueError):
        return {n: None for n in names}


def machine_info() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split("\n")[0].split()[1])
        mem = f"{kb / 1024 / 1024:.0f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    wrk = subprocess.run(["wrk", "--version"], capture_output=True, text=True)
    wrk_version = (wrk.stdout + wrk.stderr).strip().splitlines()[0] if (wrk.stdout or wrk.stderr) else "wrk"
    py = subprocess.run([str(VENV_PY), "-c", "import sys; print(sys.version.split()[0])"],
                        capture_output=True, text=True).stdout.strip()
    versions = pip_versions(VENV_PY, ["llm-sidecar", "aiohttp", "msgspec", "yarl", "multidict"])
    git = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return {
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cores": os.cpu_count(), "cpu": cpu, "memory": mem,
        "kernel": platform.release(), "python": py, "versions": versions,
        "wrk": wrk_version.split(" Copyright")[0], "commit": git.stdout.strip(),
    }


# ---------------------------------------------------------------- report


def fmt(x: float | None, digits: int = 2) -> str:
    if x is None:
        return "—"
    if digits == 0:
        return f"{x:,.0f}"
    return f"{x:,.{digits}f}"


def ratio(a: float | None, b: float | None, digits: int = 1) -> str:
    if not a or not b:
        return "—"
    return f"{a / b:.{digits}f}x"


TARGET_ORDER = ["direct", "direct_aiohttp", "sidecar", "sidecar_uvloop", "litellm"]


def sidecar_keys(targets: dict[str, Target]) -> list[str]:
    return [k for k in ("sidecar", "sidecar_uvloop") if k in targets and targets[k].available]


def report(b: Bench) -> str:
    T, m = b.targets, b.meta
    direct, lite = T.get("direct"), T.get("litellm")
    lite_ok = lite is not None and lite.available
    v = m.get("versions", {})
    lines = ["# llm-sidecar benchmark results", "",
             "Generated by `make bench` (`bench/run.py`); see `bench/README.md` for the method.", "",
             "## Machine", "",
             f"- date: {m.get('date')}, commit {m.get('commit')}",
             f"- {m.get('cores')} cores, {m.get('cpu')}, {m.get('memory')} RAM, Linux {m.get('kernel')}",
             f"- Python {m.get('python')}; llm-sidecar {v.get('llm-sidecar')}, aiohttp {v.get('aiohttp')}, "
             f"msgspec {v.get('msgspec')}, yarl {v.get('yarl')}, multidict {v.get('multidict')}"
             + (f", uvloop {m['uvloop_version']}" if m.get("uvloop_version") else ", uvloop not available"),
             f"- LiteLLM: {m.get('litellm_pkgs') or 'not available'}"
             + (f" (installed by this run in {m['litellm_install_s']:.0f} s)" if m.get("litellm_install_s") else ""),
             f"- load generator: {m.get('wrk')}, 1 thread, keep-alive; {m.get('duration'):g} s per point; "
             f"the whole run took {m.get('elapsed_s', 0):.0f} s",
             "- everything (wrk, upstream, gateway) shares the same 2 cores, as a sidecar would", ""]

    # ---- targets first
    lines += ["## Targets (issue #4)", "", "| Target | Measured | Goal | Result |", "|---|---|---|---|"]
    lines += targets_rows(b)
    lines += [""]

    # ---- load table
    lines += ["## Throughput and latency (wrk)", "",
              "rps = completed requests per second; p50/p99 = wrk's latency percentiles (whole response, "
              "so for streams: last byte); errors = socket errors + non-2xx + time-outs; CPU = the "
              "gateway's own CPU time (user+sys) per request. Ratios: rps of the row over the same "
              "point's direct and LiteLLM rps; Δp50 = added median latency over direct. Other load = CPU "
              "(in cores) used meanwhile by processes that are not the bench's (a concurrent test run): "
              "above ~0.2 the point was disturbed.", "",
              "| Benchmark | Target | rps | p50 ms | p99 ms | errors | CPU µs/req | vs direct | vs LiteLLM | other load |",
              "|---|---|---:|---:|---:|---:|---:|---|---|---:|"]
    for key, label, *_ in LOAD_POINTS:
        first = True
        for tk in TARGET_ORDER:
            t = T.get(tk)
            if t is not None and tk == "litellm" and not t.available:
                lines.append(f"| {label if first else ''} | {t.label} | unavailable | | | | | | | |")
                first = False
                continue
            if t is None or key not in t.points:
                continue
            r = t.points[key]
            name = label if first else ""
            first = False
            if "rps" not in r:
                lines.append(f"| {name} | {t.label} | failed: {r.get('error', '')[:80]} | | | | | | | |")
                continue
            vs_direct = vs_lite = ""
            d = direct.points.get(key) if direct else None
            if tk.startswith("sidecar") or tk == "litellm":
                if d and "rps" in d:
                    vs_direct = f"{100 * r['rps'] / d['rps']:.1f}% rps, Δp50 {r['p50_ms'] - d['p50_ms']:+.2f} ms"
            if tk.startswith("sidecar") and lite_ok and key in lite.points and "rps" in lite.points[key]:
                vs_lite = f"**{ratio(r['rps'], lite.points[key]['rps'])}** rps"
            errs = str(r["errors"]) + (f" ({', '.join(f'{k} {n}' for k, n in r['error_kinds'].items())})"
                                       if r["errors"] else "")
            lines.append(f"| {name} | {t.label} | {fmt(r['rps'], 0)} | {fmt(r['p50_ms'])} | {fmt(r['p99_ms'])} | "
                         f"{errs} | {fmt(r.get('cpu_us_per_req'), 0)} | {vs_direct} | {vs_lite} | "
                         f"{fmt(r.get('other_cores'), 2)} |")
    lines += [""]

    # ---- streaming TTFB
    lines += ["## Streaming: time to first byte and total (aiohttp client)", "",
              "wrk cannot see the first byte, so a small aiohttp client sends sequential streaming "
              "requests (c=1) and times the first body bytes (the first SSE event) and the whole "
              "stream (20 chunks + `[DONE]`). The upstream sends all 20 events at once, so any gap "
              "between TTFB and total is the gateway's own per-chunk work.", "",
              "| Target | requests | TTFB p50 ms | TTFB p99 ms | total p50 ms | total p99 ms | bad |",
              "|---|---:|---:|---:|---:|---:|---:|"]
    for tk in TARGET_ORDER:
        t = T.get(tk)
        if t is None or t.ttfb is None:
            continue
        r = t.ttfb
        if "error" in r:
            lines.append(f"| {t.label} | failed: {r['error'][:80]} | | | | | |")
            continue
        lines.append(f"| {t.label} | {r['n']} | {fmt(r['ttfb_p50'])} | {fmt(r['ttfb_p99'])} | "
                     f"{fmt(r['total_p50'])} | {fmt(r['total_p99'])} | {r['bad']} |")
    lines += [""]

    # ---- model_group/info
    lines += ["## `GET /model_group/info` (wrk, c=1)", "",
              "10,000 deployments = `bench-chat`, `bench-embed` and 9,998 more in groups of 10 "
              "(1,002 model groups). `one group` is `?model_group=group-0042`.", "",
              "| Target | Deployments | Query | groups | size kB | rps | p50 ms | p99 ms | errors |",
              "|---|---:|---|---:|---:|---:|---:|---:|---:|"]
    for tk in TARGET_ORDER:
        t = T.get(tk)
        if t is None or not t.info:
            continue
        for ik, deps, q in (("info_10", "10", "all"), ("info_10k", "10,000", "all"),
                            ("info_10k_one", "10,000", "one group")):
            r = t.info.get(ik)
            if r is None:
                continue
            if "rps" not in r:
                lines.append(f"| {t.label} | {deps} | {q} | {r.get('note') or r.get('error', '')} | | | | | |")
                continue
            seq = f" ({r['requests']} sequential requests)" if r.get("sequential") else ""
            lines.append(f"| {t.label} | {deps} | {q} | {r['groups']} | {fmt(r['size_kb'], 0)} | "
                         f"{fmt(r['rps'], 1 if r['rps'] < 10 else 0)}{seq} | "
                         f"{fmt(r['p50_ms'])} | {fmt(r['p99_ms'])} | {r['errors']} |")
    lines += [""]

    # ---- start-up and memory
    lines += ["## Start-up and memory", "",
              "Start-up = from spawning the process to the first 200 on `/health/readiness` (llm-sidecar: "
              "median of 3, fresh SQLite file; LiteLLM: one start). `default` = `config/sidecar.yaml` "
              "(LiteLLM has no default: its 10-deployment start is shown). RSS = VmRSS of the process "
              "and its children from /proc, 1 s after ready (idle) and after all the load points.", "",
              "| Target | start default s | start 10 deps s | start 10,000 deps s (first / cached parse) | "
              "RSS idle, default MB | RSS idle, 10 deps MB | RSS after load MB | RSS idle, 10,000 deps MB |",
              "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for tk in ("sidecar", "sidecar_uvloop", "litellm"):
        t = T.get(tk)
        if t is None:
            continue
        if not t.available and not t.startup:
            lines.append(f"| {t.label} | unavailable | | | | | |")
            continue
        start10k = fmt(t.startup.get("10k"))
        if t.startup.get("10k_cold") is not None:
            start10k = f"{fmt(t.startup['10k_cold'])} / {start10k}"
        elif tk == "litellm" and "10k" in t.startup and t.startup["10k"] is None:
            start10k = "not ready in time"
        lines.append(f"| {t.label} | {fmt(t.startup.get('default'))} | {fmt(t.startup.get('10'))} | "
                     f"{start10k} | {fmt(t.rss.get('idle_default'), 1)} | {fmt(t.rss.get('idle'), 1)} | "
                     f"{fmt(t.rss.get('after_load'), 1)} | {fmt(t.rss.get('idle_10k'), 1)} |")
    lines += [""]

    # ---- notes
    notes = []
    for tk in TARGET_ORDER:
        t = T.get(tk)
        if t is None:
            continue
        if t.probe and t.probe != "ok":
            notes.append(f"- {t.label}: correctness probe failed: {t.probe}")
        if t.loop:
            notes.append(f"- {t.label}: event loop {t.loop}")
        for n in t.notes:
            notes.append(f"- {t.label}: {n}")
    if notes:
        lines += ["## Run notes", ""] + notes + [""]
    return "\n".join(lines)


def targets_rows(b: Bench) -> list[str]:
    T = b.targets
    sc = T.get("sidecar")
    if sc is None or not sc.available:
        return ["| all | llm-sidecar did not run | | FAIL |"]
    best = {k: T[k] for k in sidecar_keys(T)}
    lite = T.get("litellm")
    lite_ok = lite is not None and lite.available
    direct = T.get("direct")
    rows = []

    def verdict(ok: bool | None) -> str:
        return "—" if ok is None else ("**PASS**" if ok else "**FAIL**")

    def each(fn) -> tuple[str, bool | None]:
        parts, oks = [], []
        for k, t in best.items():
            text, ok = fn(t)
            if text is None:
                continue
            parts.append(f"{'uvloop' if k.endswith('uvloop') else 'asyncio'}: {text}")
            oks.append(ok)
        if not oks:
            return "not measured", None
        return "; ".join(parts), all(oks)

    for key, what in (("chat_c64", "chat"), ("stream_c64", "streaming")):
        if lite_ok and "rps" in lite.points.get(key, {}):
            lr = lite.points[key]["rps"]
            text, ok = each(lambda t: (None, None) if "rps" not in t.points.get(key, {}) else
                            (f"{t.points[key]['rps'] / lr:.1f}x ({t.points[key]['rps']:,.0f} vs {lr:,.0f} rps)",
                             t.points[key]["rps"] >= 30 * lr))
        else:
            text, ok = "LiteLLM unavailable", None
        rows.append(f"| {what} throughput at c=64 vs LiteLLM | {text} | ≥ 30x | {verdict(ok)} |")

    d1 = direct.points.get("chat_c1", {}) if direct else {}
    text, ok = each(lambda t: (None, None) if "p50_ms" not in t.points.get("chat_c1", {}) or "p50_ms" not in d1 else
                    (f"+{t.points['chat_c1']['p50_ms'] - d1['p50_ms']:.3f} ms "
                     f"({t.points['chat_c1']['p50_ms']:.3f} vs {d1['p50_ms']:.3f})",
                     t.points["chat_c1"]["p50_ms"] - d1["p50_ms"] <= 1.0))
    rows.append(f"| added p50 latency at c=1 (chat) | {text} | ≤ 1 ms | {verdict(ok)} |")

    for key, what in (("chat_c64", "chat"), ("stream_c64", "streaming")):
        dd = direct.points.get(key, {}) if direct else {}
        text, ok = each(lambda t: (None, None) if "rps" not in t.points.get(key, {}) or "rps" not in dd else
                        (f"{100 * t.points[key]['rps'] / dd['rps']:.1f}% ({t.points[key]['rps']:,.0f} vs "
                         f"{dd['rps']:,.0f} rps)", t.points[key]["rps"] >= 0.25 * dd["rps"]))
        ref = T.get("direct_aiohttp")
        if ref and "rps" in ref.points.get(key, {}):
            rr = ref.points[key]["rps"]
            text += f"; of an aiohttp upstream's {rr:,.0f} rps: " + ", ".join(
                f"{'uvloop' if k.endswith('uvloop') else 'asyncio'} {100 * t.points[key]['rps'] / rr:.0f}%"
                for k, t in best.items() if "rps" in t.points.get(key, {}))
        rows.append(f"| {what} throughput at c=64 vs direct | {text} | ≥ 25% | {verdict(ok)} |")

    text, ok = each(lambda t: (None, None) if t.startup.get("default") is None else
                    (f"{t.startup['default']:.3f} s", t.startup["default"] <= 0.5))
    if lite_ok and lite.startup.get("10"):
        text += f" (LiteLLM, 10 deployments: {lite.startup['10']:.1f} s)"
    rows.append(f"| start-up, default config | {text} | ≤ 0.5 s | {verdict(ok)} |")

    text, ok = each(lambda t: (None, None) if t.rss.get("idle_default") is None else
                    (f"{t.rss['idle_default']:.1f} MB", t.rss["idle_default"] <= 50))
    if lite_ok and lite.rss.get("idle"):
        text += f" (LiteLLM, 10 deployments: {lite.rss['idle']:.0f} MB)"
    rows.append(f"| idle RSS, default config | {text} | ≤ 50 MB | {verdict(ok)} |")

    def info(t: Target):
        r = t.info.get("info_10k")
        if r is None:
            return None, None
        if "p50_ms" not in r:
            return r.get("note") or r.get("error", "failed"), None
        return f"{r['p50_ms']:.2f} ms ({r['groups']} groups, {r['size_kb']:.0f} kB)", r["p50_ms"] <= 5.0

    parts, oks = [], []
    for k, t in best.items():
        text, ok = info(t)
        if text is not None:
            parts.append(f"{'uvloop' if k.endswith('uvloop') else 'asyncio'}: {text}")
            if ok is not None:
                oks.append(ok)
    rows.append(f"| `/model_group/info`, 10,000 deployments, p50 | {'; '.join(parts) or 'not measured'} | ≤ 5 ms | "
                f"{verdict(all(oks) if oks else None)} |")
    return rows


def write_results(text: str, out: Path) -> None:
    kept = ""
    if out.exists():
        old = out.read_text()
        if NOTES_MARK in old:
            kept = old.split(NOTES_MARK, 1)[1]
    out.write_text(text.rstrip() + "\n\n" + NOTES_MARK + (kept if kept else "\n"))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="llm-sidecar benchmarks (see bench/README.md)")
    p.add_argument("--duration", type=float, default=5.0, help="seconds per wrk point (default 5)")
    p.add_argument("--info-duration", type=float, default=3.0, help="seconds per /model_group/info point")
    p.add_argument("--ttfb-n", type=int, default=200, help="sequential streams for TTFB (default 200)")
    p.add_argument("--ttfb-n-litellm", type=int, default=100, help="the same, for LiteLLM (slower)")
    p.add_argument("--no-litellm", action="store_true", help="skip LiteLLM's proxy")
    p.add_argument("--litellm-10k", action=argparse.BooleanOptionalAction, default=True,
                   help="also start LiteLLM with 10,000 deployments (default on)")
    p.add_argument("--litellm-start-timeout", type=float, default=90.0)
    p.add_argument("--litellm-10k-timeout", type=float, default=150.0)
    p.add_argument("--litellm-install-timeout", type=float, default=420.0)
    p.add_argument("--no-uvloop", action="store_true", help="skip the uvloop run of llm-sidecar")
    p.add_argument("--uvloop-startup", action="store_true", help="also time default-config start-up on uvloop")
    p.add_argument("--no-aiohttp-reference", action="store_true", help="skip the aiohttp-upstream reference row")
    p.add_argument("--sidecar-pythonpath", default=None, metavar="DIR",
                   help="put DIR first on llm-sidecar's PYTHONPATH: A/B-test a patched copy of sidecar/ "
                        "and the plugins without installing it")
    p.add_argument("--only", default=None, metavar="TARGETS",
                   help="comma-separated subset of: direct,direct_aiohttp,sidecar,sidecar_uvloop,litellm")
    p.add_argument("--out", default=str(BENCH / "RESULTS.md"), help="where to write the Markdown results")
    p.add_argument("--json", default=None, help="also write the raw figures as JSON here")
    args = p.parse_args(argv)
    if shutil.which("wrk") is None:
        sys.stderr.write("bench: wrk is not installed; `make bench` installs it (apt-get install -y wrk)\n")
        return 2
    if not SIDECAR_BIN.exists():
        sys.stderr.write("bench: .venv/bin/sidecar is missing; run `make install` first\n")
        return 2
    bench = Bench(args)
    try:
        bench.run()
    except KeyboardInterrupt:
        for s in bench.servers:
            s.stop()
        return 130
    text = report(bench)
    print(text)
    if args.out:
        write_results(text, Path(args.out))
        log(f"wrote {args.out}")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "meta": bench.meta,
            "targets": {k: {f: getattr(t, f) for f in ("points", "ttfb", "startup", "rss", "info", "notes",
                                                       "probe", "available", "loop")}
                        for k, t in bench.targets.items()}}, indent=1, default=str))
    shutil.rmtree(bench.tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

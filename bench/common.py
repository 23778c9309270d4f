"""Shared pieces of the bench: paths, processes, HTTP helpers, configs."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

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

# the bare aiohttp pass-through's points (issue 13): every chat and streaming point on asyncio, the
# two c=64 ones on uvloop (a few 5 s points added to the run)
PASSTHROUGH_POINTS = ["chat_c1", "chat_c16", "chat_c64", "stream_c1", "stream_c64"]
PASSTHROUGH_UVLOOP_POINTS = ["chat_c64", "stream_c64"]


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


def write_config(path: Path, upstream: str, deployments: int, database: Path | None,
                 general: dict[str, str] | None = None, callbacks: list[str] | None = None) -> None:
    """``deployments`` in all: bench-chat, bench-embed, then groups of 10 (group-0000 ...);
    ``general`` adds general_settings (as YAML scalars), ``callbacks`` turns plugins on."""
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
    parts.extend(f"  {key}: {value}\n" for key, value in (general or {}).items())
    if callbacks:
        parts.append(f"litellm_settings:\n  callbacks: [{', '.join(callbacks)}]\n")
    path.write_text("".join(parts))

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
import http.client
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import (
    BENCH,
    CHAT_BODY,
    DEPS,
    HOST,
    LITELLM_BIN,
    LITELLM_VENV,
    LOAD_POINTS,
    PASSTHROUGH_POINTS,
    PASSTHROUGH_UVLOOP_POINTS,
    REPO,
    SIDECAR_BIN,
    STREAM_BODY,
    VENV_PY,
    OtherLoad,
    Server,
    cpu_seconds,
    free_port,
    http_get,
    log,
    rss_mb,
    spawn,
    wait_ready,
    write_config,
)
from measure import Target, measure_ttfb, probe, run_wrk, timed_gets, write_lua
from report import machine_info, pip_versions, report, write_results


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
        self.cpu_rounds: dict[str, dict[str, list[float | None]]] = {}
        """Issue 13's alternating rounds: target key -> point -> CPU µs per request, one per round."""

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

    def sidecar_argv(self, config: Path, port: int, uvloop: bool, workers: int = 1) -> tuple[list[str], dict[str, str]]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SIDECAR_", "PYTHONPATH"))}
        env["SIDECAR_CACHE_DIR"] = str(self.tmp / "sidecar-cache")  # not the user's ~/.cache
        serve = ["serve", "--config", str(config), "--host", HOST, "--port", str(port), "--log-level", "INFO",
                 "--workers", str(workers)]
        extra = getattr(self.args, "sidecar_pythonpath", None)
        path = [x for x in (extra, str(DEPS) if uvloop else None) if x]
        if path:
            env["PYTHONPATH"] = os.pathsep.join(path)
        # the loop asked for, whether or not the project's .venv has uvloop (its test extra does)
        env["SIDECAR_EVENT_LOOP"] = "uvloop" if uvloop else "asyncio"
        return [str(SIDECAR_BIN), *serve], env

    def start_sidecar(self, name: str, config: Path, uvloop: bool, env_extra: dict[str, str] | None = None,
                      timeout: float = 60, workers: int = 1) -> Server:
        port = free_port()
        argv, env = self.sidecar_argv(config, port, uvloop, workers)
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
            self.load(t, up, up.port, [p for p in LOAD_POINTS if p[0] in ("chat_c1", "chat_c64", "stream_c64")])
        finally:
            up.stop()

    def run_passthrough(self, key: str, label: str, uvloop: bool, points: list[str], lean: bool = False) -> None:
        """The bare aiohttp pass-through (``bench/passthrough.py``) to the raw upstream: the floor the
        sidecar's own CPU per request is shown against (issue 13)."""
        t = self.targets.setdefault(key, Target(key, label))
        srv = self.start_passthrough(key, uvloop, lean)
        try:
            if srv.startup_s is None:
                t.available = False
                t.notes.append(f"did not start: {srv.log_tail(5)}")
                return
            t.loop = "uvloop" if "on uvloop" in srv.log_path.read_text(errors="replace") else "asyncio"
            t.probe = probe(srv.port)
            self.warm(srv.port)
            self.load(t, srv, srv.port, [p for p in LOAD_POINTS if p[0] in points])
        finally:
            srv.stop()

    def start_passthrough(self, key: str, uvloop: bool, lean: bool) -> Server:
        """``bench/passthrough.py`` started; ``startup_s`` is None when it did not become ready."""
        port = free_port()
        argv = [str(VENV_PY), str(BENCH / "passthrough.py"), "--port", str(port), "--upstream", self.upstream.base,
                "--max-seconds", "1500", *(["--uvloop"] if uvloop else []), *(["--lean"] if lean else [])]
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHONPATH")}
        if uvloop:
            env["PYTHONPATH"] = str(DEPS)
        srv = spawn(key, argv, env, REPO, self.logdir, port)
        self.servers.append(srv)
        srv.startup_s = wait_ready(srv, time.perf_counter(), 20, path="/health")
        return srv

    def run_cpu_rounds(self, rounds: int) -> None:
        """Issue 13's CPU per request, alternating: each round loads the aiohttp pass-through, the
        lean pass-through and llm-sidecar (asyncio, one process) at chat and stream c=64 in turn
        (starting with a different one each round), all three started once and idle while the
        others are measured. This machine drifts by ±30% from one minute to the next, so one point
        each says little; the targets take the median of the rounds' ratios."""
        started: dict[str, Server] = {}
        try:
            for key, lean in (("passthrough", False), ("passthrough_lean", True)):
                started[key] = self.start_passthrough(f"{key}-rounds", False, lean)
            cfg = self.tmp / "rounds-10.yaml"
            write_config(cfg, self.upstream.base, 10, self.tmp / "rounds-10.db")
            started["sidecar"] = self.start_sidecar("sidecar-rounds", cfg, False)
            ready = [(key, srv) for key, srv in started.items() if srv.startup_s is not None]
            for _, srv in ready:
                self.warm(srv.port)
            points = [p for p in LOAD_POINTS if p[0] in ("chat_c64", "stream_c64")]
            for r in range(rounds):
                for key, srv in ready[r % len(ready):] + ready[:r % len(ready)]:
                    scratch = Target(key, key)
                    self.load(scratch, srv, srv.port, points)
                    for point, *_ in points:
                        cpu = scratch.points.get(point, {}).get("cpu_us_per_req")
                        self.cpu_rounds.setdefault(key, {}).setdefault(point, [None] * rounds)[r] = cpu
        finally:
            for srv in started.values():
                srv.stop()

    def run_sidecar_workers(self, key: str, label: str, uvloop: bool, workers: int) -> None:
        """``sidecar serve --workers N``: the load points, TTFB, start-up and memory (of all processes)."""
        t = self.targets.setdefault(key, Target(key, label))
        cfg = self.tmp / f"{key}-10.yaml"
        write_config(cfg, self.upstream.base, 10, self.tmp / f"{key}-10.db")
        srv = self.start_sidecar(f"{key}-10", cfg, uvloop, workers=workers)
        t.startup["10"] = srv.startup_s
        t.notes.append(f"{workers} worker processes (`--workers {workers}`); CPU and RSS are summed over them")
        self.measure_started(t, srv)

    def measure_started(self, t: Target, srv: Server) -> bool:
        """:meth:`measure_10` on a gateway that became ready (else noted); stops it either way."""
        if srv.startup_s is None:
            t.available = False
            t.notes.append(f"did not become ready: {srv.log_tail(5)}")
            srv.stop()
            return False
        t.loop = "uvloop" if "(uvloop" in srv.log_path.read_text(errors="replace") else "asyncio"
        self.measure_10(t, srv, self.args.ttfb_n)
        return True

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
        if not self.measure_started(t, srv):
            return
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
            if not a.no_passthrough and wanted("passthrough"):
                log("bare aiohttp pass-through on asyncio (the floor for the sidecar's CPU per request)")
                self.run_passthrough("passthrough", "aiohttp pass-through (asyncio)", False, PASSTHROUGH_POINTS)
            if not a.no_passthrough and wanted("passthrough_lean"):
                log("bare pass-through with the lean client (the floor with the sidecar's own upstream client)")
                self.run_passthrough("passthrough_lean", "lean pass-through (asyncio)", False, PASSTHROUGH_POINTS,
                                     lean=True)
            if (not a.no_passthrough and not a.no_uvloop and wanted("passthrough_uvloop")
                    and self.ensure_uvloop()):
                log("bare aiohttp pass-through on uvloop")
                self.run_passthrough("passthrough_uvloop", "aiohttp pass-through (uvloop)", True,
                                     PASSTHROUGH_UVLOOP_POINTS)
            if wanted("sidecar"):
                log("llm-sidecar on asyncio")
                self.run_sidecar("sidecar", "llm-sidecar (asyncio)", uvloop=False)
            if not a.no_uvloop and wanted("sidecar_uvloop") and self.ensure_uvloop():
                log("llm-sidecar on uvloop")
                self.run_sidecar("sidecar_uvloop", "llm-sidecar (uvloop)", uvloop=True)
            if a.workers > 1 and wanted("sidecar_workers"):
                uv = not a.no_uvloop and self.ensure_uvloop()
                log(f"llm-sidecar with {a.workers} workers")
                self.run_sidecar_workers("sidecar_workers", f"llm-sidecar ({a.workers} workers, "
                                         f"{'uvloop' if uv else 'asyncio'})", uvloop=uv, workers=a.workers)
            if a.cpu_rounds and not a.no_passthrough and wanted("sidecar"):
                log(f"CPU per request (issue 13): {a.cpu_rounds} alternating rounds of the pass-throughs and llm-sidecar")
                self.run_cpu_rounds(a.cpu_rounds)
            if wanted("litellm"):
                log("LiteLLM proxy")
                self.run_litellm()
        finally:
            for s in self.servers:
                s.stop()
        self.meta["elapsed_s"] = time.perf_counter() - self.started



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
    p.add_argument("--no-passthrough", action="store_true", help="skip the bare aiohttp pass-through rows")
    p.add_argument("--cpu-rounds", type=int, default=7, metavar="N",
                   help="issue 13's CPU targets: N alternating rounds of the pass-throughs and llm-sidecar at "
                        "chat and stream c=64, the median ratio taken (default 7; 0: one point each, from the rows)")
    p.add_argument("--sidecar-pythonpath", default=None, metavar="DIR",
                   help="put DIR first on llm-sidecar's PYTHONPATH: A/B-test a patched copy of sidecar/ "
                        "and the plugins without installing it")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                   help="also run llm-sidecar with this many worker processes (default: one per core; 1: skip)")
    p.add_argument("--only", default=None, metavar="TARGETS",
                   help="comma-separated subset of: direct,direct_aiohttp,passthrough,passthrough_lean,passthrough_uvloop,sidecar,"
                        "sidecar_uvloop,sidecar_workers,litellm")
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
            "cpu_rounds": bench.cpu_rounds,
            "targets": {k: {f: getattr(t, f) for f in ("points", "ttfb", "startup", "rss", "info", "notes",
                                                       "probe", "available", "loop")}
                        for k, t in bench.targets.items()}}, indent=1, default=str))
    shutil.rmtree(bench.tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

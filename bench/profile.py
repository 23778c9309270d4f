"""Profile llm-sidecar's hot path under wrk load with py-spy, and summarise where the time goes.

    .venv/bin/python bench/profile.py [--point chat|stream|embed] [--concurrency 64] [--seconds 10] [--uvloop]

Starts the instant upstream and llm-sidecar (10-deployment bench config), puts wrk load on one
point, samples the sidecar with ``py-spy record --format raw`` (py-spy is installed into
``bench/.deps`` on first use, not into the project's .venv) and prints the frames with the most
self time and the most inclusive time, as ``file:line`` and % of the sampled (non-idle) time.
The raw collapsed stacks are kept (``--keep``) for a flame graph.
"""

from __future__ import annotations

import argparse
import collections
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402  (bench/: spawning, configs, wrk)
import measure  # noqa: E402
import run  # noqa: E402

PY_SPY = common.DEPS / "bin" / "py-spy"
POINTS = {
    "chat": ("/v1/chat/completions", common.CHAT_BODY),
    "stream": ("/v1/chat/completions", common.STREAM_BODY),
    "embed": ("/v1/embeddings", common.EMBED_BODY),
}


def ensure_py_spy() -> None:
    if not PY_SPY.exists():
        subprocess.run([str(common.VENV_PY), "-m", "pip", "install", "--quiet", "--target", str(common.DEPS), "py-spy"],
                       check=True, timeout=300)


# Leaf frames py-spy counts as busy though the thread sleeps in a blocking call that releases the
# GIL (checked with /proc/PID/task/*/stat: aiosqlite's worker thread uses no CPU under this load).
IDLE_LEAVES = ("_connection_worker_thread ",)


def short(frame: str) -> str:
    """``func (/abs/path/site-packages/pkg/mod.py:12)`` -> ``pkg/mod.py:12 func``."""
    name, _, where = frame.rpartition(" (")
    where = where.rstrip(")")
    for marker in ("site-packages/", "/work/main/", str(common.REPO) + "/", "lib/python3"):
        if marker in where:
            where = where.split(marker, 1)[1]
    return f"{where} {name}"


def summarise(raw: Path, top: int) -> str:
    self_t: collections.Counter[str] = collections.Counter()
    incl: collections.Counter[str] = collections.Counter()
    incl_fn: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if not stack or not n.isdigit():
            continue
        n = int(n)
        frames = [f for f in stack.split(";") if f and not f.startswith("process ") and not f.startswith("thread ")]
        if not frames or frames[-1].startswith(IDLE_LEAVES):
            continue
        total += n
        self_t[short(frames[-1])] += n
        for f in set(frames):
            incl[short(f)] += n
        for fn in {short(f).rsplit(":", 1)[0] + " " + short(f).split(" ", 1)[1] for f in frames}:
            incl_fn[fn] += n
    out = [f"{total} samples (non-idle)", "", "## self time (file:line function)"]
    out += [f"{100 * c / total:5.1f}%  {f}" for f, c in self_t.most_common(top)]
    out += ["", "## inclusive time by function"]
    out += [f"{100 * c / total:5.1f}%  {f}" for f, c in incl_fn.most_common(top * 2)]
    out += ["", "## inclusive time (file:line function)"]
    out += [f"{100 * c / total:5.1f}%  {f}" for f, c in incl.most_common(top * 2)]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--point", choices=sorted(POINTS), default="chat")
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--rate", type=int, default=250, help="py-spy samples per second")
    p.add_argument("--uvloop", action="store_true", help="run the sidecar on uvloop (from bench/.deps)")
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--keep", default=None, help="copy py-spy's collapsed stacks here")
    p.add_argument("--sidecar-pythonpath", default=None, metavar="DIR",
                   help="profile a patched copy of sidecar/ and the plugins found first on this path")
    p.add_argument("--no-spy", action="store_true", help="just measure (no py-spy): for A/B runs")
    p.add_argument("--general", action="append", default=[], metavar="KEY=VALUE",
                   help="a general_settings entry for the sidecar's config (repeatable)")
    p.add_argument("--callback", action="append", default=[], metavar="NAME",
                   help="a litellm_settings callback to turn on (prometheus, otel...; repeatable)")
    args = p.parse_args(argv)
    ensure_py_spy()
    ns = argparse.Namespace(duration=args.seconds, info_duration=1, ttfb_n=0,
                            sidecar_pythonpath=args.sidecar_pythonpath)
    b = run.Bench(ns)
    try:
        b.upstream = b.start_upstream("raw")
        cfg = b.tmp / "profile.yaml"
        general = dict(item.split("=", 1) for item in args.general)
        common.write_config(cfg, b.upstream.base, 10, b.tmp / "profile.db", general, args.callback)
        srv = b.start_sidecar("sidecar-profile", cfg, args.uvloop)
        if srv.startup_s is None:
            sys.stderr.write(f"the sidecar did not start:\n{srv.log_tail()}\n")
            return 1
        path, body = POINTS[args.point]
        lua = b.lua_for(args.point, "POST", body)
        b.warm(srv.port)
        if args.no_spy:
            cpu0 = common.cpu_seconds(srv.pid)
            other = common.OtherLoad([srv, b.upstream])
            res = measure.run_wrk(f"http://{common.HOST}:{srv.port}{path}", lua, args.concurrency, args.seconds)
            cpu = (common.cpu_seconds(srv.pid) - cpu0) * 1e6 / max(1, res.get("requests", 0))
            print(f"# {args.point} c={args.concurrency}: {res.get('rps', 0):,.0f} rps, p50 {res.get('p50_ms', 0):.2f} ms, "
                  f"p99 {res.get('p99_ms', 0):.2f} ms, errors {res.get('errors')}, sidecar CPU {cpu:.0f} µs/req, "
                  f"other load {other.cores():.2f} cores")
            return 0
        raw = b.tmp / "stacks.txt"
        spy = subprocess.Popen([str(PY_SPY), "record", "--format", "raw", "--rate", str(args.rate),
                                "--duration", str(int(args.seconds)), "--pid", str(srv.pid), "-o", str(raw)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(0.5)  # let py-spy attach
        res = measure.run_wrk(f"http://{common.HOST}:{srv.port}{path}", lua, args.concurrency, args.seconds)
        try:
            spy.wait(args.seconds + 30)
        except subprocess.TimeoutExpired:
            spy.terminate()
            spy.wait(10)
        print(f"# {args.point} c={args.concurrency} on {'uvloop' if args.uvloop else 'asyncio'}, under py-spy: "
              f"{res.get('rps', 0):,.0f} rps, p50 {res.get('p50_ms', 0):.2f} ms, errors {res.get('errors')}\n")
        if not raw.exists():
            sys.stderr.write(f"py-spy wrote nothing: {spy.stderr.read().decode(errors='replace')[-500:]}\n")
            return 1
        print(summarise(raw, args.top))
        if args.keep:
            Path(args.keep).write_bytes(raw.read_bytes())
    finally:
        for s in b.servers:
            s.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

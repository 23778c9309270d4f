"""Instructions per request under callgrind: the CPU targets' measure without this machine's noise.

    .venv/bin/python bench/instructions.py [--point chat|stream] [--requests 400] [--concurrency 8]
        [--targets sidecar,passthrough,passthrough_lean] [--sidecar-pythonpath DIR]

CPU time per request on a shared 2-core VM moves by ±30% between runs of the same code, so an
A/B of a change worth 2% needs dozens of alternating rounds. Counting instructions does not
move: each target runs under valgrind's callgrind (about 50x slower, so a few hundred requests),
its counters are zeroed after a warm-up and dumped after the measured requests, and the total is
divided by the requests. Two runs of the same code agree within about 0.5%. Instructions are not
time: only the process's own (user-space) instructions are counted, not the kernel's work in its
system calls, and cache misses weigh nothing. The aiohttp pass-through relays a stream's 20
events in 20 socket writes where the sidecar makes one, so at the stream point it reads 0.90x the
sidecar's instructions while using more CPU time. The targets stay judged on CPU time in
``run.py``; this is for telling whether a change to the same code pays, and where the work is
(``callgrind_annotate --inclusive=yes`` on a dump kept with ``--keep`` names the C functions).

The load is sequential keep-alive requests from ``--concurrency`` threads of this process (not
measured). The sidecar runs the bench's 10-deployment config on asyncio, with its spend log.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402  (bench/: spawning, configs)
import run  # noqa: E402

POINTS = {"chat": common.CHAT_BODY, "stream": common.STREAM_BODY}
TARGETS = ("sidecar", "passthrough", "passthrough_lean")
WARMUP = 200


def drive(port: int, body: dict, requests: int, concurrency: int) -> int:
    """``requests`` POSTs of ``body`` to the chat endpoint over ``concurrency`` keep-alive
    connections; the number that did not answer 200."""
    data = json.dumps(body).encode()
    headers = {"Authorization": common.AUTH, "Content-Type": "application/json"}
    failed = []

    def worker(count: int) -> None:
        conn = http.client.HTTPConnection(common.HOST, port, timeout=600)
        for _ in range(count):
            conn.request("POST", "/v1/chat/completions", data, headers)
            resp = conn.getresponse()
            resp.read()
            if resp.status != 200:
                failed.append(resp.status)
        conn.close()

    threads = [threading.Thread(target=worker, args=(requests // concurrency,)) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return len(failed)


def measure(b: run.Bench, target: str, point: str, requests: int, concurrency: int, keep: Path | None,
            general: dict[str, str] | None = None) -> float:
    """Instructions per request of ``target`` at ``point`` (the warm-up and start-up not counted)."""
    dump = b.tmp / f"callgrind.{target}.out"
    valgrind = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={dump}", "--dump-instr=no", "--collect-jumps=no"]
    port = common.free_port()
    if target == "sidecar":
        cfg = b.tmp / "instructions.yaml"
        common.write_config(cfg, b.upstream.base, 10, b.tmp / f"instructions-{time.time_ns()}.db", general=general)
        argv, env = b.sidecar_argv(cfg, port, uvloop=False)  # (asyncio: SIDECAR_EVENT_LOOP)
        argv = [str(common.VENV_PY), *argv]  # (the console script run by the venv's python, under valgrind)
    else:
        argv = [str(common.VENV_PY), str(common.BENCH / "passthrough.py"), "--port", str(port),
                "--upstream", b.upstream.base, *(["--lean"] if target == "passthrough_lean" else [])]
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHONPATH")}
    env["PYTHONHASHSEED"] = "0"
    srv = common.spawn(f"{target}-callgrind", valgrind + argv, env, b.tmp, b.logdir, port)
    b.servers.append(srv)
    ready = common.wait_ready(srv, time.perf_counter(), 300, path="/health/liveliness" if target == "sidecar" else "/health")
    if ready is None:
        raise SystemExit(f"{target} did not start under valgrind:\n{srv.log_tail()}")
    body = POINTS[point]
    if drive(port, body, WARMUP, concurrency):
        raise SystemExit(f"{target}: the warm-up requests failed:\n{srv.log_tail()}")
    time.sleep(1.0)
    subprocess.run(["callgrind_control", "-z", str(srv.pid)], check=True, capture_output=True)
    failed = drive(port, body, requests, concurrency)
    time.sleep(1.5)  # (the spend log writes its rows within 0.5 s)
    subprocess.run(["callgrind_control", "-d", str(srv.pid)], check=True, capture_output=True)
    time.sleep(0.5)
    srv.stop()
    dumps = sorted(b.tmp.glob(f"callgrind.{target}.out.*"))
    measured = [d for d in dumps if d.name.endswith(".1")] or dumps
    total = next(int(line.split()[1]) for line in measured[0].read_text().splitlines()
                 if line.startswith(("summary:", "totals:")))
    if keep is not None:
        shutil.copy(measured[0], keep / f"callgrind.{target}.{point}.out")
    if failed:
        print(f"# {target}: {failed} of {requests} requests failed", file=sys.stderr)
    return total / requests


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--point", choices=sorted(POINTS), default="chat")
    p.add_argument("--requests", type=int, default=400)
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--targets", default=",".join(TARGETS), help=f"comma-separated subset of {', '.join(TARGETS)}")
    p.add_argument("--sidecar-pythonpath", default=None, metavar="DIR",
                   help="measure a patched copy of sidecar/ and the plugins found first on this path")
    p.add_argument("--keep", default=None, metavar="DIR", help="copy the measured callgrind dumps here")
    p.add_argument("--general", action="append", default=[], metavar="KEY=VALUE",
                   help="a general_settings entry for the sidecar's config (repeatable), e.g. disable_spend_logs=true")
    args = p.parse_args(argv)
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        print("valgrind (with callgrind_control) is not installed: apt install valgrind", file=sys.stderr)
        return 2
    targets = [t for t in args.targets.split(",") if t]
    unknown = [t for t in targets if t not in TARGETS]
    if unknown:
        p.error(f"unknown targets: {', '.join(unknown)}")
    ns = argparse.Namespace(duration=1, info_duration=1, ttfb_n=0, sidecar_pythonpath=args.sidecar_pythonpath)
    b = run.Bench(ns)
    keep = Path(args.keep) if args.keep else None
    malformed = [g for g in args.general if "=" not in g]
    if malformed:
        p.error(f"--general takes KEY=VALUE, not {malformed[0]!r}")
    general = dict(g.split("=", 1) for g in args.general)
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
    results: dict[str, float] = {}
    try:
        b.upstream = b.start_upstream("raw")
        for target in targets:
            results[target] = measure(b, target, args.point, args.requests, args.concurrency, keep, general)
            common.log(f"{target} {args.point}: {results[target]:,.0f} instructions per request")
    finally:
        for s in b.servers:
            s.stop()
    base = results.get("passthrough")
    print(f"| target ({args.point}, c={args.concurrency}, {args.requests} requests) | instructions per request "
          f"| vs the aiohttp pass-through |")
    print("|---|---:|---:|")
    for target, value in results.items():
        ratio = f"{value / base:.2f}x" if base else ""
        print(f"| {target} | {value:,.0f} | {ratio} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Open-loop load on ``flareflow serve --local``: a fixed arrival rate of short runs over HTTP.

Workload: ``POST /runs`` of a workflow of --steps no-op steps (default 2) at --rate runs/s (default
100) for --duration seconds (default 60), against a real server process on loopback (a fresh
temporary project). The loop is OPEN: start i is sent at t0 + i / rate whatever the server does, each
from its own task, so a slow server meets a growing queue instead of a politely waiting client
(no coordinated omission). The client is one httpx.AsyncClient with up to --connections kept-alive
connections; requests that find no free connection wait for one, and that wait counts.

Latency = start-to-completion: from the moment a start was *scheduled* (not sent) to the server's
commit of its ``run.completed`` (the run's ``updated_at`` in the index, ms precision, the same wall
clock), read after the load from ``GET /runs`` pages, so measuring adds no load. Errors: non-2xx
answers, transport errors, runs not completed --grace seconds after the last start.

Every 10 s: starts sent and answered in the window (achieved rate), errors, the POST latency p50/p99
of the window, and the server's RSS (VmRSS) and open descriptors (/proc/PID/fd). The first window
is warm-up; "flat" compares the last sample with the one after warm-up (growth per 1,000 runs).

Targets at 100 runs/s: p99 start-to-completion < 100 ms, zero errors, RSS and descriptors flat
after warm-up.

    python benchmarks/load.py [--rate 100] [--duration 60] [--steps 2] [--connections 64]
                              [--sync normal|full] [--grace 15] [--dir PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.metadata as md
import os
import secrets
import shutil
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    busy_cores,
    environment,
    load_average,
    percentile,
    print_env,
    proc_cpu_seconds,
    start_server,
    stop_server,
    table,
    write_project,
)

# as in throughput.py: httpcore imports the optional sniffio on every lock; mark it missing once
sys.modules.setdefault("sniffio", None)  # type: ignore[arg-type]

P99_TARGET_MS = 100.0
SAMPLE_SECONDS = 10.0

WORKFLOW_SOURCE = '''\
"""Benchmark workflow written by benchmarks/load.py (temporary project)."""
from flareflow import Run, workflow


def noop(i):
    return i


@workflow("short")
async def short(run: Run, cfg=None):
    steps = int((cfg or {}).get("steps", 2))
    for i in range(steps):
        await run.step(f"s{i}", noop, i)
    return steps
'''


def rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return -1


def open_fds(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return -1


def iso_ts(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


class Load:
    """The schedule, the in-flight starts and what came back."""

    def __init__(self, args: argparse.Namespace, client: Any) -> None:
        self.args = args
        self.client = client
        self.body = {"workflow": "short", "input": {"steps": args.steps}}
        self.scheduled: dict[str, float] = {}  # run id -> wall time its start was scheduled
        self.sent = 0
        self.answered: list[tuple[float, float]] = []  # (answer time, POST latency ms), 2xx only
        self.errors: list[str] = []
        self.tasks: set[asyncio.Task[None]] = set()

    async def start_one(self, due_wall: float) -> None:
        t = time.perf_counter()
        try:
            response = await self.client.post("/runs", json=self.body)
        except Exception as exc:  # transport errors count, and never stop the schedule
            self.errors.append(f"{type(exc).__name__}: {exc}"[:200])
            return
        latency = (time.perf_counter() - t) * 1000
        if response.status_code != 201:
            self.errors.append(f"HTTP {response.status_code}: {response.text[:160]}")
            return
        self.scheduled[response.json()["id"]] = due_wall
        self.answered.append((time.monotonic(), latency))

    async def run(self) -> float:
        """Send on schedule for --duration seconds; returns the wall time of the first start."""
        interval = 1.0 / self.args.rate
        total = int(self.args.rate * self.args.duration)
        loop = asyncio.get_running_loop()
        t0 = loop.time() + 0.05
        wall0 = time.time() + 0.05
        for i in range(total):
            delay = t0 + i * interval - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            task = asyncio.ensure_future(self.start_one(wall0 + i * interval))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
            self.sent += 1
        return wall0


async def sampler(load: Load, pid: int, samples: list[dict[str, Any]], started: float) -> None:
    last_sent, last_answered, last_errors = 0, 0, 0
    cpu_last = proc_cpu_seconds(pid)
    while True:
        await asyncio.sleep(SAMPLE_SECONDS)
        now = time.monotonic()
        window = [lat for at, lat in load.answered[last_answered:]]
        cpu = proc_cpu_seconds(pid)
        sample = {
            "t": now - started, "sent": load.sent - last_sent, "answered": len(window),
            "errors": len(load.errors) - last_errors, "post_p50": percentile(window, 50),
            "post_p99": percentile(window, 99), "rss": rss_kib(pid), "fds": open_fds(pid),
            "cpu": (cpu - cpu_last) / SAMPLE_SECONDS, "runs": len(load.scheduled),
        }
        cpu_last = cpu
        samples.append(sample)
        last_sent, last_answered, last_errors = load.sent, len(load.answered), len(load.errors)
        print(f"  t={sample['t']:5.1f}s  sent {sample['sent'] / SAMPLE_SECONDS:6.1f}/s  answered "
              f"{sample['answered'] / SAMPLE_SECONDS:6.1f}/s  errors {sample['errors']:3d}  POST p50 "
              f"{sample['post_p50']:6.1f} ms p99 {sample['post_p99']:6.1f} ms  server RSS "
              f"{sample['rss'] / 1024:6.1f} MiB  fds {sample['fds']:4d}  cpu {sample['cpu']:.2f} core",
              flush=True)


async def completions(client: Any, ids: set[str], deadline: float) -> dict[str, float]:
    """Run id -> completion wall time (``updated_at`` of completed runs), polling until all are done
    or ``deadline``; failed runs are reported as errors by the caller (missing here)."""
    done: dict[str, float] = {}
    while True:
        cursor = None
        while True:
            params: dict[str, Any] = {"status": "completed", "limit": 500}
            if cursor:
                params["cursor"] = cursor
            page = (await client.get("/runs", params=params)).json()
            for row in page["runs"]:
                if row["id"] in ids:
                    done[row["id"]] = iso_ts(row["updated_at"])
            cursor = page.get("next_cursor")
            if not cursor:
                break
        if len(done) >= len(ids) or time.monotonic() > deadline:
            return done
        await asyncio.sleep(0.5)


async def run(args: argparse.Namespace, root: Path) -> int:
    import httpx

    token = "bench-" + secrets.token_hex(12)
    project = write_project(Path(tempfile.mkdtemp(prefix="project-", dir=root)), WORKFLOW_SOURCE, sync=args.sync)
    server, url, log = start_server(project, token)
    pid = server.pid
    try:
        limits = httpx.Limits(max_connections=args.connections, max_keepalive_connections=args.connections)
        async with httpx.AsyncClient(base_url=url, headers={"authorization": f"Bearer {token}"},
                                     timeout=30, limits=limits) as client:
            for _ in range(20):  # imports and first-request paths warm
                await client.post("/runs", json={"workflow": "short", "input": {"steps": args.steps}})
            await asyncio.sleep(0.5)
            print(f"before the load: server RSS {rss_kib(pid) / 1024:.1f} MiB, {open_fds(pid)} descriptors\n")
            load = Load(args, client)
            samples: list[dict[str, Any]] = []
            started = time.monotonic()
            sampling = asyncio.ensure_future(sampler(load, pid, samples, started))
            await load.run()
            sending = time.monotonic() - started
            if load.tasks:
                await asyncio.wait(set(load.tasks), timeout=args.grace)
            finished = await completions(client, set(load.scheduled), time.monotonic() + args.grace)
            sampling.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sampling
            failed = (await client.get("/runs", params={"status": "failed", "limit": 500})).json()["runs"]
    finally:
        code = stop_server(server)
    latencies = [(finished[i] - due) * 1000 for i, due in load.scheduled.items() if i in finished]
    missing = len(load.scheduled) - len(finished)
    errors = len(load.errors) + missing
    offered = args.rate * args.duration
    print()
    rows = [
        ("offered", f"{offered:,.0f} starts at {args.rate:g}/s over {args.duration:g} s"),
        ("achieved", f"{load.sent:,} sent in {sending:.2f} s ({load.sent / sending:.1f}/s); "
                     f"{len(load.scheduled):,} started (201), {len(finished):,} completed"),
        ("start->completion", f"p50 {percentile(latencies, 50):.1f} ms, p99 {percentile(latencies, 99):.1f} ms, "
                              f"max {max(latencies, default=float('nan')):.1f} ms"),
        ("POST /runs", f"p50 {percentile([lat for _, lat in load.answered], 50):.1f} ms, "
                       f"p99 {percentile([lat for _, lat in load.answered], 99):.1f} ms"),
        ("errors", f"{errors} ({len(load.errors)} requests, {missing} runs not completed within {args.grace:g} s, "
                   f"{len(failed)} failed runs on the server)"),
    ]
    if load.errors:
        rows.append(("first error", load.errors[0]))
    print(table(["measure", "value"], rows, right=[False, False]))
    verdicts = []
    p99 = percentile(latencies, 99)
    verdicts.append(("p99 start->completion", f"{p99:.1f} ms", f"< {P99_TARGET_MS:g} ms",
                     "MET" if p99 < P99_TARGET_MS else "MISSED"))
    verdicts.append(("errors", str(errors), "0", "MET" if errors == 0 else "MISSED"))
    if len(samples) >= 3:
        warm, last = samples[0], samples[-1]
        runs_between = max(1, last["runs"] - warm["runs"])
        rss_growth = (last["rss"] - warm["rss"]) / 1024
        fd_growth = last["fds"] - warm["fds"]
        verdicts.append(("RSS after warm-up", f"{warm['rss'] / 1024:.1f} -> {last['rss'] / 1024:.1f} MiB "
                         f"({rss_growth * 1000 / runs_between:+.2f} MiB per 1,000 runs)", "flat",
                         "MET" if abs(rss_growth) * 1000 / runs_between < 0.2 else "MISSED"))
        verdicts.append(("descriptors after warm-up", f"{warm['fds']} -> {last['fds']}", "flat",
                         "MET" if abs(fd_growth) <= 4 else "MISSED"))
    print()
    print(table(["target", "measured", "wanted", "verdict"], verdicts))
    print(f"\nserver exit code {code}; load average at the end: {load_average()}")
    if code not in (0, None, -2, 130):
        print("server output:\n  " + "\n  ".join(log[-20:]))
    return 0 if all(v[3] == "MET" for v in verdicts) else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=100.0, help="offered starts per second (default 100)")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load (default 60)")
    parser.add_argument("--steps", type=int, default=2, help="no-op steps per run (default 2)")
    parser.add_argument("--connections", type=int, default=64, help="client connections at most (default 64)")
    parser.add_argument("--sync", choices=("normal", "full"), default="normal",
                        help="[tool.flareflow.local].sync of the temp project (default normal, the default)")
    parser.add_argument("--grace", type=float, default=15.0,
                        help="seconds after the last start for answers and completions (default 15)")
    parser.add_argument("--dir", default=None, help="parent directory for temp state (default: system temp)")
    args = parser.parse_args()
    if args.rate <= 0 or args.duration <= 0 or args.steps < 0 or args.connections < 1:
        parser.error("rate, duration and connections must be positive")
    root = Path(tempfile.mkdtemp(prefix="flareflow-load-", dir=args.dir))
    try:
        env = environment(root)
        env.append(("server libs", ", ".join(f"{p} {md.version(p)}" for p in ("uvicorn", "starlette", "httpx"))))
        env.append(("load average", f"{load_average()} (before start); other processes busy: "
                                    f"{busy_cores():.2f} cores (1 s sample)"))
        print_env(env)
        print(f"Workload: open loop, {args.rate:g} runs/s of '{args.steps} no-op steps' for {args.duration:g} s, "
              f"sync={args.sync}, up to {args.connections} client connections\n")
        return asyncio.run(run(args, root))
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())

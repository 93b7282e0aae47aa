"""workerd: per-step cost and first-request (cold) latency on the workerd harness, beside the local server.

Both hosts serve the same generated project over the same HTTP API, in the same script run:
  - local:   `flareflow serve --local` (embedded runtime, sqlite3 files)
  - workerd: `flareflow serve` with wrangler dev swapped for the harness (real workerd, Pyodide 0.28.2, DO SQLite)

Figures per host:
  ready        process start until the server answers (workerd: includes booting Pyodide, from its snapshot)
  cold POST    the first POST /runs (a new run object: on workerd a new Durable Object and its migrations)
  warm POST    median of later POST /runs
  per step     (run.completed - run.started) / steps for a run of --steps no-op steps, median of --runs runs
There is no target yet: this is the baseline for the next round.

    python benchmarks/workerd.py [--steps 100] [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "bench-token-0123456789abcdef"
WORKFLOW = '''
from flareflow import Run, workflow


def noop(i: int) -> int:
    return i


@workflow("steps")
async def steps(run: Run, n: int = 10) -> int:
    for i in range(n):
        await run.step("s", noop, i)
    return n
'''


def flareflow_cmd() -> list[str]:
    exe = Path(sys.executable).parent / "flareflow"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "flareflow"]


def make_project(tmp: Path) -> Path:
    project = tmp / "bench"
    (project / "workflows").mkdir(parents=True)
    (project / "pyproject.toml").write_text('[project]\nname = "bench"\nversion = "0"\n\n[tool.flareflow]\n')
    (project / "workflows" / "steps.py").write_text(WORKFLOW)
    return project


def start(cmd: list[str], cwd: Path, pattern: str, timeout: float = 120.0,
          env: dict[str, str] | None = None) -> tuple[subprocess.Popen[str], str, float]:
    """Start a server in its own process group and return it with its URL and the seconds until it
    printed that URL; its output keeps being drained so it never blocks on a full pipe."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "FLAREFLOW_TOKEN": TOKEN, **(env or {})}, start_new_session=True)
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    for line in proc.stdout:
        match = re.search(pattern, line)
        if match:
            threading.Thread(target=proc.stdout.read, daemon=True).start()
            return proc, match.group(1), time.perf_counter() - t0
        if time.monotonic() > deadline:
            break
    stop(proc)
    raise RuntimeError(f"server did not start: {' '.join(cmd)}")


def stop(proc: subprocess.Popen[str]) -> None:
    """End the server and everything it started (wrangler, node, workerd): the whole process group."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(15)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def parse_at(value: str) -> float:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


async def measure(url: str, steps: int, runs: int) -> dict[str, float]:
    headers = {"authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=120) as client:
        t0 = time.perf_counter()
        first = await client.post("/runs", json={"workflow": "steps", "input": 1})
        cold = time.perf_counter() - t0
        first.raise_for_status()
        warm, per_step = [], []
        for _ in range(runs):
            t0 = time.perf_counter()
            response = await client.post("/runs", json={"workflow": "steps", "input": steps})
            warm.append(time.perf_counter() - t0)
            response.raise_for_status()
            run_id = response.json()["id"]
            while True:
                run = (await client.get(f"/runs/{run_id}")).json()
                if run["status"] in ("completed", "failed", "cancelled"):
                    break
                await asyncio.sleep(0.05)
            assert run["status"] == "completed", run
            events = (await client.get(f"/runs/{run_id}/events", params={"after": 0, "limit": 10000},
                                       headers={"accept": "application/json"})).json()["events"]
            began = parse_at(events[0]["at"])
            ended = parse_at(events[-1]["at"])
            per_step.append((ended - began) / steps)
    return {"cold": cold, "warm": statistics.median(warm), "per_step": statistics.median(per_step)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    node = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
    print(f"python {sys.version.split()[0]}, node {node}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}")
    if not (ROOT / "harness" / "node_modules").exists():
        sys.exit("harness/node_modules is missing: run `cd harness && npm install` (scripts/test does it)")
    tmp = Path(tempfile.mkdtemp(prefix="ff-bench-workerd-"))
    results: dict[str, dict[str, float]] = {}
    try:
        project = make_project(tmp)
        proc, url, ready = start([*flareflow_cmd(), "serve", "--local", "--port", "0", "--token", TOKEN],
                                 project, r"(http://127\.0\.0\.1:\d+)")
        try:
            results["local (embedded)"] = {"ready": ready, **asyncio.run(measure(url, args.steps, args.runs))}
        finally:
            stop(proc)
        # the user's path: `flareflow serve` (token in .dev.vars, D1 migrated by the real wrangler) with
        # only `wrangler dev` swapped for the workerd harness
        proc, url, ready = start([*flareflow_cmd(), "serve", "--port", "0", "-C", str(project)], project,
                                 r"listening on (http://127\.0\.0\.1:\d+)",
                                 env={"FLAREFLOW_WRANGLER": str(ROOT / "harness" / "bin" / "wrangler"),
                                      "WRANGLER_SEND_METRICS": "false"})
        try:
            results["workerd (harness)"] = {"ready": ready, **asyncio.run(measure(url, args.steps, args.runs))}
        finally:
            stop(proc)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"\n{args.steps}-step runs, {args.runs} per host (median)")
    print(f"  {'host':<20} {'ready':>9} {'cold POST':>10} {'warm POST':>10} {'per step':>10}")
    for host, r in results.items():
        print(f"  {host:<20} {r['ready']:>8.2f}s {r['cold'] * 1000:>8.1f}ms {r['warm'] * 1000:>8.1f}ms "
              f"{r['per_step'] * 1e6:>8.0f}µs")
    local, worker = results["local (embedded)"], results["workerd (harness)"]
    print(f"\n  workerd / local per step: {worker['per_step'] / local['per_step']:.1f}x "
          "(baseline for the next round; no target yet)")


if __name__ == "__main__":
    main()

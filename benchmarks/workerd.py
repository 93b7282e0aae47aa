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
import datetime as dt
import shutil
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    environment,
    load_average,
    median,
    print_env,
    start_server,
    stop_server,
    table,
    write_project,
)

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
    return {"cold": cold, "warm": median(warm), "per_step": median(per_step)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if not (ROOT / "harness" / "node_modules").exists():
        sys.exit("harness/node_modules is missing: run `cd harness && npm install` (scripts/test does it)")
    tmp = Path(tempfile.mkdtemp(prefix="ff-bench-workerd-"))
    print_env(environment(tmp))
    print(f"load before: {load_average()}")
    results: dict[str, dict[str, float]] = {}
    try:
        project = write_project(tmp / "bench", WORKFLOW, name="bench")
        for host, label, timeout in (("local", "local (embedded)", 30.0), ("workerd", "workerd (harness)", 240.0)):
            t0 = time.perf_counter()
            # workerd: the user's `flareflow serve` (token in .dev.vars, D1 migrated by the real
            # wrangler) with only `wrangler dev` swapped for the harness
            proc, url, log = start_server(project, TOKEN, host=host, timeout=timeout)
            ready = time.perf_counter() - t0
            try:
                results[label] = {"ready": ready, **asyncio.run(measure(url, args.steps, args.runs))}
            except Exception:
                print("\n".join(log[-40:]), file=sys.stderr)
                raise
            finally:
                stop_server(proc)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"\n{args.steps}-step runs, {args.runs} per host (median); load after: {load_average()}")
    rows = [[host, f"{r['ready']:.2f} s", f"{r['cold'] * 1000:.1f} ms", f"{r['warm'] * 1000:.1f} ms",
             f"{r['per_step'] * 1e6:.0f} µs"] for host, r in results.items()]
    print(table(["host", "ready", "cold POST", "warm POST", "per step"], rows,
                right=[False, True, True, True, True]))
    local, worker = results["local (embedded)"], results["workerd (harness)"]
    print(f"\n  workerd / local per step: {worker['per_step'] / local['per_step']:.1f}x "
          "(baseline for the next round; no target yet)")


if __name__ == "__main__":
    main()

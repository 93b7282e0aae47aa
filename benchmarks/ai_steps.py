"""What a ``run.ai`` call costs on the embedded runtime, beside a plain durable step.

Workload: sequential runs of a workflow of N calls (default 10) on ``LocalRuntime`` (sync="normal"),
the AI host of ``flareflow run`` (urllib in a thread, the state directory's KV files, the index's call
log) against the tests' loopback OpenAI-compatible stand-in (``tests/ai/standin.py``, answering at
once), so the figures are flareflow's own overhead plus one loopback HTTP round trip:

  (a) ``run.step`` of a no-op function (the floor: one durable step)
  (b) ``run.ai.generate(..., cache=False)``: a request each (step + HTTP + call log row)
  (c) ``run.ai.generate`` answered from the cache (step + KV file read + call log row, no request)

No timed asserts: it prints µs per call (median over runs, p90) and the requests the stand-in saw.

    python benchmarks/ai_steps.py [--runs 30] [--calls 10]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests.ai.standin
from _common import environment, load_average, median, percentile, print_env, table

from flareflow import Run
from flareflow.engine.registry import Registry
from flareflow.local import LocalRuntime
from flareflow.local.ai import local_ai_host
from tests.ai.standin import standin_server

REGISTRY = Registry()


def noop(i: int) -> int:
    return i


async def plain(run: Run, calls: int) -> int:
    for i in range(calls):
        await run.step("noop", noop, i)
    return calls


async def fresh(run: Run, calls: int) -> int:
    for i in range(calls):
        await run.ai.generate(f"fresh {run.id} {i}", cache=False)
    return calls


async def cached(run: Run, calls: int) -> int:
    for i in range(calls):
        await run.ai.generate(f"warm prompt {i}")
    return calls


for fn, name in ((plain, "plain"), (fresh, "fresh"), (cached, "cached")):
    REGISTRY.register(fn, name)


async def measure(state: Path, url: str, workflow: str, runs: int, calls: int) -> list[float]:
    per_call = []
    async with LocalRuntime(state / workflow, REGISTRY, step_threads=4) as rt:
        rt.ai = local_ai_host(state / workflow, {"base_url": url, "model": "bench"}, rt.index, rt.clock.now)
        if workflow == "cached":  # warm the cache: the measured runs never send a request
            warm = await rt.start_run(workflow, calls)
            await rt.until_finished(warm.run_id)
        for _ in range(runs):
            t0 = time.perf_counter()
            obj = await rt.start_run(workflow, calls)
            done = await rt.until_finished(obj.run_id)
            elapsed = time.perf_counter() - t0
            assert done.status == "completed", done.info
            per_call.append(elapsed / calls * 1e6)
    return per_call


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="ff-ai-bench-") as tmp, standin_server() as standin:
        print_env(environment(tmp))
        print(f"load average: {load_average()}")
        rows: list[list[Any]] = []
        for workflow, label in (("plain", "run.step (no-op)"), ("fresh", "run.ai.generate, a request"),
                                ("cached", "run.ai.generate, a cache hit")):
            before = standin.calls
            figures = await measure(Path(tmp), standin.url, workflow, args.runs, args.calls)
            rows.append([label, f"{median(figures):.0f}", f"{percentile(figures, 90):.0f}",
                         str(standin.calls - before)])
        print(table(["per call", "median µs", "p90 µs", "requests"], rows, right=[False, True, True, True]))
        print(f"({args.runs} runs x {args.calls} calls each; the cached workflow's one warm-up run sent "
              f"{args.calls} requests)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--calls", type=int, default=10)
    asyncio.run(main(parser.parse_args()))

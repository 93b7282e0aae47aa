"""What a domain call costs over a plain ``run.step``: hashing the call, the handle objects, the step context.

Workload: sequential runs (one after another) on one `LocalRuntime` (sync="normal", the default) of three
workflows of N no-op durable calls each (default 20):

  (a) step      ``await run.step(f"s{i}", noop, i)``
  (b) domain    ``await run.Bench({"i": i}).noop()``                (hashed key, JSON copies)
  (c) ctx       ``await run.Bench({"i": i}).noop_ctx()``            (the handler takes ``ctx``)
  (d) pipeline  ``await run.Bench({"i": i}).noop().noop().noop()``  (three handlers, one step)

They take turns in blocks of --block runs (order rotated each block) so a stall hits them alike; figures
are µs per durable call from the totals and the median of per-block figures. Also printed: the cost of
`call_hash` alone. No target: the figures say how close a domain call stays to a step.

    python benchmarks/domain_calls.py [--runs 100] [--steps 20] [--block 10] [--warmup 5]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import environment, median, print_env, table

from flareflow import Domain, Run, workflow
from flareflow.engine.domains import StepContext, call_hash
from flareflow.engine.registry import Registry
from flareflow.local import LocalRuntime


def noop(context: Any) -> None:
    return None


def noop_ctx(context: Any, *, ctx: StepContext) -> None:
    return None


Domain("Bench", noop=noop, noop_ctx=noop_ctx)
KINDS = ("step", "domain", "ctx", "pipeline")


def registry(steps: int) -> Registry:
    reg = Registry()

    @workflow("step", registry=reg)
    async def plain(run: Run) -> int:
        for i in range(steps):
            await run.step(f"s{i}", noop, i)
        return steps

    @workflow("domain", registry=reg)
    async def domain(run: Run) -> int:
        for i in range(steps):
            await run.Bench({"i": i}).noop()
        return steps

    @workflow("ctx", registry=reg)
    async def with_ctx(run: Run) -> int:
        for i in range(steps):
            await run.Bench({"i": i}).noop_ctx()
        return steps

    @workflow("pipeline", registry=reg)
    async def pipeline(run: Run) -> int:
        for i in range(steps):
            await run.Bench({"i": i}).noop().noop().noop()
        return steps

    return reg


async def timed(rt: LocalRuntime, name: str, count: int) -> float:
    start = time.perf_counter()
    for _ in range(count):
        obj = await rt.start_run(name)
        done = await rt.until_finished(obj.run_id)
        assert done.status == "completed", done.info
    return time.perf_counter() - start


async def main(args: argparse.Namespace) -> None:
    root = Path(tempfile.mkdtemp(prefix="ff-domains-"))
    print_env(environment(root))
    rt = LocalRuntime(root / "state", registry(args.steps))
    rt.start()
    try:
        for name in KINDS:
            await timed(rt, name, args.warmup)
        totals = dict.fromkeys(KINDS, 0.0)
        blocks: dict[str, list[float]] = {k: [] for k in KINDS}
        done = 0
        turn = 0
        while done < args.runs:
            count = min(args.block, args.runs - done)
            order = KINDS[turn % len(KINDS):] + KINDS[:turn % len(KINDS)]
            for name in order:
                seconds = await timed(rt, name, count)
                totals[name] += seconds
                blocks[name].append(seconds / (count * args.steps) * 1e6)
            done += count
            turn += 1
    finally:
        await rt.close()
        shutil.rmtree(root, ignore_errors=True)
    calls = args.runs * args.steps
    base = totals["step"] / calls * 1e6
    rows = []
    for name in KINDS:
        per = totals[name] / calls * 1e6
        rows.append([name, f"{per:.1f}", f"{median(blocks[name]):.1f}", f"{per - base:+.1f}"])
    print(f"{args.runs} runs x {args.steps} calls per workflow (sync=normal)")
    print(table(["workflow", "µs/call (total)", "µs/call (block median)", "vs step"], rows))
    context, calls_args = {"sku": "ABC", "n": 1}, [{"args": [], "kwargs": {"quantity": 2}}]
    n = 20_000
    start = time.perf_counter()
    for _ in range(n):
        call_hash("Inventory.reserve", context, calls_args)
    print(f"\ncall_hash alone: {(time.perf_counter() - start) / n * 1e6:.2f} µs")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--block", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=5)
    asyncio.run(main(parser.parse_args()))

"""Task graphs: what a declarative task costs over the same work written as a Python workflow, and how
long validating a large definition takes.

Workload, on the embedded runtime (LocalRuntime, sync="normal", one process, sequential runs):

  (a) python chain   -- a Python workflow awaiting N no-op ``run.step`` calls one after another
  (b) graph chain    -- a graph of N ``python`` tasks, each depending on the one before
  (c) graph fan-out  -- a graph of N independent ``python`` tasks (all in one ``run.parallel``)
  (d) validate       -- `validate_graph` + `register_graph` of a 500-task chain with expressions

Figures are wall time per task (µs, median over the runs) and per validation (ms). No targets: the
numbers say what the scheduling layer (one branch per task, dependency futures, expression scopes)
adds per task.

    python benchmarks/graphs.py [--runs 30] [--tasks 50] [--dir PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import environment, print_env, table

from flareflow import Run
from flareflow.engine.registry import Registry
from flareflow.graphs.compiler import register_graph
from flareflow.graphs.model import Graph
from flareflow.graphs.validate import validate_graph
from flareflow.local import LocalRuntime


def noop(i: int = 0) -> int:
    return i


def chain_graph(name: str, n: int) -> Graph:
    tasks: list[dict[str, Any]] = []
    for i in range(n):
        task: dict[str, Any] = {"id": f"t{i}", "type": "python", "function": "__main__:noop", "inputs": {"i": i}}
        if i:
            task["depends_on"] = [f"t{i - 1}"]
            task["when"] = f"${{tasks.t{i - 1}.status}} == 'completed'"
        tasks.append(task)
    return Graph({"name": name, "tasks": tasks}, f"{name}.json")


def fan_graph(name: str, n: int) -> Graph:
    tasks = [{"id": f"t{i}", "type": "python", "function": "__main__:noop", "inputs": {"i": i}} for i in range(n)]
    return Graph({"name": name, "tasks": tasks}, f"{name}.json")


async def measure(root: Path, runs: int, n: int) -> dict[str, list[float]]:
    registry = Registry()

    async def chain(run: Run) -> int:
        total = 0
        for i in range(n):
            total += await run.step(f"t{i}", noop, i)
        return total

    registry.register(chain, "python-chain")
    register_graph(registry, chain_graph("graph-chain", n))
    register_graph(registry, fan_graph("graph-fan", n))
    per_task: dict[str, list[float]] = {"python-chain": [], "graph-chain": [], "graph-fan": []}
    async with LocalRuntime(root, registry) as rt:
        for index in range(runs + 2):
            for name in per_task:
                started = time.perf_counter()
                obj = await rt.start_run(name, None)
                done = await rt.until_finished(obj.run_id)
                assert done.status == "completed", (name, done.status)
                if index >= 2:  # two warm-up rounds
                    per_task[name].append((time.perf_counter() - started) / n * 1e6)
    return per_task


def validation_ms(repeats: int = 5) -> float:
    graph = chain_graph("big", 500)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        assert validate_graph(graph) == []
        register_graph(Registry(), graph)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--tasks", type=int, default=50)
    parser.add_argument("--dir", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        print_env(environment(Path(tmp)))
        figures = asyncio.run(measure(Path(tmp), args.runs, args.tasks))
    base = statistics.median(figures["python-chain"])
    rows = [(name, f"{statistics.median(v):.0f}", f"{statistics.median(v) / base:.2f}x") for name, v in figures.items()]
    print(f"\n{args.runs} runs of {args.tasks} tasks each (median µs per task)")
    print(table(("workload", "µs/task", "vs python"), rows))
    print(f"\nvalidate + register a 500-task chain: {validation_ms():.1f} ms (median of 5)")


if __name__ == "__main__":
    main()

"""Time to rebuild a long run from SQL after eviction: open, load, replay 1,000 steps, re-suspend.

Setup: one run of a workflow that completes N no-op steps (default 1,000) and then waits for an
event, so it suspends with N completed steps in its history.

Measured, --repeat times (after --warmup untimed cycles):

    rt.evict(run_id)                      # drop the object and its sqlite connection
    t0; obj = rt.get(run_id)              # open the run's database, check schema, load the run row
    await rt.activate(run_id); t1         # load the step history, replay all N steps, re-suspend

Breakdown of each cycle (instrumented on the live objects):
    open     SqliteSql(...): sqlite3.connect + journal_mode=WAL + synchronous pragma
    load     the rest of rt.get: migration check, run row, MAX(seq)
    history  RunStore.history(): SELECT of every step row + JSON decoding into StepRecords
    replay   the rest of the activation: the workflow re-executed from the top against the history
             (N replayed steps), the event-wait check, status writes running -> waiting

Target: median total < 20 ms.

    python benchmarks/resume.py [--steps 1000] [--repeat 20] [--sync normal|full] [--profile]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import io
import pstats
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import environment, load_average, median, percentile, print_env, table

from flareflow import Run, workflow
from flareflow.engine.registry import Registry
from flareflow.local import LocalRuntime
from flareflow.local.objects import OpenRuns

TARGET_MS = 20.0
CALLS = {"noop": 0}


def noop() -> None:
    CALLS["noop"] += 1


def timed(fn: Callable[..., Any], sink: list[float]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            sink.append(time.perf_counter() - start)

    return wrapper


async def bench(args: argparse.Namespace, state: Path) -> tuple[list[dict[str, float]], str | None, dict[str, Any]]:
    reg = Registry()
    steps = args.steps

    @workflow("resume_bench", registry=reg)
    async def resume_bench(run: Run) -> Any:
        for i in range(steps):
            await run.step(f"s{i}", noop)
        return await run.wait_for_event("go")

    async with LocalRuntime(state, reg, sync=args.sync) as rt:
        build_start = time.perf_counter()
        obj = await rt.start_run("resume_bench", activate=False)
        run_id = obj.run_id
        await rt.activate(run_id)
        build_s = time.perf_counter() - build_start
        obj = rt.get(run_id)
        assert obj.status == "waiting", obj.info
        described = obj.describe()
        assert sum(1 for s in described["steps"] if s["status"] == "completed") == steps
        last_seq = described["last_seq"]
        calls_after_build = CALLS["noop"]
        db_bytes = sum(p.stat().st_size for p in rt.runs_dir.glob(f"{run_id}.db*"))
        info = {"run_id": run_id, "build_s": build_s, "last_seq": last_seq, "db_bytes": db_bytes}

        profiler = cProfile.Profile() if args.profile else None
        samples: list[dict[str, float]] = []
        for i in range(args.warmup + args.repeat):
            rt.evict(run_id)
            opens: list[float] = []
            histories: list[float] = []
            rt.open_runs.connect = timed(OpenRuns.connect.__get__(rt.open_runs), opens)  # type: ignore[method-assign]
            gc.collect()
            measured = i >= args.warmup
            if profiler is not None and measured:
                profiler.enable()
            t0 = time.perf_counter()
            obj = rt.get(run_id)
            t1 = time.perf_counter()
            obj.store.history = timed(obj.store.history, histories)  # type: ignore[method-assign]
            await rt.activate(run_id)
            t2 = time.perf_counter()
            if profiler is not None and measured:
                profiler.disable()
            del rt.open_runs.connect
            assert obj.status == "waiting", obj.info
            if measured:
                samples.append({
                    "total": t2 - t0,
                    "get": t1 - t0,
                    "open": sum(opens),
                    "load": (t1 - t0) - sum(opens),
                    "history": sum(histories),
                    "activate": t2 - t1,
                    "replay": (t2 - t1) - sum(histories),
                })
        # Replay must not have re-run any step nor written any event.
        assert CALLS["noop"] == calls_after_build, "replay re-executed steps"
        assert rt.get(run_id).describe()["last_seq"] == last_seq, "replay wrote events"
        await rt.send_event(run_id, "go", {"ok": True})  # the run still finishes normally
        done = await asyncio.wait_for(rt.until_finished(run_id), 30)
        assert done.status == "completed" and done.info["output"] == {"ok": True}, done.info

    report = None
    if profiler is not None:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(args.profile_lines)
        report = out.getvalue()
    return samples, report, info


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=1000, help="completed steps in the run (default 1000)")
    parser.add_argument("--repeat", type=int, default=20, help="timed evict+rebuild cycles (default 20)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed cycles first (default 2)")
    parser.add_argument("--sync", choices=("normal", "full"), default="normal",
                        help='LocalRuntime sync mode (default "normal", the runtime default)')
    parser.add_argument("--profile", action="store_true", help="cProfile the timed cycles and print the top")
    parser.add_argument("--profile-lines", type=int, default=25)
    parser.add_argument("--dir", default=None, help="parent directory for temp state (default: system temp)")
    args = parser.parse_args()
    if args.steps < 1 or args.repeat < 1 or args.warmup < 0:
        parser.error("sizes must be positive")

    root = Path(tempfile.mkdtemp(prefix="flareflow-resume-", dir=args.dir))
    try:
        env = environment(root)
        env.append(("load average", f"{load_average()} (1/5/15 min, before start; other work skews figures)"))
        print_env(env)
        samples, report, info = asyncio.run(bench(args, root))
    finally:
        shutil.rmtree(root, ignore_errors=True)

    print(f"Run: {args.steps} completed steps + 1 open event wait; {info['last_seq']} events; "
          f"run database {info['db_bytes'] / 1024:.0f} KiB; built in {info['build_s']:.2f} s "
          f'(sync="{args.sync}")')
    print(f"Timed: {args.repeat} cycles of evict -> get -> activate (after {args.warmup} untimed)"
          + ("  [under cProfile: times inflated]" if args.profile else ""))
    print()
    parts = [
        ("total (get + activate)", "total"),
        ("  get: open (connect + WAL + pragma)", "open"),
        ("  get: load (schema check, run row, max seq)", "load"),
        ("  activate: history (SELECT + decode steps)", "history"),
        ("  activate: replay (re-execute + re-suspend)", "replay"),
    ]
    rows = []
    for label, key in parts:
        vals = [s[key] * 1000 for s in samples]
        rows.append([label, f"{min(vals):.2f}", f"{median(vals):.2f}", f"{percentile(vals, 95):.2f}",
                     f"{max(vals):.2f}"])
    print(table(["phase", "min ms", "median ms", "p95 ms", "max ms"], rows))
    med = median([s["total"] * 1000 for s in samples])
    per_step = med * 1000 / args.steps
    print(f"\n  => {per_step:.1f} µs per replayed step (median total / steps)")
    print()
    verdict = "PASS" if med < TARGET_MS else "FAIL"
    print("Target (on the median)")
    print(table(["measure", "measured", "target", "verdict"],
                [["rebuild + replay of the run", f"{med:.2f} ms", f"< {TARGET_MS:g} ms", verdict]]))
    if report:
        print("\ncProfile of the timed cycles (by own time)")
        print(report)
    print(f"\nload average (1/5/15 min) at the end: {load_average()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""How long a `flareflow.testing` test takes: a workflow that sleeps 7 days (and retries a mocked
error with an hour of backoff, waits for an event and asks a question) vs a plain two-step workflow.

Each measured test is what a user's test does: ``create_test_workflow(...)``, set-up, ``run_sync(...)``
-- a fresh `LocalRuntime` on real SQLite in a new temporary directory, driven to the run's end with
the clock skipped, and the directory removed. No timed asserts: this prints figures.

    python benchmarks/testing_kit.py [--repeat 50]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import environment, load_average, median, percentile, print_env, table

from flareflow import Registry, Retry, Run, StepFailed, workflow
from flareflow.testing import TestWorkflow, create_test_workflow

REGISTRY = Registry()


def add(a: int, b: int) -> int:
    return a + b


@workflow("plain", registry=REGISTRY)
async def plain(run: Run) -> int:
    one = await run.step("one", add, 1, 0)
    return int(await run.step("two", add, one, 1))


@workflow("week", registry=REGISTRY)
async def week(run: Run) -> dict[str, Any]:
    first = await run.step("one", add, 1, 0)
    await run.sleep("a week", "7 days")
    approval = await run.wait_for_event("approval", timeout="1 day")
    ok = await run.ask("Go on?", schema={"type": "boolean"})
    try:
        flaky = await run.step("flaky", add, 1, 1, retry=Retry(limit=3, delay="1 hour"))
    except StepFailed:  # the test's mocked error fails it after three attempts
        flaky = "failed"
    return {"first": first, "by": approval["by"], "ok": ok, "flaky": flaky}


def plain_test() -> TestWorkflow:
    wf = create_test_workflow("plain", registry=REGISTRY)
    assert wf.run_sync() == 2
    return wf


def week_test() -> TestWorkflow:
    wf = create_test_workflow("week", registry=REGISTRY).disable_sleeps()
    wf.mock_step_error("flaky", RuntimeError("down"))
    wf.send_event("approval", {"by": "bench"}).answer(True)
    assert wf.run_sync() == {"first": 1, "by": "bench", "ok": True, "flaky": "failed"}
    assert wf.now - wf.start_time >= 7 * 86400 + 2 * 3600
    return wf


def measure(test: Callable[[], TestWorkflow], repeat: int) -> list[float]:
    test()  # warm-up: imports, first sqlite files
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        test()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=50)
    args = parser.parse_args()
    print_env(environment(tempfile.gettempdir()))
    print(f"load average before: {load_average()}")
    rows = []
    for label, test in (("plain: 2 steps", plain_test),
                        ("a week: sleep 7 d, event, answer, 3 attempts 1 h apart", week_test)):
        times = measure(test, args.repeat)
        events = len(test().events)
        rows.append((label, events, f"{median(times):.1f}", f"{percentile(times, 95):.1f}", f"{max(times):.1f}"))
    print(table(("test", "events", "median ms", "p95 ms", "max ms"), rows, right=[False, True, True, True, True]))


if __name__ == "__main__":
    main()

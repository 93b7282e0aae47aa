"""Step output on the embedded runtime (issue #11 item 4): print and logging captured per attempt.

Tried: print and logging captured per attempt into events and the stored step, never onto the
process's stdout (sync in a step thread and inline); output of the workflow body passing through;
two parallel steps (threads and the loop) interleaving their output without mixing; partial lines,
the size cap and its note, lone surrogates; a logged exception keeping its traceback text.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
from typing import Any

import pytest

from flareflow import Retry, Run, workflow
from flareflow.engine.capture import MAX_OUTPUT
from flareflow.local import LocalRuntime

from .helpers import advance, finished, of_type, wait_until

log = logging.getLogger("tests.step_output")


class Noisy:
    """Prints and logs a line per call, naming the attempt; fails the first ``failures`` calls."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        print(f"attempt {self.calls} says hi")
        print("to stderr", file=sys.stderr)
        log.warning("attempt %d warns", self.calls)
        if self.calls <= self.failures:
            raise RuntimeError(f"attempt {self.calls} failed")
        return "ok"


def _texts(logs: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(entry["stream"], entry["text"]) for entry in logs]


@pytest.mark.parametrize("threads", [8, 0], ids=["threads", "inline"])
def test_print_and_logging_are_captured_per_attempt_and_never_reach_stdout(runtime, threads, capsys):
    noisy = Noisy(failures=1)

    @workflow("wf", registry=runtime.registry)
    async def wf(run: Run) -> Any:
        print("the workflow body prints outside any step")
        return await run.step("noisy", noisy, retry=Retry(limit=2, delay="1s"))

    async def main(rt: LocalRuntime) -> None:
        run_id = (await rt.start_run("wf")).run_id
        await wait_until(lambda: bool(of_type(rt.get(run_id), "step.retrying")), "the first failure")
        await advance(rt, runtime.clock, 1)
        done = await finished(rt, run_id)
        assert done.status == "completed"
        first = of_type(done, "step.retrying")[0]["logs"]
        second = of_type(done, "step.completed")[0]["logs"]
        assert _texts(first) == [("stdout", "attempt 1 says hi"), ("stderr", "to stderr"),
                                 ("log", "attempt 1 warns")]
        assert _texts(second) == [("stdout", "attempt 2 says hi"), ("stderr", "to stderr"),
                                  ("log", "attempt 2 warns")]
        assert second[2]["level"] == "WARNING" and second[2]["logger"] == "tests.step_output"
        assert all(entry["at"].endswith("Z") for entry in first + second)
        stored = done.describe()["steps"][0]["logs"]
        assert [(e["attempt"], e["text"]) for e in stored] == [(1, e["text"]) for e in first] + [
            (2, e["text"]) for e in second]
        assert of_type(done, "step.started")[0].get("logs") is None  # only the attempt's end carries them

    runtime.run(main, step_threads=threads)
    out, err = capsys.readouterr()
    assert "says hi" not in out and "to stderr" not in err
    assert "warns" not in err  # Python's lastResort stays quiet about captured records
    assert out.count("the workflow body prints outside any step") == 2  # not a step: passes through


def test_two_parallel_steps_do_not_mix_their_output(runtime):
    """Sync steps in two step threads and async steps on the loop, each interleaving with the other."""
    gate = threading.Barrier(2, timeout=5)

    def sync_talker(name: str) -> str:
        for i in range(5):
            print(f"{name} {i}")
            gate.wait()  # both threads print between the same two barriers
        return name

    async def async_talker(name: str) -> str:
        for i in range(5):
            logging.getLogger(name).error("%s %d", name, i)
            await asyncio.sleep(0)
        return name

    @workflow("wf", registry=runtime.registry)
    async def wf(run: Run) -> Any:
        return await run.parallel(run.step("a", sync_talker, "left"), run.step("b", sync_talker, "right"),
                                  run.step("c", async_talker, "up"), run.step("d", async_talker, "down"))

    async def main(rt: LocalRuntime) -> None:
        done = await finished(rt, (await rt.start_run("wf")).run_id)
        assert done.status == "completed", done.info
        by_step = {e["name"]: [entry["text"] for entry in e["logs"]] for e in of_type(done, "step.completed")}
        assert by_step == {name: [f"{word} {i}" for i in range(5)]
                           for name, word in (("a", "left"), ("b", "right"), ("c", "up"), ("d", "down"))}

    runtime.run(main)


def test_partial_lines_cap_and_invalid_text(runtime):
    def chatty() -> None:
        print("no newline yet", end="")
        print(" -- now", end="\n")
        print("bad \udcff byte")
        print("tail without newline", end="")

    def flood() -> None:
        for i in range(4000):
            print(f"line {i:05d} " + "x" * 20)

    @workflow("wf", registry=runtime.registry)
    async def wf(run: Run) -> Any:
        await run.step("chatty", chatty)
        await run.step("flood", flood)

    async def main(rt: LocalRuntime) -> None:
        done = await finished(rt, (await rt.start_run("wf")).run_id)
        chatty_logs, flood_logs = (e["logs"] for e in of_type(done, "step.completed"))
        assert [e["text"] for e in chatty_logs] == ["no newline yet -- now", "bad \ufffd byte",
                                                    "tail without newline"]
        kept = flood_logs[:-1]
        assert sum(len(e["text"].encode()) for e in kept) == MAX_OUTPUT
        assert kept[0]["text"].startswith("line 00000")
        note = flood_logs[-1]
        assert (note["stream"], note["level"], note["logger"]) == ("log", "WARNING", "flareflow")
        assert note["text"].startswith(f"output cut at {MAX_OUTPUT:,} bytes")
        assert done.describe()["steps"][1]["logs"][-1]["text"] == note["text"]  # stored (as a blob: > 10 KiB)

    runtime.run(main)


def test_a_logged_exception_keeps_its_traceback_text(runtime):
    def handled() -> None:
        try:
            {}["missing"]
        except KeyError:
            log.exception("lookup failed")

    @workflow("wf", registry=runtime.registry)
    async def wf(run: Run) -> Any:
        await run.step("handled", handled)

    async def main(rt: LocalRuntime) -> None:
        done = await finished(rt, (await rt.start_run("wf")).run_id)
        (entry,) = of_type(done, "step.completed")[0]["logs"]
        assert entry["level"] == "ERROR"
        assert entry["text"].startswith("lookup failed\nTraceback (most recent call last):")
        assert "KeyError: 'missing'" in entry["text"]

    runtime.run(main)

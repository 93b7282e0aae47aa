"""`flareflow.engine.replay`: a recorded history checked against code, nothing executed."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from flareflow import Run, workflow
from flareflow.engine.registry import Registry
from flareflow.engine.replay import check_replay, describe_problem, records_from_steps

#: A run's steps as GET /runs/{id} shows them: reserve completed, then napping (an hour left).
STEPS = [
    {"step": "reserve#1", "pos": "0", "kind": "step", "name": "reserve", "status": "completed", "attempts": 1,
     "result": "reserved", "error": None, "wake_at": None, "started_at": "2026-12-01T10:00:00.000Z"},
    {"step": "nap#1", "pos": "1", "kind": "sleep", "name": "nap", "status": "waiting", "attempts": 0,
     "result": None, "error": None, "wake_at": "2999-01-01T00:00:00.000Z", "started_at": "2026-12-01T10:00:00.100Z"},
]
RUN = {"id": "0123abcd", "workflow": "order", "input": None, "state": {}}


def registry(body: str) -> tuple[Registry, list[str]]:
    """``order`` with ``body`` ("same", "diverges", "shorter"); and the calls its steps made."""
    reg, calls = Registry(), []

    def act(name: str) -> str:
        calls.append(name)
        return name

    @workflow("order", registry=reg)
    async def order(run: Run) -> Any:
        if body == "diverges":
            await run.step("bill", act, "bill")
        await run.step("reserve", act, "reserve")
        if body == "shorter":
            return "done"
        await run.sleep("nap", "1 hour")
        return await run.step("ship", act, "ship")

    return reg, calls


def check(body: str) -> tuple[dict[str, Any] | None, list[str]]:
    reg, calls = registry(body)
    return asyncio.run(check_replay(reg, RUN, records_from_steps(STEPS))), calls


def test_matching_code_replays_and_nothing_runs():
    assert check("same") == (None, [])


def test_a_divergence_names_the_position_the_recorded_call_and_the_new_one():
    problem, calls = check("diverges")
    assert calls == [], "the replay check ran a step"
    assert problem is not None and problem["problem"] == "diverges"
    assert describe_problem(problem) == ("diverges at step 'reserve#1' (position 0): recorded step 'reserve', "
                                         "the code now calls step 'bill' (key 'bill#1')")


def test_a_recorded_call_the_code_no_longer_reaches():
    problem, _ = check("shorter")
    assert problem is not None
    assert describe_problem(problem) == "diverges at step 'nap#1' (position 1): recorded sleep 'nap', " \
                                        "the code no longer reaches it"


def test_a_missing_workflow_and_a_history_without_positions():
    problem = asyncio.run(check_replay(Registry(), RUN, records_from_steps(STEPS)))
    assert problem is not None and problem["problem"] == "missing"
    assert describe_problem(problem).startswith("unknown workflow 'order'")
    with pytest.raises(ValueError, match="lacks 'pos'"):
        records_from_steps([{k: v for k, v in STEPS[0].items() if k != "pos"}])

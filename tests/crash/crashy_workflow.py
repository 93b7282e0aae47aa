"""The crash-test workflow, copied verbatim into a throwaway project as ``workflows/crashy.py``.

Every step appends ``"<step-name> <pid>\\n"`` to the side-effect file named by ``$CRASHY_EFFECTS``
(plus ``.<lane>`` when the input names a lane), fsyncs it, then sleeps 80-150 ms so that a SIGKILL
sent by the test lands while the run is busy. Step results are pure functions of their arguments, so
the run's output does not depend on how often (or by which process) it was interrupted.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from flareflow import Run, workflow

BEFORE = [f"s{i:02d}" for i in range(1, 7)]
AFTER = [f"s{i:02d}" for i in range(7, 13)]
PAIR = ["pa", "pb"]


def _effects_path(lane: str | None) -> str:
    base = os.environ["CRASHY_EFFECTS"]
    return f"{base}.{lane}" if lane else base


async def effect(name: str, value: int, lane: str | None = None) -> int:
    """The side effect outside the database, then a pause long enough to be killed in."""
    fd = os.open(_effects_path(lane), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{name} {os.getpid()}\n".encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    index = int(name[1:]) if name[1:].isdigit() else ord(name[-1])
    await asyncio.sleep((80 + (index * 37) % 71) / 1000)
    return (value * 31 + index) % 1_000_003


@workflow("crashy")
async def crashy(run: Run, inp: dict[str, Any] | None = None) -> dict[str, Any]:
    lane = (inp or {}).get("lane")
    chain = 7
    for name in BEFORE:
        chain = await run.step(name, effect, name, chain, lane)
        run.state["done"] = run.state.get("done", 0) + 1
    left, right = await run.parallel(*(run.step(name, effect, name, chain, lane) for name in PAIR))
    run.state["done"] += 2
    await run.sleep("nap", "300ms")
    chain = (chain + left + right) % 1_000_003
    for name in AFTER:
        chain = await run.step(name, effect, name, chain, lane)
        run.state["done"] += 1
    return {"chain": chain, "pair": [left, right], "steps": [*BEFORE, *PAIR, *AFTER]}

"""Small async helpers shared by the runtime spec tests (no pytest-asyncio: tests call `arun`).

Time is a `ManualClock`; nothing here sleeps for real beyond a few loop turns (and a millisecond
now and then while a sync step hands its result back from its thread), so a test that waits on a
condition that never comes fails fast with a readable message instead of hanging.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

from flareflow.durable_objects.coordinator import RunCoordinator
from flareflow.local import LocalRuntime, ManualClock

#: Hard ceiling (real seconds) for any single test body.
TEST_TIMEOUT = 10.0


def arun(coro: Coroutine[Any, Any, Any], timeout: float = TEST_TIMEOUT) -> Any:
    """Run one test body on a fresh event loop, bounded in real time."""
    return asyncio.run(asyncio.wait_for(coro, timeout))


async def turns(n: int = 20) -> None:
    """Let the loop run ``n`` times (activations, alarms and listeners make progress)."""
    for _ in range(n):
        await asyncio.sleep(0)


async def wait_until(predicate: Callable[[], bool], what: str = "condition", timeout: float = 3.0) -> None:
    """Spin the loop until ``predicate()`` holds; fail with ``what`` after ``timeout`` real seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0)


async def idle(rt: LocalRuntime, timeout: float = 5.0) -> None:
    """Wait until no activation of ``rt`` is in flight (and none is about to be scheduled)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        await turns(10)
        if not rt._tasks:
            await turns(10)
            if not rt._tasks:
                return
        if loop.time() > deadline:
            raise AssertionError("runtime never became idle")
        await asyncio.sleep(0.001)  # real time: a sync step may still be running in a step thread


async def advance(rt: LocalRuntime, clock: ManualClock, seconds: float) -> None:
    """Move the manual clock and let every alarm that came due run to quiescence."""
    clock.advance(seconds)
    await idle(rt)


async def finished(rt: LocalRuntime, run_id: str, timeout: float = 5.0) -> RunCoordinator:
    return await asyncio.wait_for(rt.until_finished(run_id), timeout)


def types(obj: RunCoordinator) -> list[str]:
    return [e["type"] for e in obj.events()]


def of_type(obj: RunCoordinator, type_: str) -> list[dict[str, Any]]:
    return [e for e in obj.events() if e["type"] == type_]


def has_event(rt: LocalRuntime, run_id: str, type_: str, **fields: Any) -> Callable[[], bool]:
    """A predicate: the run's log holds an event of ``type_`` whose fields match ``fields``."""

    def check() -> bool:
        return any(
            e["type"] == type_ and all(e.get(k) == v for k, v in fields.items())
            for e in rt.get(run_id).events()
        )

    return check

"""Small async helpers shared by the runtime spec tests, and `ManualRuntime` (the ``runtime`` fixture).

No pytest-asyncio: a test hands its async body to ``runtime.run`` (conftest.py), which runs it on a
fresh event loop with a started `LocalRuntime`. Time is a `ManualClock`; nothing here sleeps for real
beyond a few loop turns (and a millisecond now and then while a sync step hands its result back from
its thread), so a test that waits on a condition that never comes fails fast with a readable message
instead of hanging.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

from flareflow.durable_objects.coordinator import RunCoordinator
from flareflow.engine.registry import Registry
from flareflow.local import LocalRuntime, ManualClock

#: Hard ceiling (real seconds) for any single test body.
TEST_TIMEOUT = 10.0


def arun(coro: Coroutine[Any, Any, Any], timeout: float = TEST_TIMEOUT) -> Any:
    """Run one test body on a fresh event loop, bounded in real time."""
    return asyncio.run(asyncio.wait_for(coro, timeout))


class ManualRuntime:
    """A `LocalRuntime` on a `ManualClock` for one test; the ``runtime`` fixture is one on ``tmp_path``.

    ``run(main, **options)`` opens a runtime on ``state_dir`` with ``registry`` and ``clock`` (``options``
    are LocalRuntime's keywords: ``max_open=``, ``evict_after_step=``, ``step_threads=``, ...), awaits
    ``main(rt)`` on a fresh event loop bounded in real time (`arun`), closes the runtime and returns
    what ``main`` returned. Each ``run`` is a process of its own: what is stored stays, nothing in
    memory does. Inside ``main``, ``rt2 = await runtime.restart()`` is a process restart: the runtime is
    closed and a new one opened on the same directory, for the test to ``recover()``.

    ``registry`` starts empty (decorate workflows onto it, or assign one a helper built) and ``clock``
    at ManualClock's default time (assign another to start elsewhere); set them before ``run``.
    """

    def __init__(self, state_dir: Path | str, registry: Registry | None = None,
                 clock: ManualClock | None = None) -> None:
        self.state_dir = Path(state_dir)
        self.registry = registry if registry is not None else Registry()
        self.clock = clock if clock is not None else ManualClock()
        self._options: dict[str, Any] = {}
        self._rt: LocalRuntime | None = None

    def run(self, main: Callable[[LocalRuntime], Awaitable[Any]], **options: Any) -> Any:
        """Await ``main(rt)`` with a started runtime (``options`` kept for its restarts), then close it."""

        async def session() -> Any:
            self._options = options
            try:
                return await main(self._open())
            finally:
                await self._close()

        return arun(session())

    async def restart(self, *, advance: float = 0, clock: ManualClock | None = None,
                      registry: Registry | None = None, **options: Any) -> LocalRuntime:
        """Close the runtime (the process goes down); then, while nothing runs, move the clock on by
        ``advance`` seconds, or replace it, the registry (new code) or some options; open a new one."""
        await self._close()
        if clock is not None:
            self.clock = clock
        if advance:
            self.clock.advance(advance)
        if registry is not None:
            self.registry = registry
        self._options = {**self._options, **options}
        return self._open()

    def _open(self) -> LocalRuntime:
        self._rt = LocalRuntime(self.state_dir, self.registry, clock=self.clock, **self._options)
        self._rt.start()  # as `async with` does; `_close` is its exit
        return self._rt

    async def _close(self) -> None:
        if self._rt is not None:
            rt, self._rt = self._rt, None
            await rt.close()


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

"""Step threads: where the embedded runtime runs sync step functions, off its event loop.

A sync step that blocks (``time.sleep``, a blocking HTTP call, CPU work) must not stop the server:
health checks, streams and every other run go on while it runs. `StepThreads.run` is the engine's
``offload`` port (`flareflow.engine.history.Offload`); the Durable Object host has none (Pyodide
cannot start threads) and runs sync steps inline.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

#: Sync step functions that may run at once, by default (``[tool.flareflow.local] step_threads``).
DEFAULT_STEP_THREADS = 8


class _Job:
    """One call: runs in a step thread, hands its outcome to the loop (unless it was abandoned)."""

    __slots__ = ("context", "fn", "future", "loop")

    def __init__(self, fn: Callable[[], Any], loop: asyncio.AbstractEventLoop,
                 future: asyncio.Future[tuple[bool, Any]]) -> None:
        self.context = contextvars.copy_context()
        self.fn = fn
        self.loop = loop
        self.future = future

    def run(self) -> tuple[bool, Any]:
        try:
            return True, self.context.run(self.fn)
        except BaseException as exc:  # SystemExit too: in a step thread it is the step's failure
            return False, exc

    def post(self, outcome: tuple[bool, Any]) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits for this outcome
            self.loop.call_soon_threadsafe(_settle, self.future, outcome)


def _settle(future: asyncio.Future[tuple[bool, Any]], outcome: tuple[bool, Any]) -> None:
    if not future.done():  # done: the call was abandoned (timeout, cancel, shutdown); drop the late outcome
        future.set_result(outcome)


class StepThreads:
    """At most ``size`` sync step functions at once, each in a daemon thread (kept for reuse while idle).

    Cancelling `run` -- a step timeout, a cancelled run, the runtime closing -- *abandons* the call:
    its slot is free at once; its thread runs on until the function returns (Python cannot stop a
    thread) and its result is dropped. The threads are daemons, so an abandoned one never keeps the
    process from exiting.
    """

    def __init__(self, size: int = DEFAULT_STEP_THREADS) -> None:
        if size < 1:
            raise ValueError(f"step threads must be at least 1, got {size}")
        self.size = size
        self._slots: asyncio.Semaphore | None = None  # made on the loop, at first use
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._idle = 0
        self._threads = 0
        self._closed = False

    @property
    def threads(self) -> int:
        """Threads alive now: running a call (abandoned ones included) or idle."""
        return self._threads

    async def run(self, fn: Callable[[], T]) -> T:
        """``fn()`` in a step thread, once a slot is free; its result, or what it raised."""
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.size)
        async with self._slots:
            loop = asyncio.get_running_loop()
            future: asyncio.Future[tuple[bool, Any]] = loop.create_future()
            self._submit(_Job(fn, loop, future))
            ok, value = await future
        if ok:
            result: T = value
            return result
        raise value

    def _submit(self, job: _Job) -> None:
        with self._lock:
            if self._closed:
                raise RuntimeError("the runtime's step threads are closed")
            spawn = self._idle == 0
            if spawn:
                self._threads += 1
            else:
                self._idle -= 1  # that idle thread takes this job (any job: they are alike)
        self._jobs.put(job)
        if spawn:
            threading.Thread(target=self._work, name="flareflow-step", daemon=True).start()

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            outcome = job.run()
            with self._lock:
                leave = self._closed or self._idle >= self.size
                if leave:
                    self._threads -= 1
                else:
                    self._idle += 1
            # the hand-over comes last, so the loop thread that wakes for it finds the GIL free at once
            job.post(outcome)
            del job, outcome
            if leave:
                return

    def close(self) -> None:
        """Let idle threads end; busy ones end when their call returns. Nothing is waited for."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, 0
            self._threads -= idle
        for _ in range(idle):
            self._jobs.put(None)

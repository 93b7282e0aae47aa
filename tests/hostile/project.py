"""A project of hostile workflow code, served by the tests of this folder (written into a temp dir).

* ``exits``     -- one step raising ``input["raise"]`` (``SystemExit``, ``KeyboardInterrupt``,
  ``GeneratorExit``, ``Custom`` -- a direct `BaseException` subclass -- or ``CancelledError``),
  retried ``Retry(limit=3, delay="0.2s", backoff="constant")``; input ``{"raise": NAME, "limit": N, "delay": SECONDS}``.
* ``body_exit`` -- a step, then the workflow body itself raises ``SystemExit(4)``.
* ``blocking``  -- a sync step ``time.sleep(input["seconds"])`` with ``timeout="1s"``, retried
  ``Retry(limit=2, delay="0.2s")``; each attempt appends a line to ``input["log"]`` when it starts
  and when it returns (so a test can tell the abandoned threads did finish).
* ``late``      -- like ``blocking``, but only the first attempt blocks (3 s); the second returns at once.
* ``unprintable`` -- a step raising an exception whose ``__str__`` raises.
* ``huge``      -- a step raising an exception with a 3 MB message (no retries).
* ``quick``     -- one instant step (the innocent bystander).
* ``pair``      -- two sync steps in parallel, each sleeping ``input["seconds"]``.
"""

from __future__ import annotations

from pathlib import Path

PYPROJECT = """\
[project]
name = "flareflow-hostile"
version = "0.1.0"

[tool.flareflow]
workflows = ["workflows"]
{extra}"""

WORKFLOWS = '''\
"""Workflow code that misbehaves on purpose."""

import asyncio
import time

from flareflow import Retry, Run, workflow


class Custom(BaseException):
    """Not an Exception: a direct BaseException subclass."""


RAISABLE = {"SystemExit": lambda: SystemExit(3), "KeyboardInterrupt": KeyboardInterrupt,
            "GeneratorExit": GeneratorExit, "Custom": lambda: Custom("custom base exception"),
            "CancelledError": asyncio.CancelledError}


def raise_named(name):
    raise RAISABLE[name]()


@workflow("exits")
async def exits(run: Run, inp):
    policy = Retry(limit=int(inp.get("limit", 3)), delay=float(inp.get("delay", 0.2)), backoff="constant")
    return await run.step("hostile", raise_named, inp["raise"], retry=policy)


def ident(value):
    return value


@workflow("body_exit")
async def body_exit(run: Run):
    await run.step("first", ident, 1)
    raise SystemExit(4)


def note(path, text):
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(text + "\\n")


def block(seconds, log):
    note(log, "start")
    time.sleep(seconds)
    note(log, "end")
    return "late result"


@workflow("blocking")
async def blocking(run: Run, inp):
    return await run.step("block", block, float(inp["seconds"]), inp["log"], timeout="1s",
                          retry=Retry(limit=2, delay="0.2s"))


def first_blocks(log):
    with open(log, "a+", encoding="utf-8") as handle:
        handle.seek(0)
        attempt = handle.read().count("start") + 1
    note(log, "start")
    if attempt == 1:
        time.sleep(3)
        note(log, "end")
        return "late result"
    note(log, "end")
    return "on time"


@workflow("late")
async def late(run: Run, inp):
    return await run.step("first blocks", first_blocks, inp["log"], timeout="1s",
                          retry=Retry(limit=3, delay="0.2s"))


class Unprintable(Exception):
    def __str__(self):
        raise ValueError("__str__ refuses")

    def __repr__(self):
        raise ValueError("__repr__ refuses too")


def unprintable():
    raise Unprintable()


@workflow("unprintable")
async def unprintable_flow(run: Run):
    return await run.step("unprintable", unprintable, retry=Retry(limit=1))


def huge():
    raise RuntimeError("x" * 3_000_000)


@workflow("huge")
async def huge_flow(run: Run):
    return await run.step("huge", huge, retry=Retry(limit=2, delay=0))


@workflow("quick")
async def quick(run: Run):
    return await run.step("add", ident, 42)


def nap(seconds):
    time.sleep(seconds)
    return time.time()


@workflow("pair")
async def pair(run: Run, inp):
    seconds = float(inp["seconds"])
    a, b = await run.parallel(run.step("a", nap, seconds), run.step("b", nap, seconds))
    return {"a": a, "b": b}
'''


def write_project(root: Path, extra: str = "") -> Path:
    """Write the hostile project into ``root`` (``extra``: more TOML appended to pyproject.toml)."""
    (root / "workflows").mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text(PYPROJECT.format(extra=extra), encoding="utf-8")
    (root / "workflows" / "hostile.py").write_text(WORKFLOWS, encoding="utf-8")
    return root

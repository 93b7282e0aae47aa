"""The throwaway flareflow project every API test server serves (written into a temp dir).

Workflows are quick but observable:

* ``steps``    -- ``n`` steps (default 3), each sleeping ``delay`` seconds; returns ``{"n", "total"}``.
* ``approval`` -- waits for the event ``go``, then asks a boolean question ``proceed``; returns both.
* ``sleepy``   -- a step, a durable ``run.sleep("nap", "2s")``, a step; returns ``{"sum": 3}``.
* ``chatty``   -- optionally waits for ``go`` (``gate``), then ``n`` instant steps (default 100).
"""

from __future__ import annotations

from pathlib import Path

MAX_BODY = 4096

PYPROJECT = f"""\
[project]
name = "flareflow-api-tests"
version = "0.1.0"

[tool.flareflow]
workflows = ["workflows"]

[tool.flareflow.dev]
max_body = {MAX_BODY}
"""

WORKFLOWS = '''\
"""Workflows for the end-to-end API tests."""

import asyncio

from flareflow import Run, workflow


def ident(value):
    return value


async def tick(i, delay):
    if delay:
        await asyncio.sleep(delay)
    return i


@workflow("steps")
async def steps(run: Run, inp=None):
    """n quick steps."""
    inp = inp if isinstance(inp, dict) else {}
    n = int(inp.get("n", 3))
    delay = float(inp.get("delay", 0))
    total = 0
    for i in range(n):
        total += await run.step(f"s{i}", tick, i, delay)
    return {"n": n, "total": total}


@workflow("approval")
async def approval(run: Run, inp=None):
    """An event, then a yes/no question."""
    got = await run.wait_for_event("go")
    ok = await run.ask("proceed?", schema={"type": "boolean"}, name="proceed")
    return {"event": got, "ok": ok}


@workflow("sleepy")
async def sleepy(run: Run, inp=None):
    """A step, a durable two-second nap, a step."""
    a = await run.step("before", ident, 1)
    await run.sleep("nap", "2s")
    b = await run.step("after", ident, 2)
    return {"sum": a + b}


@workflow("chatty")
async def chatty(run: Run, inp=None):
    """Many instant steps, optionally held back until the event `go`."""
    inp = inp if isinstance(inp, dict) else {}
    if inp.get("gate"):
        await run.wait_for_event("go")
    n = int(inp.get("n", 100))
    for i in range(n):
        await run.step("c", ident, i)
    return {"n": n}
'''


def write_project(root: Path) -> Path:
    """Write the test project into ``root`` (created if needed) and return it."""
    (root / "workflows").mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text(PYPROJECT, encoding="utf-8")
    (root / "workflows" / "api_flows.py").write_text(WORKFLOWS, encoding="utf-8")
    return root

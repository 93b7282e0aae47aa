"""Many stored runs, made fast: the API test project's workflows run in-process on a `LocalRuntime`
over the project's own state directory (real SQLite files, exactly as a server leaves them)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from flareflow import Run, workflow
from flareflow.engine.registry import Registry
from flareflow.local import LocalRuntime


def _registry() -> Registry:
    """``steps`` and ``approval`` as in tests/api/project.py (same names, same outputs)."""
    reg = Registry()

    def tick(i: int, delay: float = 0) -> int:
        return i

    @workflow("steps", registry=reg)
    async def steps(run: Run, inp: Any = None) -> Any:
        inp = inp if isinstance(inp, dict) else {}
        n = int(inp.get("n", 3))
        total = 0
        for i in range(n):
            total += await run.step(f"s{i}", tick, i, 0)
        return {"n": n, "total": total}

    @workflow("approval", registry=reg)
    async def approval(run: Run, inp: Any = None) -> Any:
        got = await run.wait_for_event("go")
        ok = await run.ask("proceed?", schema={"type": "boolean"}, name="proceed")
        return {"event": got, "ok": ok}

    return reg


def make_runs(project: Path, finished: int = 0, waiting: int = 0) -> list[str]:
    """``finished`` completed ``steps`` runs and ``waiting`` ``approval`` runs waiting for ``go``."""

    async def main() -> list[str]:
        ids = []
        async with LocalRuntime(project / ".flareflow" / "state", _registry()) as rt:
            for i in range(finished + waiting):
                obj = await rt.start_run("steps" if i < finished else "approval", activate=False,
                                         idempotency_key=f"made-{i}")
                await rt.activate(obj.run_id)
                ids.append(obj.run_id)
        return ids

    return asyncio.run(main())

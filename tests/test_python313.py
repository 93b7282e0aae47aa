"""The engine and the coordinator must run on Python 3.13 (Pyodide in production Workers).

Runs a workflow end to end under a real CPython 3.13 interpreter, and checks that the Worker-side
packages import nothing Pyodide lacks (sqlite3, ssl, lzma) or that cannot be vendored (pydantic, typer).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = r"""
import sys
# Pyodide in Workers has no sqlite3, ssl or lzma, and cannot load pydantic: make them unimportable.
blocked = ("sqlite3", "_sqlite3", "ssl", "_ssl", "lzma", "_lzma", "pydantic", "typer", "rich", "jinja2")
for name in blocked:
    sys.modules[name] = None
import asyncio, tempfile
import flareflow.engine, flareflow.durable_objects
for name in ("sqlite3", "_sqlite3"):  # the local runtime (CPython only) needs sqlite3
    del sys.modules[name]
from flareflow import Retry, workflow
from flareflow.engine.registry import Registry
from flareflow.local import LocalRuntime, ManualClock
reg = Registry()
calls = []
def flaky(n):
    calls.append(n)
    if len(calls) == 1:
        raise RuntimeError("first try fails")
    return n * 2
@workflow("w", registry=reg)
async def w(run, n):
    a = await run.step("double", flaky, n, retry=Retry(limit=2, delay="1s"))
    run.state["a"] = a
    await run.sleep("nap", "1 day")
    b, c = await run.parallel(run.step("x", lambda: 1), run.step("y", lambda: 2))
    return {"a": a, "sum": b + c, "py": sys.version_info[:2]}
async def main():
    clock = ManualClock()
    async with LocalRuntime(tempfile.mkdtemp(), reg, clock=clock) as rt:
        obj = await rt.start_run("w", 21)
        for _ in range(50):
            await asyncio.sleep(0.01)
            clock.advance(3600)
            if obj.run_id and rt.get(obj.run_id).status == "completed":
                break
        done = await asyncio.wait_for(rt.until_finished(obj.run_id), 5)
        print(done.info["output"])
asyncio.run(main())
"""


def _python313() -> str | None:
    for candidate in ("python3.13", str(Path.home() / ".pyenv/versions/3.13.0/bin/python3.13")):
        found = shutil.which(candidate)
        if found:
            return found
    return None


def test_engine_and_local_runtime_run_on_python_313() -> None:
    exe = _python313()
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail("python3.13 is required in CI to prove the engine runs on 3.13")
        pytest.skip("python3.13 not installed")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYENV_VERSION": "3.13.0"}
    proc = subprocess.run([exe, "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "'a': 42" in proc.stdout and "'sum': 3" in proc.stdout and "'py': [3, 13]" in proc.stdout

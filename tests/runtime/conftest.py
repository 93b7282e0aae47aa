"""The ``runtime`` fixture: a `LocalRuntime` on a `ManualClock`, a fresh registry and ``tmp_path``.

    def test_x(runtime):
        @workflow("wf", registry=runtime.registry)
        async def wf(run): ...

        async def main(rt):
            run_id = (await rt.start_run("wf")).run_id
            ...
            rt2 = await runtime.restart(advance=3600)  # a crash/resume: same directory, new process
            await rt2.recover()

        runtime.run(main)

See `helpers.ManualRuntime`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .helpers import ManualRuntime


@pytest.fixture
def runtime(tmp_path: Path) -> ManualRuntime:
    return ManualRuntime(tmp_path)

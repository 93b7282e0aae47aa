"""The pytest plugin (entry point ``pytest11: flareflow``): the ``flareflow_workflow`` fixture, and
plain ``async def`` tests run on an event loop of their own.

The fixture is a factory: ``wf = flareflow_workflow(order)`` is `create_test_workflow(order)`; when
the test fails, the status and last events of every workflow it made are added to its report, so a
failing assertion shows what the run did.

``async def`` tests: pytest does not run coroutines by itself; this plugin runs each one with
``asyncio.run``, unless another plugin owns it (a test marked ``asyncio`` or ``anyio``, or one that
uses anyio's ``anyio_backend`` fixture), so it never competes with pytest-asyncio or anyio.

Every pytest session of an environment with flareflow installed loads this module, so it imports
nothing of flareflow's runtime until a test asks for the fixture.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Generator, Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from pathlib import Path

    from ..engine.registry import Registry, WorkflowDef, WorkflowFn
    from .workflow import TestWorkflow, WorkflowFactory

_CALL_REPORT = pytest.StashKey[pytest.TestReport]()


@pytest.fixture
def flareflow_workflow(request: pytest.FixtureRequest) -> Iterator[WorkflowFactory]:
    """``flareflow_workflow(fn_or_name)``: a fresh `TestWorkflow` for this test (see `create_test_workflow`)."""
    from .workflow import create_test_workflow

    made: list[TestWorkflow] = []

    def factory(workflow: WorkflowFn | WorkflowDef | str | Path, *, registry: Registry | None = None,
                ) -> TestWorkflow:
        wf = create_test_workflow(workflow, registry=registry)
        made.append(wf)
        return wf

    yield factory
    report = request.node.stash.get(_CALL_REPORT, None)
    if report is not None and report.failed:
        for wf in made:
            tail = ", ".join(f"{e['type']}({e.get('name', '')})" for e in wf.events[-12:]) or "no run"
            report.sections.append((f"flareflow {wf.name}", f"status: {wf.status}\nlast events: {tail}"))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
    """Keep the call phase's report on the item, for the fixture's teardown to read."""
    report = yield
    if call.when == "call":
        item.stash[_CALL_REPORT] = report
    return report


@pytest.hookimpl
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Run an ``async def`` test no other plugin claims, on a fresh event loop."""
    fn = pyfuncitem.obj
    if not inspect.iscoroutinefunction(fn):
        return None
    if any(pyfuncitem.get_closest_marker(m) is not None for m in ("asyncio", "anyio")) \
            or "anyio_backend" in pyfuncitem.fixturenames:
        return None
    args: dict[str, Any] = {name: pyfuncitem.funcargs[name] for name in pyfuncitem._fixtureinfo.argnames}
    asyncio.run(fn(**args))
    return True

"""`flareflow.testing`: fast workflow tests on the real embedded runtime, with mocked steps and a
skipped clock.

::

    from flareflow.testing import create_test_workflow

    async def test_order_confirmed():
        wf = create_test_workflow(order)
        wf.disable_sleeps()
        wf.mock_step_result("Payment.process", {"success": True})
        wf.send_event("approval", {"by": "test"})
        result = await wf.run({"product": {"sku": "ABC"}, "quantity": 1})
        assert "Inventory.check" in wf.steps

How it runs (`flareflow.testing.workflow`): each run gets a fresh `LocalRuntime` on real SQLite in a
temporary directory (removed afterwards) and a registry of its own; mocks reach the engine through
one seam (`flareflow.engine.registry.StepHook`, `flareflow.testing.mocks`). The pytest plugin
(`flareflow.testing.plugin`, an entry point) adds the ``flareflow_workflow`` fixture and runs plain
``async def`` tests. Local-only (sqlite3): never imported by the Worker.
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .mocks import Mocks, UnusedMockWarning
    from .workflow import DEFAULT_TIMEOUT, RunFailed, RunStuck, TestWorkflow, WorkflowFactory, create_test_workflow

__all__ = [
    "DEFAULT_TIMEOUT",
    "Mocks",
    "RunFailed",
    "RunStuck",
    "TestWorkflow",
    "UnusedMockWarning",
    "WorkflowFactory",
    "create_test_workflow",
]


def __getattr__(name: str) -> Any:
    """The kit's names, imported on first use: the pytest plugin (``flareflow.testing.plugin``) is
    loaded by every pytest session of an environment with flareflow installed, and must not bring the
    local runtime along until a test uses it."""
    if name in ("Mocks", "UnusedMockWarning"):
        from . import mocks

        return getattr(mocks, name)
    if name in __all__:
        from . import workflow

        return getattr(workflow, name)
    raise AttributeError(f"module 'flareflow.testing' has no attribute {name!r}")

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

from .mocks import Mocks
from .workflow import DEFAULT_TIMEOUT, RunFailed, RunStuck, TestWorkflow, WorkflowFactory, create_test_workflow

__all__ = [
    "DEFAULT_TIMEOUT",
    "Mocks",
    "RunFailed",
    "RunStuck",
    "TestWorkflow",
    "WorkflowFactory",
    "create_test_workflow",
]

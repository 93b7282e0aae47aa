"""The public API, pinned: each package's ``__all__`` as users import it.

Moving code between modules must never silently add, drop or rename a public name. When a change to
the public API is intended, change the expectation here in the same commit (and say so in
CHANGELOG.md); every name listed must also resolve.
"""

from __future__ import annotations

import importlib

import pytest

PUBLIC = {
    "flareflow": ["Domain", "DurationError", "FlareflowError", "InvalidInput", "Method", "NonRetryableError",
                  "Registry",
                  "ReplayDivergence", "Retry", "Run", "ScheduleError", "StepContext", "StepFailed", "StepTimeout",
                  "WaitTimeout", "WorkflowDefinitionError", "WorkflowNotFound", "__version__", "every", "workflow"],
    "flareflow.engine": ["Domain", "DurationError", "FlareflowError", "InvalidInput", "Method", "NonRetryableError",
                         "Registry",
                         "ReplayDivergence", "Retry", "Run", "ScheduleError", "StepContext", "StepFailed",
                         "StepTimeout", "WaitTimeout", "WorkflowDef", "WorkflowDefinitionError", "WorkflowNotFound",
                         "default_registry", "every", "parse_duration", "workflow"],
    "flareflow.durable_objects": ["Alarm", "Clock", "RunCoordinator", "Sql", "SystemClock"],
    "flareflow.worker": ["Backend", "HttpError", "Request", "Response", "Router", "StreamRequest"],
    "flareflow.local": ["LocalRuntime", "ManualClock"],
    "flareflow.client": ["ApiError", "Client"],
}


@pytest.mark.parametrize("module", sorted(PUBLIC))
def test_public_names_are_pinned(module: str) -> None:
    mod = importlib.import_module(module)
    assert sorted(mod.__all__) == sorted(PUBLIC[module]), (
        f"{module}.__all__ changed; if intended, update tests/test_public_api.py and CHANGELOG.md")
    missing = [name for name in mod.__all__ if not hasattr(mod, name)]
    assert missing == [], f"{module}.__all__ lists names it does not define: {missing}"

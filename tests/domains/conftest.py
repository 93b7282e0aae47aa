"""The ``runtime`` fixture of the domain tests: the runtime specs' `ManualRuntime` (a `LocalRuntime` on a
`ManualClock`, a fresh registry, ``tmp_path``). Domains live in one process-wide registry, so every test
module names its domains uniquely."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.runtime.helpers import ManualRuntime


@pytest.fixture
def runtime(tmp_path: Path) -> ManualRuntime:
    return ManualRuntime(tmp_path)

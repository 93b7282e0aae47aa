"""The workerd host never skips in CI: a missing harness fails the tests there (and skips them elsewhere)."""

from __future__ import annotations

import pytest

from tests.api.hosts import make_server


def test_missing_harness_fails_under_ci(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "no-node-here"))
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="node is not on PATH"):
        make_server("workerd", tmp_path)
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match="node is not on PATH"):
        make_server("workerd", tmp_path)

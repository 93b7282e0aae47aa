"""``POST /api/workflow`` in a project without ``[tool.flareflow.ai]``: a 404 that says to add the table
(the built-in ``ai-prompt`` exists only then), not "unknown workflow 'ai-prompt'" with a ``workflow``
field the request never had. Against the local server, a process."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.api.hosts import make_server


def test_api_workflow_without_ai_settings_says_what_to_add(tmp_path: Path) -> None:
    server = make_server("local", tmp_path)  # the API tests' project: no [tool.flareflow.ai]
    try:
        answer = httpx.post(f"{server.url}/api/workflow", json={"prompt": "hi"},
                            headers={"authorization": f"Bearer {server.token}"}, timeout=30)
    finally:
        server.stop()
    assert answer.status_code == 404, answer.text
    error = answer.json()["error"]
    assert error["code"] == "workflow_not_found" and error["field"] is None, error
    assert "[tool.flareflow.ai]" in error["message"] and "pyproject.toml" in error["message"], error

"""LOCAL SERVER ONLY (``flareflow serve --local``): what the local host's own socket and storage
handling does with hostile or broken clients (issue #10, item 7 and its "also fix" items). The Worker
host has no such layer (Cloudflare's edge terminates the connections), so these tests start their own
`LocalServer` instead of using the two-host ``server`` fixtures.

Tried: a run whose stored text holds a lone surrogate (written before such text was refused).
"""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path
from typing import Any

import httpx

from flareflow.engine import Registry, Run, workflow
from flareflow.local import LocalRuntime

from .hosts import LocalServer
from .project import write_project


def _server(tmp_path: Path, **dev: Any) -> LocalServer:
    project = write_project(tmp_path / "project")
    if dev:
        text = (project / "pyproject.toml").read_text(encoding="utf-8")
        extra = "".join(f"{key} = {value!r}\n" for key, value in dev.items())
        text = text.replace("[tool.flareflow.dev]\n", "[tool.flareflow.dev]\n" + extra)
        (project / "pyproject.toml").write_text(text, encoding="utf-8")
    logs = tmp_path / "logs"
    logs.mkdir(exist_ok=True)
    return LocalServer(project, "tok-" + secrets.token_hex(16), logs)


def test_local_run_stored_with_a_lone_surrogate_is_still_served(tmp_path, monkeypatch):
    """A state directory from before lone surrogates were refused: the run is served (escaped), not 500."""
    srv = _server(tmp_path)
    import flareflow.engine.run as engine_run

    monkeypatch.setattr(engine_run, "encode_text", engine_run._ENCODE)  # the old, unchecked encoder
    reg = Registry()

    @workflow("approval", registry=reg)
    async def approval(run: Run, inp: Any = None) -> Any:  # never activated here
        return None

    async def poison() -> str:
        async with LocalRuntime(srv.project / ".flareflow" / "state", reg) as rt:
            return (await rt.start_run("approval", {"name": "a\ud800b"}, activate=False)).run_id

    run_id = asyncio.run(poison())
    monkeypatch.undo()
    srv.start()
    try:
        with httpx.Client(base_url=srv.url, headers=srv.headers, timeout=10) as client:
            described = client.get(f"/runs/{run_id}")
            events = client.get(f"/runs/{run_id}/events", params={"follow": "false"},
                                headers={"accept": "application/json"})
            listed = client.get("/runs")
            cancelled = client.post(f"/runs/{run_id}/cancel")
    finally:
        srv.stop()
    assert described.status_code == 200, described.text
    assert described.json()["input"] == {"name": "a\ud800b"}  # served as the JSON escape it was sent as
    assert b"\\ud800" in described.content
    assert events.status_code == 200 and events.json()["events"][0]["input"] == {"name": "a\ud800b"}
    assert listed.status_code == 200 and run_id in [r["id"] for r in listed.json()["runs"]]
    assert cancelled.status_code == 200, cancelled.text
    assert "Traceback" not in srv.output()


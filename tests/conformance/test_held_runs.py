"""Host conformance: a deployment mistake holds a run, never fails it, and the run continues by itself
once the code is back -- on the local server and on workerd.

The mistake is the user's: the module of ``deployable`` is removed from the project, then restored.
How the new code reaches each host differs, the rest is asserted the same way:

* ``local`` -- ``flareflow serve --local`` keeps running: it notices the workflow files changed,
  imports them again and re-checks the held runs itself;
* ``workerd`` -- a redeploy: ``flareflow serve`` is restarted, which builds the project as it now is
  (the harness bundles a build once per start); the held run's Durable Object is woken by its
  re-check alarm (`flareflow.durable_objects.coordinator.HOLD_RETRY_MIN` after the hold) and goes on.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from tests.api.helpers import arun, assert_gapless, stored_events, wait_for_type, wait_until

from .project import DEPLOYABLE_MODULE
from .test_both_hosts import completed_steps, finished, http, start


def redeploy(server: Any) -> None:
    """Bring the project's current code to the host (see the module docstring)."""
    if server.kind == "workerd":
        server.restart()


async def serves(server: Any, present: bool) -> None:
    """Wait until the host's ``GET /workflows`` lists ``deployable`` (or no longer does)."""

    async def check() -> bool:
        async with http(server) as client:
            names = {w["name"] for w in (await client.get("/workflows")).json()["workflows"]}
        return ("deployable" in names) == present

    await wait_until(check, 20, f"deployable {'back in' if present else 'gone from'} GET /workflows")


def test_a_missing_workflow_holds_the_run_until_the_code_is_back(server, tmp_path: Path) -> None:
    module = Path(server.project) / DEPLOYABLE_MODULE
    aside = tmp_path / module.name

    async def body() -> None:
        async with http(server) as client:
            run_id = await start(client, "deployable")
            await wait_for_type(client, run_id, "run.waiting")
        shutil.move(module, aside)  # deployed without the module
        redeploy(server)
        await serves(server, present=False)
        async with http(server) as client:
            sent = await client.post(f"/runs/{run_id}/events", json={"type": "go", "payload": {"ok": 1}})
            assert sent.status_code in (200, 202), sent.text

            async def held() -> bool:
                run = (await client.get(f"/runs/{run_id}")).json()
                return run["status"] == "waiting" and bool(run["waiting"]) and run["waiting"][0]["kind"] == "code"

            await wait_until(held, 20, "the run to be held for its code")
            run = (await client.get(f"/runs/{run_id}")).json()
            assert "unknown workflow 'deployable'" in run["waiting"][0]["message"], run["waiting"]
            assert run["error"] is None and [s["step"] for s in run["steps"]] == ["first#1", "go#1"]
            listed = (await client.get("/runs", params={"status": "waiting", "id_prefix": run_id})).json()["runs"]
            assert listed and listed[0]["waiting_for"][0]["kind"] == "code", listed
            assert "unknown workflow 'deployable'" in listed[0]["waiting_for"][0]["message"]
            events = await stored_events(client, run_id)
            holds = [e for e in events if e["type"] == "run.waiting" and e["reason"] == "code"]
            assert len(holds) == 1 and holds[0]["name"] == "deployable", events
            assert "run.failed" not in [e["type"] for e in events]

        shutil.move(aside, module)  # the code is back
        redeploy(server)
        async with http(server) as client:
            run = await finished(server, client, run_id, timeout=40)
            events = await stored_events(client, run_id)
        assert run["status"] == "completed", run
        assert run["output"] == {"first": 1, "got": {"ok": 1}, "second": 2}
        assert completed_steps(events) == ["first#1", "second#1"], "a recorded step ran again"
        assert run["waiting"] == []
        assert_gapless(events)

    try:
        arun(body(), timeout=150)
    finally:  # the session's server serves the whole project again, whatever happened
        if aside.exists():
            shutil.move(aside, module)
            redeploy(server)

"""Host conformance: a deployment mistake holds a run, never fails it, and the run continues by itself
once the code is back -- on the local server and on workerd.

The mistakes are the user's: the module of ``deployable`` is removed from the project, then
restored; ``versioned`` is released with a change that a recorded run diverges from, then with the
change behind ``run.patched`` (which a new run then takes, recording its marker on the host). How
the new code reaches each host differs, the rest is asserted the same way:

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

from .project import DEPLOYABLE_MODULE, VERSIONED, VERSIONED_MODULE
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


async def serves_release(server: Any, release: str) -> None:
    """Wait until the host serves ``release`` of ``versioned`` (its description says which)."""

    async def check() -> bool:
        async with http(server) as client:
            found = [w for w in (await client.get("/workflows")).json()["workflows"] if w["name"] == "versioned"]
        return bool(found) and found[0]["description"] == f"release {release}"

    await wait_until(check, 20, f"versioned {release} in GET /workflows")


async def held_for_code(client: Any, run_id: str) -> dict[str, Any]:
    """Wait until the run is held for its code; its ``GET /runs/{id}``."""

    async def held() -> bool:
        run = (await client.get(f"/runs/{run_id}")).json()
        return run["status"] == "waiting" and bool(run["waiting"]) and run["waiting"][0]["kind"] == "code"

    await wait_until(held, 20, "the run to be held for its code")
    run: dict[str, Any] = (await client.get(f"/runs/{run_id}")).json()
    assert run["error"] is None, run
    return run


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
            run = await held_for_code(client, run_id)
            assert "unknown workflow 'deployable'" in run["waiting"][0]["message"], run["waiting"]
            assert [s["step"] for s in run["steps"]] == ["first#1", "go#1"]
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


def test_a_divergence_holds_the_run_until_a_patched_release_matches_its_history(server) -> None:
    module = Path(server.project) / VERSIONED_MODULE

    def release(name: str) -> None:
        module.write_text(VERSIONED[name], encoding="utf-8")
        redeploy(server)

    async def body() -> None:
        await serves_release(server, "v1")
        async with http(server) as client:
            old = await start(client, "versioned")
            await wait_for_type(client, old, "run.waiting")
        release("v2")  # a step added before the others, unguarded
        await serves_release(server, "v2")
        async with http(server) as client:
            sent = await client.post(f"/runs/{old}/events", json={"type": "go", "payload": {"ok": 1}})
            assert sent.status_code in (200, 202), sent.text
            run = await held_for_code(client, old)
            message = run["waiting"][0]["message"]
            assert "'first'" in message and "'audit'" in message and "position 0" in message, message
            hold = [e for e in await stored_events(client, old) if e["type"] == "run.waiting" and e["reason"] == "code"]
            assert hold[-1]["step"] == "first#1" and hold[-1]["divergence"] == {
                "position": "0", "recorded": {"kind": "step", "name": "first", "key": "first#1"},
                "new": {"kind": "step", "name": "audit", "key": "audit#1"}}, hold

        release("v3")  # the change behind run.patched: the held run keeps its recorded path
        async with http(server) as client:
            run = await finished(server, client, old, timeout=40)
            events = await stored_events(client, old)
            assert run["status"] == "completed", run
            assert run["output"] == {"audit": None, "first": 1, "got": {"ok": 1}, "second": 2}
            assert completed_steps(events) == ["first#1", "second#1"], "a recorded step ran again"
            assert "run.failed" not in [e["type"] for e in events]

            new = await start(client, "versioned")  # a run started on v3 takes the new path ...
            await wait_for_type(client, new, "run.waiting")
            await client.post(f"/runs/{new}/events", json={"type": "go", "payload": {"ok": 2}})
            run = await finished(server, client, new, timeout=20)  # ... in its replay too
            assert run["output"] == {"audit": "audited", "first": 1, "got": {"ok": 2}, "second": 2}, run
            kinds = [(s["step"], s["kind"], s["pos"]) for s in run["steps"]]
            assert kinds[:3] == [("patch:audit-first#1", "patch", "0"), ("audit#1", "step", "1"),
                                 ("first#1", "step", "2")], kinds

    try:
        arun(body(), timeout=180)
    except BaseException:  # the session's server gets the release it started with back
        release("v1")
        raise

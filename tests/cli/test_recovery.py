"""Recovery commands as a user runs them: real ``flareflow`` processes, side effects counted in a file.

Tried: ``runs retry`` on a failed run (the completed steps' functions are not called again, the failed
one is, the run completes); ``runs restart --from`` (the steps before it are not called again, the
original run is left as it was, the new one says where it came from); ``runs pause``, ``resume`` and
``cancel`` of a ``--detach``ed run from other CLI processes (the background worker executes it and
takes the commands from the run's inbox); ``runs delete`` and ``runs prune`` (run file, index row and
offloaded payloads gone; unfinished runs and statuses refused).
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from .helpers import FAST_WORKFLOWS, RUN_ID, assert_one_error_line, describe, ff, run_status, state_dir, wait_until

RECOVERY = '''\
from pathlib import Path

from flareflow import Retry, Run, workflow

CALLS = Path({calls!r})
FLAG = Path({flag!r})


def mark(name: str) -> str:
    with CALLS.open("a") as handle:
        handle.write(name + "\\n")
    return name


def flaky(name: str) -> str:
    mark(name)
    if FLAG.exists():
        raise ValueError("the flag file says fail")
    return name


def tick(i: int) -> int:
    import time

    time.sleep(0.15)
    return int(mark(f"tick {{i}}").split()[1])


@workflow("recovery")
async def recovery(run: Run) -> dict:
    done = [await run.step("first", mark, "first"), await run.step("second", mark, "second"),
            await run.step("flaky", flaky, "flaky", retry=Retry(limit=1)),
            await run.step("last", mark, "last")]
    return {{"done": done, "big": "x" * 200_000}}


@workflow("ticker")
async def ticker(run: Run, n: int = 20) -> dict:
    total = 0
    for i in range(n):
        total += await run.step("tick", tick, i)
    return {{"total": total}}
'''


@pytest.fixture()
def recovering(project: Path) -> Path:
    (project / "workflows" / "recovery.py").write_text(
        RECOVERY.format(calls=str(project / "calls.txt"), flag=str(project / "fail.flag")), encoding="utf-8")
    return project


def calls(project: Path) -> list[str]:
    path = project / "calls.txt"
    return path.read_text().splitlines() if path.exists() else []


def failed_run(project: Path) -> str:
    (project / "fail.flag").write_text("1")
    result = ff("run", "recovery", cwd=project)
    assert result.returncode == 1, describe(result)
    run_id = _only_run(project)
    assert run_status(project, run_id) == "failed"
    assert calls(project) == ["first", "second", "flaky"]
    return run_id


def _only_run(project: Path) -> str:
    (run_id,) = [p.stem for p in (state_dir(project) / "runs").glob("*.db")]
    return run_id


def _show(project: Path, run_id: str) -> dict[str, Any]:
    result = ff("runs", "show", run_id, "--json", cwd=project)
    assert result.returncode == 0, describe(result)
    return dict(json.loads(result.stdout))


def _index_ids(project: Path) -> set[str]:
    conn = sqlite3.connect(state_dir(project) / "index.db")
    try:
        return {str(r[0]) for r in conn.execute("SELECT id FROM runs")}
    finally:
        conn.close()


def test_retry_continues_a_failed_run_from_its_failed_step(recovering: Path) -> None:
    run_id = failed_run(recovering)
    (recovering / "fail.flag").unlink()  # the cause is fixed
    retried = ff("runs", "retry", run_id[:8], cwd=recovering)
    assert retried.returncode == 0, describe(retried)
    assert calls(recovering) == ["first", "second", "flaky", "flaky", "last"]  # completed steps not re-run
    info = _show(recovering, run_id)
    assert info["status"] == "completed" and info["error"] is None
    assert info["output"]["done"] == ["first", "second", "flaky", "last"]
    types = [e["type"] for e in info["events"]]
    assert types.count("run.failed") == 1 and types[-1] == "run.completed"
    retried_event = next(e for e in info["events"] if e["type"] == "run.retried")
    assert retried_event["steps"] == ["flaky#1"]
    flaky = next(s for s in info["steps"] if s["step"] == "flaky#1")
    assert flaky["attempts"] == 2  # the attempt numbers go on
    # only a failed run can be retried: one clear line, exit 1
    again = ff("runs", "retry", run_id, cwd=recovering)
    assert_one_error_line(again, "completed", "only a failed run")
    assert again.returncode == 1


def test_restart_from_a_step_reuses_what_came_before_and_leaves_the_original(recovering: Path) -> None:
    run_id = failed_run(recovering)
    before = _show(recovering, run_id)
    (recovering / "fail.flag").unlink()
    restarted = ff("runs", "restart", run_id, "--from", "second", "--json", cwd=recovering)
    assert restarted.returncode == 0, describe(restarted)
    events = [json.loads(line) for line in restarted.stdout.splitlines()]
    new_id = events[0]["run_id"]
    assert new_id != run_id
    assert events[0]["type"] == "run.started"
    assert events[0]["restarted_from"] == {"run_id": run_id, "step": "second#1"}
    assert events[0]["reused"] == ["first#1"]
    assert events[-1]["type"] == "run.completed"
    # "first" was not called again; "second" and what follows ran in the new run
    assert calls(recovering) == ["first", "second", "flaky", "second", "flaky", "last"]
    after = _show(recovering, run_id)
    assert after == before  # the original stays as it was
    new = _show(recovering, new_id)
    assert new["restarted_from"] == {"run_id": run_id, "step": "second#1"}
    assert new["status"] == "completed"
    # without --from: from the beginning, and a step it never had is refused
    whole = ff("runs", "restart", new_id, "--detach", cwd=recovering)
    assert whole.returncode == 0 and RUN_ID.match(whole.stdout.strip()), describe(whole)
    wait_until(lambda: run_status(recovering, whole.stdout.strip()) == "completed", 20, "the re-run")
    assert calls(recovering)[6:] == ["first", "second", "flaky", "last"]
    unknown = ff("runs", "restart", run_id, "--from", "nope", cwd=recovering)
    assert_one_error_line(unknown, "no step 'nope'", "first#1")


def test_pause_resume_and_cancel_reach_a_detached_run(recovering: Path, monkeypatch: Any) -> None:
    monkeypatch.setenv("FLAREFLOW_WORKER_IDLE", "2")
    started = ff("run", "ticker", "--detach", cwd=recovering)
    run_id = started.stdout.strip()
    assert started.returncode == 0 and RUN_ID.match(run_id), describe(started)
    wait_until(lambda: len(calls(recovering)) >= 2, 20, "the detached run to tick")
    paused = ff("runs", "pause", run_id, cwd=recovering)  # another process executes it: via its inbox
    assert paused.returncode == 0, describe(paused)
    assert "paused" in paused.stdout
    assert run_status(recovering, run_id) == "paused"
    held = len(calls(recovering))
    time.sleep(0.8)
    assert len(calls(recovering)) <= held + 1  # at most the step that was running finishes
    resumed = ff("runs", "resume", run_id, "--detach", cwd=recovering)
    assert resumed.returncode == 0, describe(resumed)
    wait_until(lambda: run_status(recovering, run_id) == "completed", 30, "the resumed run to complete")
    assert [c for c in calls(recovering) if c.startswith("tick")] == [f"tick {i}" for i in range(20)]

    second = ff("run", "ticker", "--input", "200", "--detach", cwd=recovering)
    other = second.stdout.strip()
    assert second.returncode == 0, describe(second)
    wait_until(lambda: run_status(recovering, other) == "running" and len(calls(recovering)) > 22, 20, "ticking")
    cancelled = ff("runs", "cancel", other, "--reason", "enough", cwd=recovering)
    assert cancelled.returncode == 0, describe(cancelled)
    assert run_status(recovering, other) == "cancelled"
    count = len(calls(recovering))
    time.sleep(0.8)
    assert len(calls(recovering)) <= count + 1
    info = _show(recovering, other)
    assert info["events"][-1] == {**info["events"][-1], "type": "run.cancelled", "reason": "enough"}


def test_delete_and_prune_remove_files_index_rows_and_payloads(recovering: Path) -> None:
    done = ff("run", "recovery", cwd=recovering)
    assert done.returncode == 0, describe(done)
    run_id = _only_run(recovering)
    blobs = state_dir(recovering) / "blobs"
    assert any(p.is_file() for p in blobs.rglob("*")), "the 200 KB output is offloaded to the blob store"
    waiting = ff("run", "ticker", "--input", "0", cwd=recovering)  # completes at once (no steps)
    assert waiting.returncode == 0, describe(waiting)
    # an unfinished run is refused
    long = ff("run", "ticker", "--input", "500", "--detach", cwd=recovering)
    unfinished = long.stdout.strip()
    refused = ff("runs", "delete", unfinished, cwd=recovering)
    assert_one_error_line(refused, "running", "cancel it first")
    assert (state_dir(recovering) / "runs" / f"{unfinished}.db").exists()
    assert ff("runs", "cancel", unfinished, cwd=recovering).returncode == 0

    deleted = ff("runs", "delete", run_id, cwd=recovering)
    assert deleted.returncode == 0, describe(deleted)
    assert not (state_dir(recovering) / "runs" / f"{run_id}.db").exists()
    assert run_id not in _index_ids(recovering)
    assert not any(p.is_file() for p in blobs.rglob("*")), "its payloads are gone too"
    gone = ff("runs", "show", run_id, cwd=recovering)
    assert_one_error_line(gone, run_id[:8])

    # prune: unfinished statuses refused; a dry run lists; the real one deletes
    bad = ff("runs", "prune", "--older-than", "0s", "--status", "running", cwd=recovering)
    assert_one_error_line(bad, "only finished runs")
    listed = ff("runs", "prune", "--older-than", "0s", "--status", "completed", "--dry-run", cwd=recovering)
    assert listed.returncode == 0, describe(listed)
    left = sorted(p.stem for p in (state_dir(recovering) / "runs").glob("*.db"))
    completed = [r for r in left if run_status(recovering, r) == "completed"]
    assert len(completed) == 1 and completed[0] in listed.stdout and unfinished not in listed.stdout
    young = ff("runs", "prune", "--older-than", "30d", cwd=recovering)
    assert young.returncode == 0 and "deleted 0 run(s)" in young.stdout, describe(young)
    pruned = ff("runs", "prune", "--older-than", "0s", cwd=recovering)
    assert pruned.returncode == 0 and "deleted 2 run(s)" in pruned.stdout, describe(pruned)
    assert not list((state_dir(recovering) / "runs").glob("*.db"))
    assert _index_ids(recovering) == set()


def test_commands_reach_runs_that_serve_local_executes(tmp_path: Path) -> None:
    """``runs pause|resume|cancel`` without ``--url`` on runs a ``serve --local`` process executes (through
    their inboxes), and ``runs retry|restart|delete|prune`` with ``--url`` against that server."""
    from tests.api.hosts import make_server
    from tests.api.project import write_project

    def with_recovery(root: Path) -> Path:
        write_project(root)
        (root / "workflows" / "recovery.py").write_text(
            RECOVERY.format(calls=str(root / "calls.txt"), flag=str(root / "fail.flag")), encoding="utf-8")
        (root / "fail.flag").write_text("1")
        return root

    server = make_server("local", tmp_path / "served", with_recovery)
    try:
        here = server.project
        ids = [server_start(server, "approval") for _ in range(2)]
        for run_id in ids:
            wait_until(lambda r=run_id: run_status(here, r) == "waiting", 20, "the served run to wait")  # type: ignore[misc]
        paused = ff("runs", "pause", ids[0], "-C", str(here), cwd=here)
        assert paused.returncode == 0, describe(paused)
        assert run_status(here, ids[0]) == "paused"
        resumed = ff("runs", "resume", ids[0], "--detach", "-C", str(here), cwd=here)
        assert resumed.returncode == 0 and resumed.stdout.strip() == ids[0], describe(resumed)
        assert run_status(here, ids[0]) == "waiting"
        cancelled = ff("runs", "cancel", ids[1], "-C", str(here), cwd=here)
        assert cancelled.returncode == 0, describe(cancelled)
        assert "another flareflow process" not in cancelled.stderr
        assert run_status(here, ids[1]) == "cancelled"

        remote = ["--url", server.url, "--token", server.token]
        restarted = ff("runs", "restart", ids[1], "--detach", *remote, cwd=here)
        assert restarted.returncode == 0 and RUN_ID.match(restarted.stdout.strip()), describe(restarted)
        new_id = restarted.stdout.strip()
        wait_until(lambda: run_status(here, new_id) == "waiting", 20, "the restarted run to wait")
        not_failed = ff("runs", "retry", new_id, *remote, cwd=here)
        assert not_failed.returncode == 1 and "run_state_conflict" in not_failed.stderr, describe(not_failed)
        refused = ff("runs", "delete", new_id, *remote, cwd=here)
        assert refused.returncode == 1 and "cancel it first" in refused.stderr, describe(refused)
        listed = ff("runs", "prune", "--older-than", "0s", "--status", "cancelled", "--dry-run", *remote, cwd=here)
        assert listed.returncode == 0 and ids[1] in listed.stdout, describe(listed)
        deleted = ff("runs", "delete", ids[1], *remote, cwd=here)
        assert deleted.returncode == 0, describe(deleted)
        assert not (state_dir(here) / "runs" / f"{ids[1]}.db").exists()

        # a failed run retried over the API, followed here from the retry on
        failed = ff("run", "recovery", "--json", *remote, cwd=here)
        assert failed.returncode == 1, describe(failed)
        failed_id = json.loads(failed.stdout.splitlines()[0])["run_id"]
        (here / "fail.flag").unlink()
        retried = ff("runs", "retry", failed_id, "--json", *remote, cwd=here)
        assert retried.returncode == 0, describe(retried)
        followed = [json.loads(line) for line in retried.stdout.splitlines()]
        assert followed[0]["type"] == "run.retried" and followed[-1]["type"] == "run.completed", followed
        assert calls(here) == ["first", "second", "flaky", "flaky", "last"]
        # and one the server executes, retried without --url: through its inbox, followed from here
        (here / "fail.flag").write_text("1")
        served = server_start(server, "recovery")
        wait_until(lambda: run_status(here, served) == "failed", 20, "the served run to fail")
        (here / "fail.flag").unlink()
        local_retry = ff("runs", "retry", served, "-C", str(here), cwd=here)
        assert local_retry.returncode == 0, describe(local_retry)
        assert "following it here" in local_retry.stderr, describe(local_retry)
        assert run_status(here, served) == "completed"
        assert calls(here)[5:] == ["first", "second", "flaky", "flaky", "last"]
    finally:
        server.stop()


def server_start(server: Any, workflow: str) -> str:
    import httpx

    response = httpx.post(server.url + "/runs", json={"workflow": workflow}, headers=server.headers, timeout=15)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


BROKEN = "import asyncio\n\ndef oops(:\n    pass\n"


def test_a_broken_neighbour_file_does_not_stop_retry_send_event_or_answer(recovering: Path) -> None:
    # the commands that continue a run load the project as resume does: another file's import error is
    # a warning naming it, not a refusal to touch a run whose own workflow imports fine
    (recovering / "workflows" / "fast.py").write_text(FAST_WORKFLOWS, encoding="utf-8")
    run_id = failed_run(recovering)
    (recovering / "workflows" / "broken.py").write_text(BROKEN, encoding="utf-8")
    (recovering / "fail.flag").unlink()
    retried = ff("runs", "retry", run_id, cwd=recovering)
    assert retried.returncode == 0, describe(retried)
    assert "broken.py:3" in retried.stderr and "warning" in retried.stderr, retried.stderr
    assert _show(recovering, run_id)["status"] == "completed"

    for workflow, deliver in (("waiter", ("send-event", "{id}", "go", '{"n": 1}')),
                              ("asker", ("answer", "{id}", "true"))):
        started = ff("run", workflow, "--detach", cwd=recovering)
        assert started.returncode == 0, describe(started)
        new_id = started.stdout.split()[-1]
        wait_until(lambda i=new_id: run_status(recovering, i) == "waiting", 30, f"{workflow} to wait")
        done = ff(*(new_id if part == "{id}" else part for part in deliver), cwd=recovering)
        assert done.returncode == 0, describe(done)
        assert "broken.py:3" in done.stderr, done.stderr
        wait_until(lambda i=new_id: run_status(recovering, i) == "completed", 30, f"{workflow} to complete")

"""Deployment mistakes hold a run, never fail it, and ``flareflow check`` says so before you ship:
real ``flareflow`` processes on a project whose workflow module goes missing, breaks, or changes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from .helpers import Live, describe, ff, ff_json, wait_until
from .versions import V1, V2, V3, V3_DIVERGENCE, release, write_shop


def napping_run(root: Path) -> str:
    """Start ``order`` (V1) and stop its process during the nap, as a crash or a closed terminal would."""
    with Live("run", "order", "--json", cwd=root) as live:
        started = live.wait_event(lambda e: e["type"] == "run.started", what="run.started")
        live.wait_event(lambda e: e["type"] == "run.waiting", what="the nap")
    return str(started["run_id"])


def is_held(event: dict[str, Any]) -> bool:
    return event["type"] == "run.waiting" and event["reason"] == "code"


def listed(root: Path, run_id: str) -> dict[str, Any]:
    rows = ff_json("runs", "list", "--json", cwd=root)
    row: dict[str, Any] = next(r for r in rows if r["id"] == run_id)
    return row


def test_a_run_whose_module_is_missing_is_held_and_continues_when_the_file_returns(tmp_path: Path) -> None:
    root = write_shop(tmp_path / "shop", V1)
    run_id = napping_run(root)
    module = root / "workflows" / "order.py"
    shutil.move(module, tmp_path / "order.py")  # the deployment mistake

    with Live("resume", run_id, "--json", cwd=root) as resume:
        held = resume.wait_event(is_held, what="the hold")
        assert "unknown workflow 'order'" in held["message"] and "held" in held["message"], held
        assert held["name"] == "order"
        row = listed(root, run_id)  # another process sees why the run waits
        assert row["status"] == "waiting", row
        wait = row["waiting_for"][0]
        assert wait["kind"] == "code" and "unknown workflow 'order'" in wait["message"], row
        show = ff("runs", "show", run_id, cwd=root)
        assert show.returncode == 0 and "held for its code: unknown workflow 'order'" in show.stdout, describe(show)
        assert "failed" not in show.stdout, describe(show)
        check = ff("check", cwd=root)  # and check says which run would not replay, and why
        assert check.returncode == 1 and f"run {run_id} (order, waiting): unknown workflow 'order'" in check.stdout, \
            describe(check)

        shutil.move(tmp_path / "order.py", module)  # the file is back: this resume re-checks by itself
        done = resume.wait_event(lambda e: e["type"] in ("run.completed", "run.failed"), timeout=20,
                                 what="the run to finish")
        assert done["type"] == "run.completed" and done["output"] == ["reserve", "bill"], done
        assert resume.finish() == 0, resume.stderr
        assert "re-checking 1 held run" in resume.stderr, resume.stderr
    assert listed(root, run_id)["status"] == "completed"


def test_a_module_that_fails_to_import_holds_its_runs_until_a_later_resume(tmp_path: Path) -> None:
    root = write_shop(tmp_path / "shop", V1)
    run_id = napping_run(root)
    release(root, V1.replace("async def order(run: Run, inp=None):", "async def order(run: Run, inp=None)"))

    with Live("resume", run_id, "--json", cwd=root) as resume:
        held = resume.wait_event(is_held, what="the hold")
        assert "SyntaxError" in held["message"] and "workflows/order.py" in held["message"], held
        assert "import failed" in resume.stderr and "held until it imports" in resume.stderr, resume.stderr
    # that resume is gone (killed); the fix comes later, and a new resume continues the run
    release(root, V1)
    result = ff("resume", run_id, "--json", cwd=root)
    assert result.returncode == 0, describe(result)
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert events[-1]["type"] == "run.completed" and events[-1]["output"] == ["reserve", "bill"]


def test_a_detached_run_held_in_the_background_worker_continues_when_the_file_returns(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLAREFLOW_WORKER_IDLE", "1")  # the worker leaves once the run is done
    root = write_shop(tmp_path / "shop", V1)
    module = root / "workflows" / "order.py"
    detached = ff("run", "order", "--detach", "--input", '{"nap": "2s"}', cwd=root)
    assert detached.returncode == 0, describe(detached)
    run_id = detached.stdout.split()[-1]
    shutil.move(module, tmp_path / "order.py")  # while the worker executes it

    def waits_for_code() -> bool:
        row = listed(root, run_id)
        return row["status"] == "waiting" and (row["waiting_for"] or [{}])[0].get("kind") == "code"

    wait_until(waits_for_code, 20, "the worker to hold the run")
    shutil.move(tmp_path / "order.py", module)
    wait_until(lambda: listed(root, run_id)["status"] == "completed", 20, "the run to complete")
    show = ff_json("runs", "show", run_id, "--json", cwd=root)
    assert show["output"] == ["reserve", "bill"], show
    wait_until(lambda: not (root / ".flareflow" / "state" / "worker.pid").exists(), 20, "the worker to exit")


def test_check_finds_a_divergence_the_run_is_held_and_a_patched_branch_lets_it_continue(tmp_path: Path) -> None:
    root = write_shop(tmp_path / "shop", V1)
    run_id = napping_run(root)
    export = ff("runs", "export", run_id, cwd=root)
    assert export.returncode == 0, describe(export)
    history = tmp_path / "history.json"
    history.write_text(export.stdout, encoding="utf-8")
    assert {s["step"]: s["pos"] for s in json.loads(export.stdout)["steps"]} == {"reserve#1": "0", "nap#1": "1"}

    release(root, V3)  # the change, unguarded
    check = ff("check", cwd=root)
    assert check.returncode == 1, describe(check)
    line = next(line for line in check.stdout.splitlines() if run_id in line)
    for needle in ("order", *V3_DIVERGENCE):
        assert needle in line, line
    from_file = ff("check", "--no-local", str(history), cwd=root)
    assert from_file.returncode == 1 and all(n in from_file.stdout for n in V3_DIVERGENCE), describe(from_file)

    with Live("resume", run_id, "--json", cwd=root) as resume:
        held = resume.wait_event(is_held, what="the hold")
        assert held["step"] == "nap#1" and held["divergence"]["new"]["name"] == "bill-early", held
        show = ff("runs", "show", run_id, cwd=root)
        assert show.returncode == 0 and "held for its code: replay diverged at position 1" in show.stdout, \
            describe(show)

        release(root, V2)  # the change behind run.patched: the held run takes the old path
        assert ff("check", cwd=root).returncode == 0  # (the run is still unfinished here, or just done)
        done = resume.wait_event(lambda e: e["type"] in ("run.completed", "run.failed"), timeout=20,
                                 what="the run to finish")
        assert done["type"] == "run.completed" and done["output"] == ["reserve", "bill"], done
        assert resume.finish() == 0, resume.stderr
    passing = ff("check", "--no-local", str(history), cwd=root)
    assert passing.returncode == 0 and "1 run(s)" in passing.stdout, describe(passing)

    # a run started on V2 takes the new path, and its replays too (the marker is recorded)
    fresh = ff("run", "order", "--json", "--input", '{"nap": "0s"}', cwd=root)
    assert fresh.returncode == 0, describe(fresh)
    last = json.loads(fresh.stdout.splitlines()[-1])
    assert last["output"] == ["reserve", "bill-early"], last
    steps = ff_json("runs", "show", last["run_id"], "--json", cwd=root)["steps"]
    assert [(s["step"], s["kind"]) for s in steps][:2] == [("reserve#1", "step"), ("patch:bill-first#1", "patch")]

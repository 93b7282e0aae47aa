"""Everything a user can get wrong ends as one ``error:`` line, a non-zero exit and untouched runs."""

from __future__ import annotations

import json
import signal
import subprocess
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from .helpers import (
    FAST_WORKFLOWS,
    RUN_ID,
    Live,
    assert_no_traceback,
    assert_one_error_line,
    copy_project,
    describe,
    ff,
    ff_json,
    parse_ndjson,
    run_status,
    settled,
    state_dir,
    stored,
    wait_until,
)


def _common_prefix(texts: list[str]) -> str:
    prefix = texts[0]
    for text in texts[1:]:
        while not text.startswith(prefix):
            prefix = prefix[:-1]
    return prefix


# -- a project with one finished run and two runs left waiting (as after Ctrl-C) ---------------------
def _leave_waiting(root: Path, workflow: str) -> str:
    with Live("run", workflow, "--json", cwd=root) as run:
        waiting = run.wait_event(lambda e: e["type"] == "run.waiting", what=f"{workflow} to wait")
        run_id = str(waiting["run_id"])
        wait_until(lambda: run_status(root, run_id) == "waiting", 5, f"{workflow} status 'waiting'", 0.05)
        run.proc.send_signal(signal.SIGINT)
        code = run.finish(timeout=10)
        assert code == 130, run.stdout + run.stderr
        assert "detached: the run is saved" in run.stderr
    return run_id


def _finish_quick(root: Path) -> str:
    result = ff("run", "quick", "--json", cwd=root)
    assert result.returncode == 0, describe(result)
    events = parse_ndjson(result.stdout)
    assert events[-1]["type"] == "run.completed" and events[-1]["output"] == {"total": 2}
    return str(events[0]["run_id"])


@pytest.fixture(scope="module")
def runs_project(scaffolded: tuple[Path, subprocess.CompletedProcess[str]],
                 tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    source, created = scaffolded
    assert created.returncode == 0, created.stderr
    root = copy_project(source, tmp_path_factory.mktemp("bad") / "demo")
    (root / "workflows" / "fast.py").write_text(FAST_WORKFLOWS)
    with ThreadPoolExecutor(3) as pool:
        quick = pool.submit(_finish_quick, root)
        asker = pool.submit(_leave_waiting, root, "asker")
        waiter = pool.submit(_leave_waiting, root, "waiter")
        ids = {"quick": quick.result(), "asker": asker.result(), "waiter": waiter.result()}
    ids["prefix"] = _common_prefix(list(ids.values()))
    assert ids["prefix"], ids
    baseline = settled(root)
    with ThreadPoolExecutor(4) as pool:
        listed = pool.submit(ff_json, "runs", "list", "--json", cwd=root)
        events = {name: pool.submit(ff, "runs", "events", ids[name], cwd=root) for name in ("quick", "asker")}
        views = {"list": listed.result(), **{name: f.result().stdout for name, f in events.items()}}
    assert {r["status"] for r in views["list"]} == {"completed", "waiting"}, views["list"]
    assert stored(root) == baseline
    return {"root": root, "ids": ids, "baseline": baseline, "views": views}


# -- cases -----------------------------------------------------------------------------------------
def _write(rel: str, text: str) -> Callable[[Path], None]:
    def apply(root: Path) -> None:
        (root / rel).write_text(text)

    return apply


def _settings(old: str, new: str) -> Callable[[Path], None]:
    def apply(root: Path) -> None:
        path = root / "pyproject.toml"
        text = path.read_text()
        assert old in text, (old, text)
        path.write_text(text.replace(old, new, 1))

    return apply


@dataclass
class Case:
    args: tuple[str, ...]
    needles: tuple[str, ...]
    breaks: Callable[[Path], None] | None = None
    code: int | None = None  # the exact exit code, where the CLI documents one (2 = usage error)


CASES = [
    # run: what to run and with what
    pytest.param(Case(("run", "nope"), ("unknown workflow 'nope'", "hello, onboarding, quick")), id="unknown-workflow"),
    pytest.param(Case(("run", "quick", "--input", "{bad"), ("--input is not valid JSON", "{bad"), code=2),
                 id="input-not-json"),
    pytest.param(Case(("run", "quick", "-i", "n"), ("-i expects key=value", "'n'"), code=2), id="item-without-equals"),
    pytest.param(Case(("run", "quick", "--input", "{}", "-i", "n=2"), ("either --input", "not both"), code=2),
                 id="input-and-items"),
    pytest.param(Case(("run", "onboarding"), ("onboarding", "requires an input")), id="missing-required-input"),
    # answers and events
    pytest.param(Case(("answer", "{asker}", '"nope"'), ("boolean",)), id="answer-fails-schema"),
    pytest.param(Case(("answer", "{asker}", "{bad"), ("VALUE_JSON is not valid JSON",), code=2), id="answer-not-json"),
    pytest.param(Case(("answer", "{asker}", "true", "--step", "nope"), ("no open question 'nope'",)),
                 id="answer-unknown-step"),
    pytest.param(Case(("answer", "{waiter}", "true"), ("not waiting for an answer",)), id="answer-nothing-asked"),
    pytest.param(Case(("answer", "{quick}", "true"), ("{quick}", "completed")), id="answer-finished-run"),
    pytest.param(Case(("send-event", "{quick}", "go", "{}"), ("{quick}", "completed")), id="event-finished-run"),
    pytest.param(Case(("send-event", "{waiter}", "go", "{bad"), ("PAYLOAD_JSON is not valid JSON",), code=2),
                 id="event-payload-not-json"),
    # runs
    pytest.param(Case(("runs", "show", "deadbeef"), ("no run 'deadbeef'",)), id="show-unknown-id"),
    pytest.param(Case(("runs", "show", "not-an-id"), ("no run 'not-an-id'", "hex")), id="show-malformed-id"),
    pytest.param(Case(("runs", "show", "{prefix}"), ("ambiguous", "{quick}")), id="show-ambiguous-prefix"),
    pytest.param(Case(("runs", "cancel", "{quick}"), ("{quick}", "completed")), id="cancel-finished-run"),
    pytest.param(Case(("resume", "deadbeef"), ("no run 'deadbeef'",)), id="resume-unknown-id"),
    pytest.param(Case(("runs", "list", "--status", "bogus"), ("status", "bogus"), code=2), id="list-unknown-status"),
    # usage errors caught by click, not by flareflow
    pytest.param(Case(("runs", "list", "--limit", "0"), ("--limit",), code=2), id="usage-bad-option-value"),
    pytest.param(Case(("frobnicate",), ("frobnicate",), code=2), id="usage-unknown-command"),
    # the project itself is broken
    pytest.param(Case(("run", "sync_flow"), ("sync_flow", "async def"),
                      breaks=_write("workflows/sync_flow.py", "from flareflow import workflow\n\n\n"
                                    "@workflow(\"sync_flow\")\ndef sync_flow(run):\n    return 1\n")),
                 id="workflow-not-async"),
    pytest.param(Case(("validate",), ("two workflows are named 'quick'", "fast.py", "again.py:4"),
                      breaks=_write("workflows/again.py", "from flareflow import workflow\n\n\n"
                                    "@workflow(\"quick\")\nasync def quick(run):\n    return 1\n")),
                 id="duplicate-workflow-name"),
    pytest.param(Case(("run", "broken"), ("broken.py:3", "import failed", "SyntaxError"),
                      breaks=_write("workflows/broken.py", "import asyncio\n\ndef oops(:\n    pass\n")),
                 id="module-syntax-error"),
    pytest.param(Case(("validate",), ("boom.py:4", "import failed", "RuntimeError: boom at import"),
                      breaks=_write("workflows/boom.py",
                                    "import os\n\nx = os.sep\nraise RuntimeError('boom at import')\n")),
                 id="module-raises-at-import"),
    pytest.param(Case(("validate",), ("needs.py:1", "ModuleNotFoundError", "no_such_dependency_xyz"),
                      breaks=_write("workflows/needs.py", "import no_such_dependency_xyz\n")),
                 id="module-missing-dependency"),
    pytest.param(Case(("run", "quick"), ("tool.flareflow.bogus", "unknown setting"),
                      breaks=_settings('workflows = ["workflows"]', 'workflows = ["workflows"]\nbogus = 1')),
                 id="settings-unknown-key"),
    pytest.param(Case(("runs", "list"), ("tool.flareflow.local.sync",),
                      breaks=_settings('sync = "normal"', "sync = 1")),
                 id="settings-sync-wrong-type"),
    pytest.param(Case(("run", "quick"), ("tool.flareflow.local.sync", "'normal' or 'full'"),
                      breaks=_settings('sync = "normal"', 'sync = "fast"')),
                 id="settings-sync-wrong-value"),
    pytest.param(Case(("validate",), ("tool.flareflow.workflows", "list"),
                      breaks=_settings('workflows = ["workflows"]', 'workflows = "workflows"')),
                 id="settings-workflows-not-a-list"),
    pytest.param(Case(("validate",), ("tool.flareflow.workflows", "nowhere/flows.py", "does not exist"),
                      breaks=_settings('workflows = ["workflows"]', 'workflows = ["nowhere/flows.py"]')),
                 id="settings-workflows-missing-file"),
    pytest.param(Case(("runs", "show", "{quick}"), ("pyproject.toml", "invalid TOML", "at line 15"),
                      breaks=_settings('[tool.flareflow.local]', '[tool.flareflow.local]\nstate_dir = = "x"')),
                 id="settings-invalid-toml"),
]


def _fill(text: str, ids: dict[str, str]) -> str:
    for name, value in ids.items():
        text = text.replace("{" + name + "}", value)
    return text


def _attempt(case: Case, source: Path, ids: dict[str, str], where: Path) -> dict[str, Any]:
    """Run one case on its own copy of the project: what the user saw, and the state before and after."""
    root = copy_project(source, where)
    if case.breaks is not None:
        case.breaks(root)
    before = stored(root)
    result = ff(*(_fill(a, ids) for a in case.args), cwd=root)
    return {"root": root, "result": result, "before": before, "after": stored(root)}


@pytest.fixture(scope="module")
def outcomes(runs_project: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """Every case at once, each in its own copy of the project (they are independent; this saves ~2/3)."""
    base = tmp_path_factory.mktemp("cases")
    with ThreadPoolExecutor(4) as pool:
        futures = {
            param.id: pool.submit(_attempt, param.values[0], runs_project["root"], runs_project["ids"], base / param.id)
            for param in CASES
        }
        return {name: future.result() for name, future in futures.items()}


@pytest.mark.parametrize("case", CASES)
def test_bad_input_is_one_error_line_and_changes_nothing(case: Case, request: pytest.FixtureRequest,
                                                         runs_project: dict[str, Any],
                                                         outcomes: dict[str, dict[str, Any]]) -> None:
    outcome = outcomes[request.node.callspec.id]
    ids = runs_project["ids"]
    result = outcome["result"]
    assert_one_error_line(result, *(_fill(n, ids) for n in case.needles))
    if case.code is not None:
        assert result.returncode == case.code, describe(result)
    assert outcome["before"] == runs_project["baseline"]  # breaking the project did not touch its runs...
    assert outcome["after"] == outcome["before"]  # ...and neither did the failed command


@pytest.mark.parametrize(("name", "target"), [("answer-fails-schema", "asker"), ("cancel-finished-run", "quick")])
def test_cli_views_of_the_runs_are_unchanged(name: str, target: str, runs_project: dict[str, Any],
                                             outcomes: dict[str, dict[str, Any]]) -> None:
    """After a refused command, `runs list --json` and the target's `runs events` read exactly as before it."""
    root, ids, views = outcomes[name]["root"], runs_project["ids"], runs_project["views"]
    with ThreadPoolExecutor(2) as pool:
        listed = pool.submit(ff_json, "runs", "list", "--json", cwd=root)
        events = pool.submit(ff, "runs", "events", ids[target], cwd=root)
        assert listed.result() == views["list"]
        assert events.result().stdout == views[target]


# -- a damaged run file ------------------------------------------------------------------------------
@pytest.fixture()
def damaged(runs_project: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
    """A copy of the project whose finished `quick` run file is overwritten with garbage."""
    root = copy_project(runs_project["root"], tmp_path / "damaged")
    bad_id = runs_project["ids"]["quick"]
    path = state_dir(root) / "runs" / f"{bad_id}.db"
    garbage = bytes(range(256)) * 16
    path.write_bytes(garbage)
    return {"root": root, "bad": bad_id, "path": path, "garbage": garbage, "before": stored(root),
            "ids": runs_project["ids"]}


def test_showing_a_damaged_run_is_one_error_line(damaged: dict[str, Any]) -> None:
    result = ff("runs", "show", damaged["bad"], cwd=damaged["root"])
    assert_one_error_line(result, f"{damaged['bad']}.db", "not a readable SQLite database")
    assert damaged["path"].read_bytes() == damaged["garbage"]  # left alone for the user to inspect
    assert stored(damaged["root"]) == damaged["before"]


def test_other_runs_stay_showable_next_to_a_damaged_one(damaged: dict[str, Any]) -> None:
    root, ids = damaged["root"], damaged["ids"]
    info = ff_json("runs", "show", ids["asker"], "--json", cwd=root)
    assert info["workflow"] == "asker" and info["status"] == "waiting"
    events = ff("runs", "events", ids["waiter"], cwd=root)
    assert events.returncode == 0, describe(events)
    assert [e["type"] for e in parse_ndjson(events.stdout)] == ["run.started", "run.waiting"]
    assert stored(root) == damaged["before"]


def test_runs_list_still_lists_the_other_runs(damaged: dict[str, Any]) -> None:
    """Regression: reconcile used to raise on the unreadable file, so no run could be listed."""
    root, ids = damaged["root"], damaged["ids"]
    result = ff("runs", "list", "--json", cwd=root)
    assert result.returncode == 0, describe(result)
    assert_no_traceback(result.stdout, result.stderr)
    listed = {row["id"] for row in json.loads(result.stdout)}
    assert {ids["asker"], ids["waiter"]} <= listed
    assert damaged["path"].read_bytes() == damaged["garbage"]


def test_detached_run_finishes_next_to_a_damaged_one(damaged: dict[str, Any]) -> None:
    """Regression: the background process used to die in reconcile on the damaged neighbour."""
    root = damaged["root"]
    result = ff("run", "quick", "--detach", cwd=root)
    assert result.returncode == 0, describe(result)
    run_id = result.stdout.strip()
    assert RUN_ID.match(run_id), describe(result)
    log = state_dir(root) / "worker.log"  # the background worker executes detached runs

    def outcome() -> str | None:
        status = run_status(root, run_id)
        if status in ("completed", "failed", "cancelled"):
            return status
        if log.exists() and "error:" in log.read_text():
            return "child failed: " + log.read_text().strip()
        return None

    assert wait_until(outcome, 10, f"detached run {run_id}", 0.1) == "completed"

"""``flareflow new``, ``workflows``, ``validate``, ``run hello`` (live, --json, --detach) and ``runs``."""

from __future__ import annotations

import json
import re
import subprocess
import time
import tomllib
from pathlib import Path
from typing import Any

import pytest

from flareflow.engine.events import EVENT_FIELDS, TERMINAL_EVENTS

from .helpers import (
    COMMON_FIELDS,
    ISO_AT,
    RUN_ID,
    Live,
    assert_no_traceback,
    assert_one_error_line,
    copy_project,
    describe,
    ff,
    ff_json,
    parse_ndjson,
    wait_until,
)

EXAMPLES = ("hello", "onboarding", "report")
HELLO_OUTPUT = {"greeting": "Hello, world!", "loud": "HELLO, WORLD!", "letters": 10,
                "weather": {"sky": "clear", "celsius": 21}}
STEP_ROW = re.compile(r"^ *(\S.*?#\d+) +(step|sleep|event|input) +(\w+) +(\d*) ", re.M)
TEMPLATE_FILES = ("pyproject.toml", ".gitignore", "README.md", "workflows/hello.py", "workflows/onboarding.py",
                  "workflows/report.py")


# -- new ---------------------------------------------------------------------------------------
def test_new_creates_the_project(scaffolded: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    root, result = scaffolded
    assert result.returncode == 0, describe(result)
    assert result.stderr == ""
    for rel in TEMPLATE_FILES:
        assert (root / rel).is_file(), rel
        assert f"created {rel}" in result.stdout, rel
    assert "flareflow run hello" in result.stdout
    pyproject = tomllib.loads((root / "pyproject.toml").read_text())
    assert pyproject["project"]["name"] == "demo"
    assert pyproject["tool"]["flareflow"]["workflows"] == ["workflows"]
    assert (root / "README.md").read_text().startswith("# demo\n")
    assert ".flareflow/" in (root / ".gitignore").read_text().splitlines()
    assert "__PROJECT_NAME__" not in "".join((root / rel).read_text() for rel in TEMPLATE_FILES)
    assert not (root / "workflows" / "__pycache__").exists()


def test_new_refuses_a_non_empty_folder(tmp_path: Path) -> None:
    target = tmp_path / "mine"
    target.mkdir()
    (target / "pyproject.toml").write_text("# my own\n")
    (target / "notes.txt").write_text("keep me\n")
    result = ff("new", "mine", cwd=tmp_path)
    assert_one_error_line(result, "mine", "not empty", "--force")
    assert sorted(p.name for p in target.iterdir()) == ["notes.txt", "pyproject.toml"]
    assert (target / "pyproject.toml").read_text() == "# my own\n"
    assert (target / "notes.txt").read_text() == "keep me\n"


def test_new_force_adds_missing_files_and_keeps_existing_ones(tmp_path: Path) -> None:
    target = tmp_path / "mine"
    target.mkdir()
    (target / "pyproject.toml").write_text("# my own\n")
    result = ff("new", "mine", "--force", cwd=tmp_path)
    assert result.returncode == 0, describe(result)
    assert "kept    pyproject.toml (exists)" in result.stdout
    assert (target / "pyproject.toml").read_text() == "# my own\n"
    assert (target / "workflows" / "hello.py").is_file()


def test_new_onto_a_file_is_one_error_line(tmp_path: Path) -> None:
    (tmp_path / "taken").write_text("x")
    assert_one_error_line(ff("new", "taken", cwd=tmp_path), "taken", "not a folder")
    assert (tmp_path / "taken").read_text() == "x"


# -- workflows / validate ------------------------------------------------------------------------
def test_workflows_lists_the_examples(project: Path) -> None:
    result = ff("workflows", cwd=project)
    assert result.returncode == 0, describe(result)
    table, _, fires = result.stdout.partition("\n\n")  # the table, then each schedule's next fire times
    rows = {line.split()[0]: line for line in table.splitlines()[1:] if line.strip()}
    assert sorted(rows) == sorted(EXAMPLES)
    assert fires.startswith("Next fire times:") and "report: 20" in fires
    assert "required" in rows["onboarding"] and "optional" in rows["hello"]
    assert "0 9 * * 1" in rows["report"]
    manifest = ff_json("workflows", "--json", cwd=project / "workflows")  # found from a subfolder too
    assert "hello" in json.dumps(manifest) and "report" in json.dumps(manifest)


def test_validate_names_the_examples(project: Path) -> None:
    result = ff("validate", cwd=project)
    assert result.returncode == 0, describe(result)
    assert result.stdout.strip().endswith("3 workflow(s): hello, onboarding, report")
    assert result.stderr == ""


# -- run hello three ways, side by side to save time ---------------------------------------------
@pytest.fixture(scope="module")
def hello_runs(scaffolded: tuple[Path, subprocess.CompletedProcess[str]],
               tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    source, created = scaffolded
    assert created.returncode == 0, created.stderr
    root = copy_project(source, tmp_path_factory.mktemp("hello") / "demo")
    started = time.monotonic()
    detach = ff("run", "hello", "--detach", cwd=root)
    detach_seconds = time.monotonic() - started
    with Live("run", "hello", cwd=root) as live, Live("run", "hello", "--json", cwd=root) as as_json:
        live_code = live.finish(timeout=30)
        json_code = as_json.finish(timeout=30)
        return {"root": root, "detach": detach, "detach_seconds": detach_seconds,
                "live": (live_code, live.stdout, live.stderr), "json": (json_code, as_json.stdout, as_json.stderr)}


def test_run_hello_streams_steps_and_completes(hello_runs: dict[str, Any]) -> None:
    code, out, err = hello_runs["live"]
    assert code == 0, out + err
    assert err == ""
    lines = out.splitlines()
    assert lines[0].startswith("▶ hello  run ")
    for step in ("greet", "fetch weather", "count letters", "shout"):
        assert any(line.strip().startswith(f"✓ {step}") for line in lines), (step, out)
    assert any(line.strip().startswith("↻ fetch weather  attempt 1 failed: ConnectionError") for line in lines)
    assert any(line.strip().startswith("⏸ pause: sleeping") for line in lines)
    assert any(line.startswith("✔ completed in ") for line in lines), out
    done = next(i for i, line in enumerate(lines) if line.startswith("✔ completed"))
    assert json.loads("\n".join(lines[done + 1:])) == HELLO_OUTPUT


def test_run_hello_json_prints_only_wire_events(hello_runs: dict[str, Any]) -> None:
    code, out, err = hello_runs["json"]
    assert code == 0, out + err
    assert err == ""
    events = parse_ndjson(out)
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    run_ids = {e["run_id"] for e in events}
    assert len(run_ids) == 1 and RUN_ID.match(run_ids.pop())
    for event in events:
        assert tuple(event)[:4] == COMMON_FIELDS, event
        assert event["type"] in EVENT_FIELDS, event
        assert ISO_AT.match(event["at"]), event
        missing = set(EVENT_FIELDS[event["type"]]) - set(event)
        assert not missing, (missing, event)
    types = [e["type"] for e in events]
    assert types[0] == "run.started" and types[-1] == "run.completed"
    assert not TERMINAL_EVENTS & set(types[:-1])
    assert {"step.retrying", "run.waiting", "step.completed"} <= set(types)
    assert events[-1]["output"] == HELLO_OUTPUT
    # what was streamed is what was stored
    stored = parse_ndjson(ff("runs", "events", events[0]["run_id"], cwd=hello_runs["root"]).stdout)
    assert stored == events


def test_run_detach_prints_the_id_and_finishes_in_the_background(hello_runs: dict[str, Any]) -> None:
    result = hello_runs["detach"]
    assert result.returncode == 0, describe(result)
    run_id = result.stdout.strip()
    assert RUN_ID.match(run_id), describe(result)
    assert result.stderr == ""
    assert hello_runs["detach_seconds"] < 10  # it does not wait for the ~2.5 s run

    def finished() -> dict[str, Any] | None:
        info = ff_json("runs", "show", run_id, "--json", cwd=hello_runs["root"])
        return info if info["status"] in ("completed", "failed", "cancelled") else None

    info = wait_until(finished, 15, f"detached run {run_id} to finish", interval=0.5)
    assert info["status"] == "completed", info
    assert info["output"] == HELLO_OUTPUT
    assert info["events"][-1]["type"] == "run.completed"


def test_runs_list_and_show(hello_runs: dict[str, Any]) -> None:
    root = hello_runs["root"]
    detached = hello_runs["detach"].stdout.strip()
    wait_until(lambda: ff_json("runs", "show", detached, "--json", cwd=root)["status"] == "completed", 15,
               "the detached run")
    rows = ff_json("runs", "list", "--json", cwd=root)
    assert len(rows) == 3
    assert {r["workflow"] for r in rows} == {"hello"} and {r["status"] for r in rows} == {"completed"}
    assert [r["created_at"] for r in rows] == sorted((r["created_at"] for r in rows), reverse=True)

    listing = ff("runs", "list", cwd=root)
    assert listing.returncode == 0, describe(listing)
    for row in rows:
        assert any(line.split()[:3] == [row["id"], "hello", "completed"] for line in listing.stdout.splitlines())

    run_id = rows[0]["id"]
    shown = ff("runs", "show", run_id[:12], cwd=root)  # a unique prefix is enough
    assert shown.returncode == 0, describe(shown)
    assert_no_traceback(shown.stdout, shown.stderr)
    text = shown.stdout
    assert f"run {run_id}  hello  status completed" in text
    assert f"output {json.dumps(HELLO_OUTPUT)}" in text
    assert 'state  {"greeting": "Hello, world!", "done": true}' in text
    steps = {m[1]: (m[2], m[3], m[4]) for m in STEP_ROW.finditer(text)}
    assert steps["greet#1"] == ("step", "completed", "1")
    assert steps["fetch weather#1"] == ("step", "completed", "2")
    assert steps["pause#1"] == ("sleep", "completed", "")
    assert set(steps) == {"greet#1", "fetch weather#1", "pause#1", "count letters#1", "shout#1"}
    info = ff_json("runs", "show", run_id, "--json", cwd=root)
    assert f"events ({len(info['events'])})" in text
    for event in info["events"]:
        assert any(line.split()[:2] == [str(event["seq"]), event["at"]] for line in text.splitlines())

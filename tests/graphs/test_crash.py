"""A SIGKILL in the middle of a graph run: ``flareflow resume`` finishes it and no task that had
completed runs again (each task appends to a side-effect file the test reads); a run whose graph file
went away is held, not failed, and continues once the file is back."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path
from typing import Any

from tests.cli.helpers import FLAREFLOW, cli_env, describe, ff, wait_until

from .helpers import make_project

TASKS = ["t1", "t2", "t3", "t4", "t5", "t6"]


def test_sigkill_mid_graph_then_resume_reruns_no_completed_task(tmp_path: Path) -> None:
    effects = tmp_path / "effects.log"

    def task(tid: str, deps: list[str]) -> dict[str, object]:
        return {"id": tid, "type": "shell", "depends_on": deps,
                "command": f"echo start {tid} >> {effects}; sleep 0.4; echo end {tid} >> {effects}; echo {tid}"}

    chain = [task("t1", []), task("t2", ["t1"]), task("t3", ["t1"]), task("t4", ["t2", "t3"]),
             task("t5", ["t4"]), task("t6", ["t5"])]
    root = make_project(tmp_path / "proj", {"workflows/chain.json": {"name": "chain", "tasks": chain}})
    proc = subprocess.Popen([*FLAREFLOW, "run", "chain", "--json"], cwd=root, env=cli_env(), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    assert proc.stdout is not None
    run_id = json.loads(proc.stdout.readline())["run_id"]
    completed = 0
    for line in proc.stdout:
        event = json.loads(line)
        if event["type"] == "step.completed":
            completed += 1
            if completed == 3:  # t1, t2 and t3 are done; t4 is about to start
                break
    wait_until(lambda: "start t4" in effects.read_text(), 10, "t4 to start")
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(10)
    before = effects.read_text().splitlines()
    recorded = ff("runs", "events", run_id, cwd=root)
    assert recorded.returncode == 0, describe(recorded)
    done_before = {json.loads(line)["task"] for line in recorded.stdout.splitlines()
                   if json.loads(line)["type"] == "step.completed"}
    assert {"t1", "t2", "t3"} <= done_before and "t6" not in done_before

    resumed = ff("resume", run_id, "--json", cwd=root, timeout=60)
    assert resumed.returncode == 0, describe(resumed)
    final = json.loads(resumed.stdout.splitlines()[-1])
    assert final["type"] == "run.completed", final
    assert final["output"]["ran"] and sorted(final["output"]["ran"]) == TASKS
    after = effects.read_text().splitlines()[len(before):]
    for tid in done_before:
        assert f"start {tid}" not in after, f"{tid} ran again after the resume:\n{after}"
    starts = [line.split()[1] for line in effects.read_text().splitlines() if line.startswith("start")]
    assert sorted(set(starts)) == TASKS
    assert all(starts.count(t) == 1 for t in done_before)


def test_a_graph_run_held_for_its_missing_file_continues_once_the_file_is_back(tmp_path: Path) -> None:
    graph_file = "workflows/gate.yaml"
    text = "name: gate\ntasks:\n  - {id: go, type: wait_event, event: go}\n" \
           "  - {id: after, type: shell, command: echo through, depends_on: [go]}\n"
    root = make_project(tmp_path / "proj", {graph_file: text, "workflows/other.yaml":
                                            "name: other\ntasks: [{id: a, type: sleep, duration: 0}]\n"})
    started = ff("run", "gate", "--detach", cwd=root)
    assert started.returncode == 0, describe(started)
    run_id = started.stdout.strip().splitlines()[-1]

    def show() -> dict[str, Any]:
        shown = ff("runs", "show", run_id, "--json", cwd=root)
        return dict(json.loads(shown.stdout)) if shown.returncode == 0 else {}

    def status() -> str:
        return str(show().get("status", ""))

    def held() -> bool:
        info = show()
        return any(w["kind"] == "code" for w in info.get("waiting", ())) or info.get("status") != "waiting"

    wait_until(lambda: status() == "waiting", 20, "the run to wait for its event")
    log = root / ".flareflow" / "state" / "worker.log"

    def reloads() -> int:
        return log.read_text(encoding="utf-8").count("workflow code changed") if log.exists() else 0

    before = reloads()
    (root / graph_file).rename(root / "gate.yaml.away")  # the background worker re-imports: gate is gone
    wait_until(lambda: reloads() > before, 30,
               "the worker to say it reloaded the workflows")
    assert ff("send-event", run_id, "go", "--quiet", cwd=root).returncode == 0
    wait_until(held, 30, "the worker to take the event and hold the run for its file")
    assert status() == "waiting"  # held for its code, not failed
    (root / "gate.yaml.away").rename(root / graph_file)
    wait_until(lambda: status() == "completed", 30, "the run to continue once its file is back")

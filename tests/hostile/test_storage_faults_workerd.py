"""Storage faults at the coordinator's named commit sites, in the Durable Object on real workerd.

The local runtime's fault tests (tests/runtime/test_storage_faults.py) drive every site x point; this
proves the Durable Object shell handles the same refusals the same way on workerd: an activation
whose commit fails is abandoned, the object's alarm retries it with backoff, and the run completes
with the fault-free output and a gapless log, never ``failed``.

The fault injector is the one the shell takes as ``RunObjectBase.faults``; the build's entry gets it
appended (the only thing this test does that a user's build does not: it injects the faults).
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.api.hosts import clean_env, flareflow_executable, make_server
from tests.api.project import write_project

from .helpers import client, events, finished, start

INJECT = '''

# -- appended by tests/hostile/test_storage_faults_workerd.py: storage faults in this isolate --
from flareflow.durable_objects.faults import Faults as _Faults

_faults = _Faults()
_faults.fail("step.complete", "commit", times=1)   # the COMMIT of a step's result fails
_faults.fail("wait.begin", "after", times=1)       # committed, then the caller sees an error
RunObject.faults = _faults
'''


def write_faulty_project(root: Path) -> Path:
    """The API test project, built by `flareflow build`, its entry given the fault injector."""
    project = write_project(root)
    done = subprocess.run([flareflow_executable(), "build", "-C", str(project)], capture_output=True, text=True,
                          env=clean_env(), timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    entry = project / ".flareflow" / "build" / "src" / "entry.py"
    entry.write_text(entry.read_text() + INJECT)  # `flareflow serve` finds the build up to date
    return project


@pytest.fixture(scope="module")
def faulty(tmp_path_factory: pytest.TempPathFactory):
    srv = make_server("workerd", tmp_path_factory.mktemp("faults-workerd"), write_faulty_project)
    yield srv
    srv.stop()


def test_refused_commits_are_retried_and_the_run_completes_on_workerd(faulty: Any) -> None:
    with client(faulty) as http:
        first = start(http, "steps", {"n": 3})  # meets the refused step.complete COMMIT
        run = finished(http, first, timeout=60)
        log = events(http, first)
        second = start(http, "sleepy")  # meets the ambiguous wait.begin (committed, then an error)
        slept = finished(http, second, timeout=60)
        slept_log = events(http, second)
    assert run["status"] == "completed", (run, faulty.output()[-3000:])
    assert run["output"] == {"n": 3, "total": 3}
    assert slept["status"] == "completed" and slept["output"] == {"sum": 3}, slept
    for evs in (log, slept_log):
        types = [e["type"] for e in evs]
        assert "run.failed" not in types
        assert [e["seq"] for e in evs] == list(range(1, len(evs) + 1)), types  # gapless
        completed = [e["step"] for e in evs if e["type"] == "step.completed"]
        assert len(completed) == len(set(completed)), types  # each result committed once
    assert len([e for e in log if e["type"] == "step.completed"]) == 3
    # the fault fired: the refused completion's step ran again after the backoff (at-least-once)
    started = [e["step"] for e in log if e["type"] == "step.started"]
    assert len(started) == 4 and len(set(started)) == 3, started
    assert [e["type"] for e in slept_log].count("run.waiting") == 1  # the ambiguous commit stood, once

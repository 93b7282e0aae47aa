"""The number of runs on disk does not matter to ``flareflow serve --local`` (issue #10 item 1).

Servers run as subprocesses under a lowered ``ulimit -n`` (RLIMIT_NOFILE via ``preexec_fn``); their
descriptors are counted in ``/proc/PID/fd``. Before the fix, start-up opened every run's database and
kept about three descriptors per run: 200 finished runs held 611 descriptors, and 1,000 runs under
``ulimit -n 256`` left 919 runs "not a readable SQLite database" and ``POST /runs`` answering 500.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from flareflow.local.budget import FDS_PER_RUN, open_budget

from .runs import make_runs
from .servers import client, fds, project, server, stderr

LIMIT = 256
FINISHED = 1_200


@pytest.fixture(scope="module")
def many(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project with 1,200 finished runs (and one run waiting for an event)."""
    proj = project(tmp_path_factory.mktemp("many"))
    make_runs(proj, finished=FINISHED, waiting=1)
    return proj


@pytest.fixture(scope="module")
def few(tmp_path_factory: pytest.TempPathFactory) -> Path:
    proj = project(tmp_path_factory.mktemp("few"))
    make_runs(proj, finished=10, waiting=1)
    return proj


def _wait(http: httpx.Client, run_id: str, status: str = "completed", timeout: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        run: dict[str, Any] = http.get(f"/runs/{run_id}").json()
        if run.get("status") == status or time.monotonic() > deadline:
            return run
        time.sleep(0.05)


def _start_measure(proj: Path, logs: Path) -> tuple[int, int, str]:
    """Start under ``ulimit -n 256``; descriptors after start and after one run; stderr."""
    srv = server(proj, logs, nofile=LIMIT).start()
    try:
        at_start = fds(srv)
        with client(srv) as http:
            created = http.post("/runs", json={"workflow": "steps", "input": {"n": 2}})
            assert created.status_code == 201, created.text
            assert _wait(http, created.json()["id"])["output"] == {"n": 2, "total": 1}
            assert http.get("/health").status_code == 200
        after = fds(srv)
    finally:
        srv.stop()
    return at_start, after, stderr(srv)


def test_a_thousand_finished_runs_cost_no_descriptors_at_start(many, few, tmp_path):
    at_start, after, err = _start_measure(many, tmp_path / "many")
    few_start, few_after, _ = _start_measure(few, tmp_path / "few")
    print(f"fds under ulimit -n {LIMIT}: {FINISHED + 1} runs on disk -> {at_start} at start, {after} after a run; "
          f"11 runs -> {few_start}, {few_after}")
    assert "Traceback" not in err and "not a readable" not in err and "Too many open files" not in err, err[-2000:]
    # one waiting run is resumed (opened, then idle); the finished ones are never opened. The count is
    # a snapshot of a live server: allow the descriptor or two a keep-alive or a WAL file may hold at
    # that instant, far below the ~3 per run that opening the finished runs would cost
    assert abs(at_start - few_start) <= 2, (at_start, few_start)
    assert abs(after - few_after) <= 2, (after, few_after)
    assert at_start < 40, at_start


def test_runs_beyond_the_open_budget_all_finish_with_bounded_descriptors(tmp_path):
    """300 waiting runs resumed at start and 60 new runs at once under ``ulimit -n 256``: at most
    `open_budget` (32 here) run databases are open at any time, and every run finishes."""
    proj = project(tmp_path)
    waiting = make_runs(proj, waiting=300)
    budget = open_budget(LIMIT)
    assert budget == 32
    srv = server(proj, tmp_path / "logs", nofile=LIMIT).start()
    try:
        baseline = 20  # the interpreter, uvicorn, the index, the lock file, the loop
        peak = fds(srv)
        with client(srv) as http:
            deadline = time.monotonic() + 20
            while len(http.get("/runs", params={"status": "waiting", "limit": 500}).json()["runs"]) < 300:
                assert time.monotonic() < deadline, "the 300 runs were not all resumed to their wait"
                peak = max(peak, fds(srv))
                time.sleep(0.05)
            new = [http.post("/runs", json={"workflow": "steps", "input": {"n": 5}}).json()["id"] for _ in range(60)]
            for run_id in waiting[:100]:
                assert http.post(f"/runs/{run_id}/events", json={"type": "go"}).status_code == 202
                assert http.post(f"/runs/{run_id}/input", json={"value": True}).status_code == 202
                peak = max(peak, fds(srv))
            for run_id in new:
                assert _wait(http, run_id)["output"] == {"n": 5, "total": 10}
            for run_id in waiting[:100]:
                assert _wait(http, run_id)["output"] == {"event": None, "ok": True}
            peak = max(peak, fds(srv))
            assert len(http.get("/runs", params={"status": "waiting", "limit": 500}).json()["runs"]) == 200
    finally:
        srv.stop()
    print(f"fds under ulimit -n {LIMIT}, 360 runs: peak {peak} (budget {budget} runs x {FDS_PER_RUN})")
    assert peak <= baseline + budget * FDS_PER_RUN + 8, peak
    assert "Traceback" not in stderr(srv)

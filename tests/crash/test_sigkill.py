"""Crash tests: SIGKILL real ``flareflow`` processes mid-run, resume, and check nothing completed ran twice.

Setup. Each test writes a throwaway project (``pyproject.toml`` with an empty ``[tool.flareflow]`` table, so
default settings: sync "normal") holding ``crashy_workflow.py`` as ``workflows/crashy.py``: six sequential
steps, a parallel pair (``pa``, ``pb``), a durable ``run.sleep("nap", "300ms")``, six more steps; 14 steps in
all. Each step appends ``"<step> <pid>"`` to a side-effect file outside the database (``$CRASHY_EFFECTS``,
O_APPEND + fsync) *before* sleeping 80-150 ms, so an interrupted attempt leaves its mark. The test starts
``flareflow run crashy --json -C PROJECT`` (the console script next to ``sys.executable``), reads its NDJSON
line by line and SIGKILLs it on a cue, then ``flareflow resume RUN_ID --json``, killed on the next cue, and
so on; one last resume runs the run to its end. Between processes (none alive) the test reads the run's
stored log read-only from ``runs/<id>.db``, which attributes each event to the process that committed it.

Kill points tried (`SCHEDULES`, 4 kills per run, plus the concurrent case):
  * right after the k-th ``step.completed`` (the next step has usually begun: its side effect is written);
  * right after a ``step.started`` (mid-step; the side effect is already fsynced, the result is not);
  * while a resume is replaying: as soon as it has re-printed the stored log (sometimes before it committed
    anything, sometimes just after it committed the next ``step.started``);
  * inside the parallel pair: after both started, and between the pair's two commits (``pb`` completed,
    ``pa`` still running);
  * during the durable nap: right at ``run.waiting`` and 100 ms into it (the process is idle, status waiting);
  * right after the last step's ``step.completed``: ``run.completed`` is sometimes committed before the kill
    lands (then the last resume answers "already completed"), sometimes not;
  * two ``flareflow run`` processes of the same project at once (lanes a, b: separate side-effect files),
    killed at their first ``step.started`` / between the pair's commits; then a plain ``flareflow resume``
    (no id) SIGKILLed once both runs made progress; a second plain ``flareflow resume`` finishes both; a
    third says "nothing to resume".

Checked after the last resume (``flareflow runs events`` NDJSON and ``flareflow runs show --json``):
  * seqs are exactly 1..N; one ``run.started`` (first), one ``run.completed`` (last); no failure or retry;
    every step key has exactly one ``step.completed``; its ``step.started`` attempts are 1..k, all before it,
    and the completing attempt is the last; the nap has exactly one ``run.waiting``;
  * every event any process printed is byte-for-byte the stored one and was stored before the next process
    started (printed => durable); each snapshot of the log is a prefix of the final log;
  * side effects: every step ran (at least) in the process that committed its ``step.completed``; a process
    ran a step at most as often as it committed ``step.started`` for it; **no process after the one that
    committed a step's ``step.completed`` ran that step again**, and no step ran in a process started after
    its ``step.completed`` was printed;
  * output, final state (also rebuilt by applying every event's JSON patch) and each step's result equal
    those of an uninterrupted run.

What survived: everything above, in every schedule, over ~35 full runs of this file (many on a loaded
machine). Typical re-executions (interrupted attempts only, each with its own ``step.started``): "completions"
s04 x3-4; "mid-steps" s02 x2, pa x3, pb x2, s10 x2; "nap-and-finish" s08 x2, s09 x2. No completed step ever
re-ran, no event was lost, duplicated or re-numbered. The killed-mid-replay resume and the kill between the
parallel pair's commits are handled like any other crash.

Found on the way (not a crash-safety bug; see ``wal_switch_race.py``): two processes opening a *fresh*
``index.db`` at the same instant can fail in ``SqliteSql.__init__`` (``PRAGMA journal_mode = WAL`` returns
SQLITE_BUSY at once, bypassing ``busy_timeout``): in about 1 of 12 early runs of the concurrent test, one of
the two ``flareflow run`` died at start-up with "index.db: not a readable SQLite database (database is
locked)". Fixed (the WAL switch is retried); this test now starts both runs at the same instant again.

Time: ~21-25 s on an idle 2-CPU machine (most of it is ~0.45 s of CLI start-up per process, ~26 processes).
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from flareflow.engine.jsonpatch import apply

from .harness import PROCESS_TIMEOUT, REPLAYED, CrashProject, Kill, Live, Proc, Trace, crash_and_resume, drive

#: The steps of ``crashy_workflow.py`` (not imported here: that would register "crashy" in this process).
STEP_NAMES = [*(f"s{i:02d}" for i in range(1, 7)), "pa", "pb", *(f"s{i:02d}" for i in range(7, 13))]
STEP_KEYS = [f"{name}#1" for name in STEP_NAMES]

#: Kill cues, one per process: the first kills ``flareflow run``, the others successive ``flareflow resume ID``;
#: one more resume then runs the run to its end. Cues count only events the process itself committed.
SCHEDULES: dict[str, list[Kill]] = {
    # after the 3rd completion; while replaying (right after re-printing the stored log); mid-step right after a
    # restart; asleep in the durable nap
    "completions": [Kill("step.completed", nth=3), Kill(REPLAYED), Kill("step.started"), Kill("run.waiting")],
    # always mid-step: in s02, in the parallel pair, between the pair's two commits (pb done, pa running), in s10
    "mid-steps": [Kill("step.started", name="s02"), Kill("step.started", name="pa"),
                  Kill("step.completed", name="pb"), Kill("step.started", name="s10")],
    # 100 ms into the 300 ms nap; right after the first step past it; mid s09; right after the last step
    "nap-and-finish": [Kill("run.waiting", delay=0.1), Kill("step.completed"), Kill("step.started", name="s09"),
                       Kill("step.completed", name="s12")],
}


def check_run(project: CrashProject, trace: Trace, baseline: dict[str, Any] | None,
              lane: str | None = None) -> dict[str, Any]:
    """Every invariant of a finished run that may have been killed any number of times."""
    story = trace.story()
    events, info = project.inspect(trace.run_id)
    n = len(events)

    # -- the stored log: gapless, no duplicates, one start, one end, each step completed once
    assert [e["seq"] for e in events] == list(range(1, n + 1)), story
    types = Counter(e["type"] for e in events)
    assert events[0]["type"] == "run.started" and types["run.started"] == 1, story
    assert events[-1]["type"] == "run.completed" and types["run.completed"] == 1, story
    assert not (types["run.failed"] or types["step.failed"] or types["step.retrying"]), story
    completed: dict[str, dict[str, Any]] = {}
    for e in events:
        if e["type"] == "step.completed":
            assert e["step"] not in completed, f"{e['step']} completed twice: {story}"
            completed[e["step"]] = e
    assert sorted(completed) == sorted(STEP_KEYS), story
    waits = [e for e in events if e["type"] == "run.waiting"]
    assert [w["step"] for w in waits] == ["nap#1"], f"nap waited {len(waits)} times: {story}"
    starts = {key: [e for e in events if e["type"] == "step.started" and e["step"] == key] for key in STEP_KEYS}
    for key, tries in starts.items():
        assert [t["attempt"] for t in tries] == list(range(1, len(tries) + 1)), f"{key}: {tries}"
        assert all(t["seq"] < completed[key]["seq"] for t in tries), f"{key} started after it completed: {story}"
        assert completed[key]["attempt"] == len(tries), key

    # -- what the processes printed was durable: identical in the final log, stored before the next process
    by_seq = {e["seq"]: e for e in events}
    for k, proc in enumerate(trace.procs):
        for _, e in proc.printed:
            assert by_seq.get(e["seq"]) == e, f"printed {e} but stored {by_seq.get(e['seq'])}: {story}"
        stored_after = trace.before[k + 1] if k + 1 < len(trace.procs) else n
        printed_max = max((e["seq"] for _, e in proc.printed), default=0)
        assert printed_max <= stored_after, f"process #{k} printed seq {printed_max}, lost on kill: {story}"
    for snapshot in trace.snapshots:  # committed events never change or vanish
        assert snapshot == [(e["seq"], e["type"], e.get("step")) for e in events[:len(snapshot)]], story

    # -- side effects outside the database: no completed step ever ran again
    lines = project.effect_lines(lane)
    pid_index = trace.pid_index()
    assert {pid for _, pid in lines} <= set(pid_index), f"side effect from an unknown process: {lines}"
    assert {name for name, _ in lines} == set(STEP_NAMES), lines
    first_printed: dict[str, float] = {}
    for proc in trace.procs:
        for seen_at, e in proc.printed:
            if e["type"] == "step.completed":
                first_printed.setdefault(e["step"], seen_at)
    reruns = 0
    for key in STEP_KEYS:
        name = key.split("#")[0]
        owner = trace.committer(completed[key]["seq"])
        assert trace.committer(starts[key][-1]["seq"]) == owner, f"{key}: completing attempt split: {story}"
        started_by = Counter(trace.committer(t["seq"]) for t in starts[key])
        ran_by = Counter(pid_index[pid] for step, pid in lines if step == name)
        assert ran_by[owner] >= 1, f"{key}: the completing attempt left no side effect: {story}"
        for k, count in ran_by.items():
            assert k <= owner, (f"{key} completed (seq {completed[key]['seq']}) in process #{owner} "
                                f"but ran again in process #{k}: {story}")
            assert count <= started_by[k], f"{key}: {count} side effects, {started_by[k]} step.started in #{k}"
        if key in first_printed:
            for step, pid in lines:
                if step == name:
                    assert trace.procs[pid_index[pid]].started_at < first_printed[key], (
                        f"{key}: side effect by pid {pid}, started after its step.completed was printed")
        reruns += sum(ran_by.values()) - 1

    # -- the same result as an uninterrupted run
    assert info["status"] == "completed", info
    assert info["events"] == events
    assert info["last_seq"] == n
    assert info["output"] == events[-1]["output"]
    assert info["output"]["steps"] == STEP_NAMES
    state: Any = {}
    for e in events:
        if "patch" in e:
            state = apply(state, e["patch"])
    assert state == info["state"], "the patches do not add up to the stored state"
    steps = {s["step"]: s for s in info["steps"]}
    assert all(s["status"] == "completed" for s in steps.values()), info["steps"]
    assert {key: steps[key]["attempts"] for key in STEP_KEYS} == {key: len(starts[key]) for key in STEP_KEYS}
    results = {key: completed[key]["result"] for key in STEP_KEYS}
    if baseline is not None:
        assert info["output"] == baseline["output"], story
        assert info["state"] == baseline["state"], story
        assert results == baseline["results"], story
    kills = sum(p.killed_at is not None for p in trace.procs)
    return {"output": info["output"], "state": info["state"], "results": results, "kills": kills,
            "reruns": reruns, "events": n}


@pytest.fixture
def project(tmp_path: Path) -> Iterator[CrashProject]:
    crash_project = CrashProject(tmp_path)
    yield crash_project
    crash_project.kill_stragglers()


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The uninterrupted run: one ``flareflow run`` process, no kill."""
    project = CrashProject(tmp_path_factory.mktemp("baseline"))
    try:
        trace = crash_and_resume(project, [])
        summary = check_run(project, trace, None)
        assert summary["reruns"] == 0 and len(project.effect_lines()) == len(STEP_NAMES)
        yield summary
    finally:
        project.kill_stragglers()


@pytest.mark.parametrize("schedule", list(SCHEDULES))
def test_sigkill_then_resume_runs_each_completed_step_once(project: CrashProject, baseline: dict[str, Any],
                                                          schedule: str) -> None:
    cues = SCHEDULES[schedule]
    trace = crash_and_resume(project, cues)
    summary = check_run(project, trace, baseline)
    assert summary["kills"] == len(cues) >= 3, trace.story()


def _wait_for_lines(project: CrashProject, want: dict[str, int], live: Live) -> None:
    deadline = time.monotonic() + PROCESS_TIMEOUT
    while any(len(project.effect_lines(lane)) < count for lane, count in want.items()):
        assert live.popen.poll() is None, f"resume-all exited early: {live.stderr()}"
        assert time.monotonic() < deadline, "resume-all made no progress"
        time.sleep(0.005)


def test_plain_resume_continues_every_killed_run(project: CrashProject, baseline: dict[str, Any]) -> None:
    """Two concurrent ``flareflow run`` killed; ``flareflow resume`` (no id) killed once too; a second finishes both."""
    cues = {"a": Kill("step.started"), "b": Kill("step.completed", name="pb")}
    traces = {lane: Trace() for lane in cues}
    lives: dict[str, Live] = {}
    done: dict[str, Proc | BaseException] = {}

    def drive_lane(lane: str) -> None:
        try:
            done[lane] = drive(lives[lane], cues[lane], 0)
        except BaseException as exc:  # reported by the main thread
            done[lane] = exc

    threads = []
    for lane in cues:
        lives[lane] = Live(project, ["run", "crashy", "--json", "--input", json.dumps({"lane": lane})], "run")
        threads.append(threading.Thread(target=drive_lane, args=(lane,)))
        threads[-1].start()  # both start at once: opening a fresh index.db concurrently must work
    for thread in threads:
        thread.join(2 * PROCESS_TIMEOUT)
    for lane, trace in traces.items():
        proc = done.get(lane)
        assert isinstance(proc, Proc), f"run {lane}: {proc!r}; stderr: {lives[lane].stderr()}"
        trace.add(proc, [])
        trace.run_id = proc.printed[0][1]["run_id"]
    assert traces["a"].run_id != traces["b"].run_id

    # resume-all #1: SIGKILL it once each run has done two more side effects
    snapshots = {lane: project.stored(trace.run_id) for lane, trace in traces.items()}
    counts = {lane: len(project.effect_lines(lane)) + 2 for lane in cues}
    live = Live(project, ["resume"], "resume-all")
    _wait_for_lines(project, counts, live)
    live.sigkill(Kill("side-effects"))
    proc = live.wait()
    for lane, trace in traces.items():
        trace.add(proc, snapshots[lane])

    # resume-all #2: finishes both
    snapshots = {lane: project.stored(trace.run_id) for lane, trace in traces.items()}
    for lane, trace in traces.items():
        assert snapshots[lane][-1][1] != "run.completed", f"run {lane} finished before its kill: {trace.story()}"
    live = Live(project, ["resume"], "resume-all")
    proc = live.wait()
    assert proc.returncode == 0, f"{proc.text} {live.stderr()}"
    text = "\n".join(proc.text)
    assert "resuming 2 run(s)" in text, text
    for lane, trace in traces.items():
        trace.add(proc, snapshots[lane])
        assert f"{trace.run_id}  crashy  completed" in text, text
        summary = check_run(project, trace, baseline, lane)
        assert summary["kills"] == 2, trace.story()

    again = project.cli("resume")
    assert again.returncode == 0 and "nothing to resume" in again.stdout, again

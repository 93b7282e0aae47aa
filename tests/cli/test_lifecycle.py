"""A CLI that never hangs: ``run`` at a real terminal (a pseudo-terminal) exits the moment its run
finishes or one Ctrl-C detaches it; detached runs share one background worker; bare ``resume`` shows
and asks."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Any

import pytest

from .helpers import FAST_WORKFLOWS, RUN_ID, Terminal, describe, ff, run_status, wait_until


@pytest.fixture()
def fast(project: Path) -> Path:
    (project / "workflows" / "fast.py").write_text(FAST_WORKFLOWS, encoding="utf-8")
    return project


def _run_id(screen: str) -> str:
    match = re.search(r"run ([0-9a-f]{21})", screen)
    assert match, screen
    return match[1]


def test_run_at_a_terminal_exits_as_soon_as_another_terminal_answers(fast: Path) -> None:
    with Terminal("run", "asker", cwd=fast) as term:
        screen = term.wait_for("answer [y/n]:")
        run_id = _run_id(screen)
        answered = ff("answer", run_id, "true", cwd=fast)
        assert answered.returncode == 0, describe(answered)
        code = term.exit_code(timeout=10)  # no Enter is ever typed here
        screen = term.screen
    assert code == 0, screen
    assert "✔ completed" in screen and '"ok": true' in screen, screen
    # the prompt's line is ended before the run's last lines, which do not run into it
    assert re.search(r"answer \[y/n\]: *\n", screen), screen


def test_one_ctrl_c_at_a_prompt_detaches(fast: Path) -> None:
    with Terminal("run", "asker", cwd=fast) as term:
        screen = term.wait_for("answer [y/n]:")
        run_id = _run_id(screen)
        started = time.monotonic()
        term.type("\x03")  # one Ctrl-C, as the terminal delivers it: SIGINT to the foreground group
        code = term.exit_code(timeout=10)
        took = time.monotonic() - started
        screen = term.screen
    assert code == 130, screen
    assert took < 5, took
    assert "detached: the run is saved; continue it with flareflow resume" in screen, screen
    assert "Traceback" not in screen, screen
    assert run_status(fast, run_id) == "waiting"
    answered = ff("answer", run_id, "false", "--quiet", cwd=fast)  # still answerable: nothing was lost
    assert answered.returncode == 0, describe(answered)


def _worker_pids(project: Path) -> list[int]:
    """Live ``flareflow worker`` processes of ``project`` (read from /proc, not from flareflow)."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            argv = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
            state = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z" and b"worker" in argv and str(project).encode() in argv:
            pids.append(int(entry))
    return pids


def _flareflow_processes_in(project: Path) -> int:
    count = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            argv = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
            cwd = os.readlink(f"/proc/{entry}/cwd")
            state = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z" and cwd == str(project) and any(b"flareflow" in a for a in argv):
            count += 1
    return count


def test_one_background_worker_executes_every_detached_run(fast: Path, monkeypatch: Any) -> None:
    monkeypatch.setenv("FLAREFLOW_WORKER_IDLE", "1")
    ids = []
    for _ in range(3):
        started = ff("run", "waiter", "--detach", cwd=fast)
        assert started.returncode == 0, describe(started)
        run_id = started.stdout.strip()
        assert RUN_ID.match(run_id), describe(started)
        ids.append(run_id)
    for run_id in ids:
        wait_until(lambda r=run_id: run_status(fast, r) == "waiting", 20, f"run {run_id} waiting")  # type: ignore[misc]
    workers = _worker_pids(fast)
    assert len(workers) == 1, workers
    assert _flareflow_processes_in(fast) == 1  # not one process per run
    for run_id in ids:
        sent = ff("send-event", run_id, "go", '{"n": 1}', cwd=fast)
        assert sent.returncode == 0, describe(sent)
    for run_id in ids:
        wait_until(lambda r=run_id: run_status(fast, r) == "completed", 20, f"run {run_id} completed")  # type: ignore[misc]
    # it leaves once nothing is left to do (here after 1 s idle)
    wait_until(lambda: not _worker_pids(fast), 20, "the worker to exit")
    assert not (fast / ".flareflow" / "state" / "worker.pid").exists()
    log = (fast / ".flareflow" / "state" / "worker.log").read_text()
    assert log.count("started for") == 1, log
    assert all(f"executing run {r}" in log for r in ids), log
    # a later detach starts a new one
    again = ff("run", "quick", "--detach", cwd=fast)
    assert again.returncode == 0, describe(again)
    run_id = again.stdout.strip()
    wait_until(lambda: run_status(fast, run_id) == "completed", 20, "the later detached run")


def test_bare_resume_shows_each_run_and_asks_its_question(fast: Path) -> None:
    # two runs left behind by Ctrl-C (nobody executes them): one waits for an answer, one for an event
    for name in ("asker", "waiter"):
        with Terminal("run", name, cwd=fast) as term:
            term.wait_for("answer [y/n]:" if name == "asker" else "waiting for event")
            term.type("\x03")
            assert term.exit_code(timeout=10) == 130, term.screen
    with Terminal("resume", cwd=fast) as term:
        screen = term.wait_for("answer [y/n]:")
        assert "resuming 2 run(s)" in screen, screen
        assert "Proceed [really]?" in screen, screen  # the question, with its brackets
        assert "waiting for event go" in screen, screen
        waiter = re.search(r"send-event ([0-9a-f]{21}) go", term.screen)
        assert waiter, term.screen
        sent = ff("send-event", waiter[1], "go", "--quiet", cwd=fast)  # the other run moves meanwhile
        assert sent.returncode == 0, describe(sent)
        term.wait_for("✔ completed")
        # its lines did not run into the open question, which is asked again below them
        wait_until(lambda: term.screen.rstrip(" ").endswith("↳ answer [y/n]:"), 5, "the prompt shown again")
        assert not re.search(r"answer \[y/n\]: *\S", term.screen), term.screen
        term.type("y\n")
        code = term.exit_code(timeout=15)
        screen = term.screen
    assert code == 0, screen
    assert screen.count("✔ completed") == 2, screen


def test_resume_id_follows_a_run_the_worker_executes_and_answers_through_its_inbox(fast: Path,
                                                                                   monkeypatch: Any) -> None:
    monkeypatch.setenv("FLAREFLOW_WORKER_IDLE", "1")
    started = ff("run", "asker", "--detach", cwd=fast)
    assert started.returncode == 0, describe(started)
    run_id = started.stdout.strip()
    wait_until(lambda: run_status(fast, run_id) == "waiting", 20, "the detached run to ask")
    worker = _worker_pids(fast)
    assert len(worker) == 1, worker
    with Terminal("resume", run_id[:12], cwd=fast) as term:
        screen = term.wait_for("answer [y/n]:")
        assert f"executed by the background worker (pid {worker[0]}); following it here" in screen, screen
        assert "? Proceed [really]?" in screen, screen
        term.type("y\n")
        code = term.exit_code(timeout=15)
        screen = term.screen
    assert code == 0, screen
    assert "⇢ answer true" in screen and "✔ completed" in screen, screen
    assert run_status(fast, run_id) == "completed"
    log = fast / ".flareflow" / "state" / "worker.log"  # the worker executed it to the end, not resume
    wait_until(lambda: f"run {run_id} completed" in log.read_text(), 10, "the worker to record the run's end")


def test_one_ctrl_c_at_a_resume_prompt_detaches_too(fast: Path) -> None:
    with Terminal("run", "asker", cwd=fast) as term:
        term.wait_for("answer [y/n]:")
        term.type("\x03")
        assert term.exit_code(timeout=10) == 130, term.screen
    with Terminal("resume", cwd=fast) as term:
        term.wait_for("answer [y/n]:")
        term.type("\x03")
        code = term.exit_code(timeout=10)
        screen = term.screen
    assert code == 130, screen
    assert "detached: the run is saved; continue it with flareflow resume" in screen, screen


def test_the_worker_log_keeps_two_generations(tmp_path: Path) -> None:
    from flareflow.cli.worker import rotate_log

    log = tmp_path / "worker.log"
    log.write_bytes(b"x" * 100)
    rotate_log(log, limit=1000)
    assert log.read_bytes() == b"x" * 100  # small: left alone
    log.write_bytes(b"y" * 2000)
    (tmp_path / "worker.log.1").write_bytes(b"old")
    rotate_log(log, limit=1000)
    assert not log.exists() and (tmp_path / "worker.log.1").read_bytes() == b"y" * 2000
    rotate_log(log, limit=1000)  # nothing to rotate: no error

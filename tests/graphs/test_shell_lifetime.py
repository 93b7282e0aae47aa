"""A ``shell`` task's command lives no longer than its step: Ctrl-C in ``flareflow run``, ``runs cancel`` of a
detached run and a SIGKILL of the process executing the run each stop it, so the command's side effect
(here: a line appended after a pause) never happens behind the user's back, and ``flareflow resume``
runs the interrupted task exactly once more -- not a second copy beside a first that lives on.

The command writes its shell's pid first (its process group: the runtime starts it in a group of its own),
then sleeps, then appends ``late`` to a file; "stopped" means the group is gone and ``late`` never came.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from tests.cli.helpers import Live, Terminal, describe, ff, wait_until

from .helpers import make_project

PAUSE = 3  # seconds the command sleeps before its side effect

GRAPH = f"""name: long
tasks:
  - id: wait
    name: Slow command
    type: shell
    command: "echo $$ >> pids; sleep {PAUSE}; echo late >> marker"
"""


def _project(tmp_path: Path) -> Path:
    return make_project(tmp_path / "proj", {"workflows/long.yaml": GRAPH})


def _pids(root: Path) -> list[int]:
    path = root / "pids"
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - someone else's group reused the id
        return True
    return True


def _assert_stopped(root: Path, pgid: int) -> None:
    wait_until(lambda: not _group_alive(pgid), 15, f"the command's process group {pgid} to be gone")
    time.sleep(PAUSE + 1)  # past the moment a surviving command would have written
    assert not (root / "marker").exists(), "the interrupted command ran on and did its side effect"


def _resume_runs_it_once(root: Path) -> None:
    resumed = ff("resume", cwd=root, timeout=60)
    assert resumed.returncode == 0, describe(resumed)
    assert (root / "marker").read_text().split() == ["late"], describe(resumed)  # one re-run, one effect
    assert len(_pids(root)) == 2


def test_ctrl_c_in_flareflow_run_stops_the_command(tmp_path: Path) -> None:
    root = _project(tmp_path)
    with Terminal("run", "long", cwd=root) as term:
        wait_until(lambda: _pids(root), 30, "the command to start")
        term.type("\x03")  # Ctrl-C, as typed: SIGINT to the terminal's foreground group
        assert term.exit_code(30) is not None, term.screen
    _assert_stopped(root, _pids(root)[0])
    _resume_runs_it_once(root)


def test_runs_cancel_of_a_detached_run_stops_the_command(tmp_path: Path) -> None:
    root = _project(tmp_path)
    started = ff("run", "long", "--detach", cwd=root)
    assert started.returncode == 0, describe(started)
    run_id = started.stdout.strip().splitlines()[-1]
    wait_until(lambda: _pids(root), 30, "the command to start")
    cancelled = ff("runs", "cancel", run_id, cwd=root)
    assert cancelled.returncode == 0, describe(cancelled)
    _assert_stopped(root, _pids(root)[0])
    shown = ff("runs", "show", run_id, cwd=root)
    assert "cancelled" in shown.stdout, describe(shown)


def test_a_sigkilled_runtime_takes_the_command_with_it(tmp_path: Path) -> None:
    root = _project(tmp_path)
    live = Live("run", "long", cwd=root)
    try:
        wait_until(lambda: _pids(root), 30, "the command to start")
        live.proc.send_signal(signal.SIGKILL)
        live.proc.wait(10)
    finally:
        live.kill()
    shell = _pids(root)[0]
    wait_until(lambda: not _alive(shell), 15, "the command's shell to die with the runtime")
    time.sleep(PAUSE + 1)
    assert not (root / "marker").exists(), "the command outlived the SIGKILLed runtime and did its side effect"
    _resume_runs_it_once(root)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/stat")
    return not (status.exists() and status.read_text().split(")")[-1].split()[0] == "Z")  # a zombie is gone

"""The background worker: one process per project executes every ``flareflow run --detach``ed run.

``run --detach`` creates the run without executing it, leaves its id in the worker's inbox
(``<state>/detached/<run id>``, an empty file) and makes sure a worker is alive (`ensure_worker`).
The worker (``flareflow worker``, started on demand in a session of its own, logging to
``<state>/worker.log``) holds ``<state>/worker.lock`` for its whole life, so a second detach finds
it and starts nothing; it writes its pid to ``<state>/worker.pid``. Every `SCAN_SECONDS` it takes
the inbox's runs that no other process executes, executes them all on one embedded runtime, and
removes an entry once its run has finished. When the inbox has stayed empty for ``idle`` seconds
it exits.

No detached run is ever left without a worker: a detach writes its entry *before* it looks at the
lock, and a worker that is about to exit looks at the inbox again *after* releasing the lock (and
carries on if it finds an entry and gets the lock back). A run in the inbox that another process
executes meanwhile (``flareflow resume ID`` in a terminal) is left to it, and taken back if that
process stops before the run finishes.

A run held for its code (its workflow's module moved away or failing to import) stays in the inbox;
the worker imports the workflows again when the project's Python files change and re-checks its
held runs (`flareflow.cli.codewatch`), so the run continues once the file is fixed.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from ..engine.errors import RunNotFound, StorageError
from ..engine.status import TERMINAL
from ..local.runfiles import RUN_FILE
from ..local.runtime import LocalRuntime
from .codewatch import watch_code
from .project import Project

SCAN_SECONDS = 0.5
#: How long the worker stays after its last run finished (``flareflow worker --idle``).
IDLE_SECONDS = 30.0
#: worker.log is moved to worker.log.1 when a worker starts and finds it bigger than this.
LOG_ROTATE_BYTES = 1 << 20


class WorkerFiles:
    """The worker's files in a state directory: its inbox, lock, pid file and log."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.inbox = state_dir / "detached"
        self.lock = state_dir / "worker.lock"
        self.pid = state_dir / "worker.pid"
        self.log = state_dir / "worker.log"

    def add(self, run_id: str) -> None:
        """Put a run in the inbox."""
        self.inbox.mkdir(parents=True, exist_ok=True)
        (self.inbox / run_id).touch()

    def ids(self) -> list[str]:
        """The runs in the inbox (anything else there is ignored)."""
        try:
            names = os.listdir(self.inbox)
        except FileNotFoundError:
            return []
        return sorted(n for n in names if RUN_FILE.fullmatch(f"{n}.db"))

    def remove(self, run_id: str) -> None:
        (self.inbox / run_id).unlink(missing_ok=True)

    def try_lock(self) -> int | None:
        """The lock's descriptor if no worker holds it (this process then does), else None."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.lock, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return None
        return fd

    def running_pid(self) -> int | None:
        """The live worker's pid, or None when no worker holds the lock."""
        fd = self.try_lock()
        if fd is not None:
            os.close(fd)
            return None
        try:
            return int(self.pid.read_text(encoding="ascii").strip())
        except (OSError, ValueError):
            return -1  # starting: it holds the lock, its pid is not written yet


def detach(project: Project, run_id: str) -> None:
    """Hand a created (not yet executed, not owned) run to the project's background worker."""
    files = WorkerFiles(project.state_dir)
    files.add(run_id)
    ensure_worker(project, files)


def rotate_log(log: Path, limit: int = LOG_ROTATE_BYTES) -> None:
    """Keep ``worker.log`` bounded: past ``limit`` bytes it becomes ``worker.log.1`` (replacing the
    previous one), so a project keeps at most two generations. Called when a worker starts; workers
    exit when idle, so none writes for long into a rotated file."""
    with contextlib.suppress(OSError):
        if log.stat().st_size > limit:
            os.replace(log, log.with_name(log.name + ".1"))


def ensure_worker(project: Project, files: WorkerFiles) -> None:
    """Start ``flareflow worker`` unless one holds the lock (two racing starts: one exits at once)."""
    fd = files.try_lock()
    if fd is None:
        return
    os.close(fd)
    exe = shutil.which("flareflow")
    cmd = [exe] if exe else [sys.executable, "-m", "flareflow"]
    rotate_log(files.log)
    with open(files.log, "ab") as log:
        subprocess.Popen(
            [*cmd, "worker", "--project", str(project.root)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
            cwd=str(project.root), env=dict(os.environ),
        )


def _say(message: str) -> None:
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    print(f"{stamp} {message}", flush=True)


async def serve(rt: LocalRuntime, files: WorkerFiles, lock_fd: int, idle: float) -> None:
    """Execute the inbox's runs until it has been empty for ``idle`` seconds (see the module)."""
    executing: set[str] = set()
    idle_since: float | None = None
    while True:
        queued = files.ids()
        for run_id in queued:
            _take(rt, files, run_id, executing)
        for run_id in sorted(executing - set(files.ids())):
            executing.discard(run_id)  # finished, or its entry was removed by hand
        if files.ids():
            idle_since = None
        elif idle_since is None:
            idle_since = time.monotonic()
        elif time.monotonic() - idle_since >= idle:
            files.pid.unlink(missing_ok=True)
            os.close(lock_fd)  # released first, then the inbox read once more (see the module)
            if not files.ids():
                return
            relocked = files.try_lock()
            if relocked is None:
                return  # a newer worker took over
            lock_fd = relocked
            files.pid.write_text(f"{os.getpid()}\n", encoding="ascii")
            idle_since = None
        await asyncio.sleep(SCAN_SECONDS)


def _take(rt: LocalRuntime, files: WorkerFiles, run_id: str, executing: set[str]) -> None:
    """Start executing an inbox run if nobody does; drop its entry once it has finished."""
    try:
        obj = rt.get(run_id)
        status = obj.status
    except RunNotFound:
        files.remove(run_id)
        return
    except StorageError as exc:
        _say(f"run {run_id}: {exc}; trying again")
        return
    if status in TERMINAL:
        files.remove(run_id)
        if run_id in executing:
            _say(f"run {run_id} {status}")
            rt.ownership.release(run_id)
        if not rt.open_runs.busy(run_id):
            rt.evict(run_id, counted=False)  # its database closes: a long-lived worker keeps nothing
        executing.discard(run_id)
        return
    if run_id in executing and rt.owns(run_id):
        return
    if rt.ownership.take(run_id):
        _say(f"executing run {run_id} ({obj.info['workflow']})")
        executing.add(run_id)
        rt.schedule(run_id)
    elif not rt.open_runs.busy(run_id):
        rt.evict(run_id, counted=False)  # executed elsewhere for now: looked at again next round


def main(project: Project, runtime: LocalRuntime, idle: float) -> int:
    """``flareflow worker``: 0 when it exited idle (or another worker runs), after SIGTERM too."""
    files = WorkerFiles(project.state_dir)
    lock_fd = files.try_lock()
    if lock_fd is None:
        return 0
    files.pid.write_text(f"{os.getpid()}\n", encoding="ascii")
    _say(f"worker {os.getpid()} started for {project.root}")

    async def go() -> None:
        task = asyncio.current_task()
        assert task is not None
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, task.cancel)
        async with runtime:
            # a run held for its code (its module moved away or broken) continues once the file is fixed
            code = asyncio.ensure_future(watch_code(project, runtime, _say))
            with contextlib.suppress(asyncio.CancelledError):
                await serve(runtime, files, lock_fd, idle)
            code.cancel()

    asyncio.run(go())
    with contextlib.suppress(OSError):  # after SIGTERM it is still ours (an idle exit removed it already)
        if files.pid.read_text(encoding="ascii").strip() == str(os.getpid()):
            files.pid.unlink()
    _say(f"worker {os.getpid()} exits")
    return 0

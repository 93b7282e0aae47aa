"""Drive real ``flareflow`` processes, SIGKILL them on cue, and record what each one did.

A `Trace` keeps, per run, every process that worked on it (in order), what each printed (with the
monotonic time the test read it), and the run's stored log as it stood when the process *started*
(read straight from ``runs/<id>.db`` with a read-only connection while no flareflow process is
alive). Those snapshots attribute every event to the one process that committed it: event ``seq``
was committed by process ``k`` iff ``snapshot[k] < seq <= snapshot[k + 1]``.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

WORKFLOW_SOURCE = Path(__file__).with_name("crashy_workflow.py")
#: Real seconds any one process may take before the test gives up on it.
PROCESS_TIMEOUT = 20.0
#: `Kill` type meaning: as soon as a resume has re-printed the stored log (it is replaying, maybe mid-commit).
REPLAYED = "replayed"


def flareflow_command() -> list[str]:
    """The console script next to this interpreter, else ``python -m flareflow``."""
    script = Path(sys.executable).parent / "flareflow"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "flareflow"]


@dataclass(frozen=True)
class Kill:
    """When to SIGKILL a process: on the ``nth`` *new* event of ``type`` (and step ``name``), then after ``delay``."""

    type: str
    name: str | None = None
    nth: int = 1
    delay: float = 0.0

    def __str__(self) -> str:
        what = self.type + (f"[{self.name}]" if self.name else "") + (f"#{self.nth}" if self.nth != 1 else "")
        return what + (f"+{self.delay:g}s" if self.delay else "")


@dataclass
class Proc:
    """One flareflow process and what it did."""

    kind: str
    pid: int
    started_at: float
    stderr_path: Path
    printed: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    text: list[str] = field(default_factory=list)
    kill: Kill | None = None
    killed_at: float | None = None
    returncode: int | None = None

    def describe(self) -> str:
        how = f"SIGKILL on {self.kill}" if self.killed_at is not None else f"exit {self.returncode}"
        return f"{self.kind} pid={self.pid}: {how}"


class Live:
    """A running flareflow process whose stdout lines are read by a thread (so reads can time out)."""

    def __init__(self, project: CrashProject, args: list[str], kind: str) -> None:
        stderr_path = project.root.parent / f"stderr-{project.counter}-{kind}.txt"
        project.counter += 1
        self._stderr = open(stderr_path, "wb")  # noqa: SIM115 - closed in wait()
        started = time.monotonic()
        self.popen = subprocess.Popen(
            [*flareflow_command(), *args, "-C", str(project.root)],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self._stderr,
            cwd=str(project.root), env=project.env,
        )
        project.lives.append(self)
        self.proc = Proc(kind, self.popen.pid, started, stderr_path)
        self.lines: queue.Queue[tuple[float, str] | None] = queue.Queue()
        self.eof = False
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.popen.stdout is not None
        for raw in self.popen.stdout:
            self.lines.put((time.monotonic(), raw.decode("utf-8", "replace").rstrip("\n")))
        self.lines.put(None)

    def next_line(self, deadline: float) -> tuple[float, str] | None:
        """The next stdout line, or None at EOF; fails the test past ``deadline``."""
        if self.eof:
            return None
        try:
            item = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            self.popen.kill()
            raise AssertionError(f"{self.proc.kind} pid {self.popen.pid} printed nothing for too long; "
                                 f"stderr: {self.stderr()}") from None
        self.eof = item is None
        return item

    def sigkill(self, cue: Kill) -> None:
        os.kill(self.popen.pid, signal.SIGKILL)
        self.proc.killed_at = time.monotonic()
        self.proc.kill = cue

    def wait(self) -> Proc:
        """Reap the process and drain what it printed before it died."""
        deadline = time.monotonic() + PROCESS_TIMEOUT
        while (item := self.next_line(deadline)) is not None:
            self.take(*item)
        self.proc.returncode = self.popen.wait(timeout=PROCESS_TIMEOUT)
        self.reader.join(timeout=5)
        self._stderr.close()
        if self.popen.stdout is not None:
            self.popen.stdout.close()
        return self.proc

    def take(self, seen_at: float, line: str) -> dict[str, Any] | None:
        try:
            event = json.loads(line)
        except ValueError:
            event = None
        if not isinstance(event, dict) or "seq" not in event:
            self.proc.text.append(line)
            return None
        self.proc.printed.append((seen_at, event))
        return event

    def stderr(self) -> str:
        if not self._stderr.closed:
            self._stderr.flush()
        return self.proc.stderr_path.read_text(errors="replace")[-2000:]


class CrashProject:
    """A throwaway flareflow project holding the crashy workflow, in ``tmp``."""

    def __init__(self, tmp: Path) -> None:
        self.root = tmp / "proj"
        (self.root / "workflows").mkdir(parents=True)
        (self.root / "pyproject.toml").write_text('[project]\nname = "crashproj"\n\n[tool.flareflow]\n')
        shutil.copyfile(WORKFLOW_SOURCE, self.root / "workflows" / "crashy.py")
        self.effects = tmp / "effects.txt"
        self.env = {**os.environ, "CRASHY_EFFECTS": str(self.effects), "PYTHONDONTWRITEBYTECODE": "1"}
        self.env.pop("FORCE_COLOR", None)
        self.counter = 0
        self.lives: list[Live] = []

    def kill_stragglers(self) -> None:
        """SIGKILL and reap any process this project started that is still alive (after a failed test)."""
        for live in self.lives:
            if live.popen.poll() is None:
                live.popen.kill()
                live.popen.wait(timeout=PROCESS_TIMEOUT)

    def effects_file(self, lane: str | None = None) -> Path:
        return self.effects.with_name(f"{self.effects.name}.{lane}") if lane else self.effects

    def db(self, run_id: str) -> Path:
        return self.root / ".flareflow" / "state" / "runs" / f"{run_id}.db"

    def stored(self, run_id: str) -> list[tuple[int, str, str | None]]:
        """(seq, type, step) of the stored log, read-only; only call it while no flareflow process lives."""
        con = sqlite3.connect(f"file:{self.db(run_id)}?mode=ro", uri=True, timeout=5)
        try:
            rows = con.execute("SELECT seq, type, body FROM events ORDER BY seq").fetchall()
        finally:
            con.close()
        return [(int(seq), str(type_), json.loads(body).get("step")) for seq, type_, body in rows]

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run a short flareflow command to completion."""
        return subprocess.run([*flareflow_command(), *args, "-C", str(self.root)], capture_output=True,
                              text=True, cwd=str(self.root), env=self.env, timeout=PROCESS_TIMEOUT, check=False)

    def inspect(self, run_id: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """``flareflow runs events RUN_ID`` (NDJSON) and ``flareflow runs show RUN_ID --json``, run side by side."""
        procs = [subprocess.Popen([*flareflow_command(), *args, "-C", str(self.root)], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, cwd=str(self.root), env=self.env)
                 for args in (["runs", "events", run_id], ["runs", "show", run_id, "--json"])]
        outs = []
        for proc in procs:
            out, err = proc.communicate(timeout=PROCESS_TIMEOUT)
            assert proc.returncode == 0, err
            outs.append(out)
        return [json.loads(line) for line in outs[0].splitlines() if line.strip()], json.loads(outs[1])

    def effect_lines(self, lane: str | None = None) -> list[tuple[str, int]]:
        path = self.effects_file(lane)
        if not path.exists():
            return []
        out = []
        for line in path.read_text().splitlines():
            name, pid = line.split()
            out.append((name, int(pid)))
        return out


def drive(live: Live, cue: Kill | None, known_seq: int) -> Proc:
    """Read a ``--json`` process's NDJSON; SIGKILL it on ``cue`` (counting only events past ``known_seq``)."""
    deadline = time.monotonic() + PROCESS_TIMEOUT
    seen: Counter[str] = Counter()
    while (item := live.next_line(deadline)) is not None:
        event = live.take(*item)
        if cue is None or live.proc.killed_at is not None or event is None:
            continue
        if cue.type == REPLAYED:  # the last event of the backlog a resume prints before its own
            if event["seq"] == known_seq:
                live.sigkill(cue)
            continue
        if event["seq"] <= known_seq:
            continue
        if event["type"] == cue.type and (cue.name is None or event.get("name") == cue.name):
            seen[cue.type] += 1
            if seen[cue.type] == cue.nth:
                if cue.delay:
                    time.sleep(cue.delay)
                live.sigkill(cue)
    proc = live.wait()
    if cue is not None:
        assert proc.killed_at is not None, f"kill cue {cue} never came in {proc.describe()}: {proc.printed}"
    return proc


@dataclass
class Trace:
    """Everything the processes of one run did, in order."""

    run_id: str = ""
    procs: list[Proc] = field(default_factory=list)
    #: ``before[k]``: the stored log, (seq, type, step), when ``procs[k]`` started (no flareflow process lived).
    snapshots: list[list[tuple[int, str, str | None]]] = field(default_factory=list)

    def add(self, proc: Proc, snapshot: list[tuple[int, str, str | None]]) -> None:
        self.procs.append(proc)
        self.snapshots.append(snapshot)

    @property
    def before(self) -> list[int]:
        return [len(snapshot) for snapshot in self.snapshots]

    def committer(self, seq: int) -> int:
        """Index (in ``procs``) of the process that committed event ``seq``."""
        owner = -1
        for i, seq_before in enumerate(self.before):
            if seq_before < seq:
                owner = i
        return owner

    def pid_index(self) -> dict[int, int]:
        pids = [p.pid for p in self.procs]
        assert len(set(pids)) == len(pids), f"pid reused across processes: {pids}"
        return {pid: i for i, pid in enumerate(pids)}

    def story(self) -> str:
        return "; ".join(f"#{i} {p.describe()} (log had {b} events)"
                         for i, (p, b) in enumerate(zip(self.procs, self.before, strict=True)))


def crash_and_resume(project: CrashProject, cues: list[Kill], *, lane: str | None = None) -> Trace:
    """``flareflow run crashy --json``, then ``flareflow resume ID --json`` once per remaining cue and once more.

    With no cues: one uninterrupted ``flareflow run``.
    """
    trace = Trace()
    args = ["run", "crashy", "--json"] + (["--input", json.dumps({"lane": lane})] if lane else [])
    live = Live(project, args, "run")
    proc = drive(live, cues[0] if cues else None, 0)
    trace.add(proc, [])
    assert proc.printed, f"run printed no event; stderr: {live.stderr()}"
    trace.run_id = proc.printed[0][1]["run_id"]
    for cue in [*cues[1:], None] if cues else []:
        snapshot = project.stored(trace.run_id)
        live = Live(project, ["resume", trace.run_id, "--json"], "resume")
        proc = drive(live, cue, len(snapshot))
        trace.add(proc, snapshot)
        if cue is None:
            assert proc.returncode == 0, f"final resume failed: {proc.text} {live.stderr()}"
    return trace

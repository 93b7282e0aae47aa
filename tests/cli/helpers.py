"""Running the real ``flareflow`` command the way a user does, and reading what it leaves behind."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import queue
import re
import shutil
import sqlite3
import subprocess
import sys
import termios
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

_SCRIPT = Path(sys.executable).parent / "flareflow"
FLAREFLOW: list[str] = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "flareflow"]

RUN_ID = re.compile(r"^[0-9a-f]{21}$")
ISO_AT = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
COMMON_FIELDS = ("seq", "type", "run_id", "at")
TIMEOUT = 30

#: Extra workflows that finish (or stop to wait) at once, so error cases need not wait on the examples.
FAST_WORKFLOWS = '''\
from typing import Any

from flareflow import Run, workflow


def add(a: int, b: int) -> int:
    return a + b


@workflow("quick")
async def quick(run: Run, n: int = 1) -> dict[str, Any]:
    """One instant step."""
    total = await run.step("add", add, n, 1)
    run.state["total"] = total
    return {"total": total}


@workflow("asker")
async def asker(run: Run) -> dict[str, Any]:
    """Asks a yes/no question straight away."""
    ok = await run.ask("Proceed [really]?", schema={"type": "boolean"})
    return {"ok": ok}


@workflow("waiter")
async def waiter(run: Run) -> dict[str, Any]:
    """Waits for a 'go' event straight away."""
    got = await run.wait_for_event("go")
    return {"got": got}
'''


def cli_env() -> dict[str, str]:
    """The user's environment with the venv active, no forced colours and no server to talk to."""
    env = dict(os.environ)
    for key in ("FORCE_COLOR", "CLICOLOR_FORCE", "TTY_COMPATIBLE", "COLUMNS", "LINES", "FLAREFLOW_URL",
                "FLAREFLOW_TOKEN"):
        env.pop(key, None)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def ff(*args: str, cwd: Path, timeout: float = TIMEOUT, stdin: Any = subprocess.DEVNULL,
       input: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``flareflow ARGS`` in ``cwd`` to completion."""
    return subprocess.run(
        [*FLAREFLOW, *args], cwd=cwd, env=cli_env(), text=True, capture_output=True, timeout=timeout,
        stdin=None if input is not None else stdin, input=input,
    )


def ff_json(*args: str, cwd: Path) -> Any:
    result = ff(*args, cwd=cwd)
    assert result.returncode == 0, describe(result)
    return json.loads(result.stdout)


def describe(result: subprocess.CompletedProcess[str]) -> str:
    return f"exit {result.returncode}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"


def assert_no_traceback(*texts: str) -> None:
    for text in texts:
        assert "Traceback (most recent call last)" not in text, text
        assert not re.search(r'^\s*File ".*", line \d+', text, re.M), text


def assert_one_error_line(result: subprocess.CompletedProcess[str], *needles: str) -> str:
    """Non-zero exit, nothing on stdout, exactly one ``error:`` line on stderr; returns that line."""
    assert result.returncode != 0, describe(result)
    assert_no_traceback(result.stdout, result.stderr)
    assert result.stdout.strip() == "", describe(result)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, describe(result)
    line = lines[0]
    assert line.startswith("error: "), describe(result)
    for needle in needles:
        assert needle.lower() in line.lower(), f"{needle!r} not in {line!r}"
    return line


def wait_until(check: Callable[[], Any], timeout: float, what: str, interval: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


class Live:
    """A ``flareflow`` process whose stdout and stderr are read line by line as they come."""

    def __init__(self, *args: str, cwd: Path, stdin: Any = subprocess.DEVNULL) -> None:
        self.proc = subprocess.Popen(
            [*FLAREFLOW, *args], cwd=cwd, env=cli_env(), text=True, stdin=stdin,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=1,
        )
        self.out: list[str] = []
        self.err: list[str] = []
        self._new: queue.Queue[str] = queue.Queue()
        self._threads = [
            threading.Thread(target=self._pump, args=(self.proc.stdout, self.out, True), daemon=True),
            threading.Thread(target=self._pump, args=(self.proc.stderr, self.err, False), daemon=True),
        ]
        for thread in self._threads:
            thread.start()
        self._seen = 0

    def _pump(self, stream: Any, into: list[str], notify: bool) -> None:
        for line in stream:
            into.append(line)
            if notify:
                self._new.put(line)
        stream.close()

    def next_line(self, timeout: float) -> str | None:
        try:
            return self._new.get(timeout=timeout)
        except queue.Empty:
            return None

    def wait_line(self, match: Callable[[str], bool], timeout: float = 15, what: str = "a line") -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.next_line(min(0.2, max(0.0, deadline - time.monotonic())))
            if line is not None and match(line):
                return line
            if line is None and self.proc.poll() is not None and self._new.empty():
                break
        raise AssertionError(f"no {what} within {timeout}s; exit={self.proc.poll()}\n--- stdout\n"
                             f"{''.join(self.out)}--- stderr\n{''.join(self.err)}")

    def wait_event(self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 15,
                   what: str = "an event") -> dict[str, Any]:
        def match(line: str) -> bool:
            return bool(predicate(json.loads(line)))

        return json.loads(self.wait_line(match, timeout, what))

    def finish(self, timeout: float = 20) -> int:
        code = self.proc.wait(timeout=timeout)
        for thread in self._threads:
            thread.join(timeout=5)
        return code

    @property
    def stdout(self) -> str:
        return "".join(self.out)

    @property
    def stderr(self) -> str:
        return "".join(self.err)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=5)
        with contextlib.suppress(Exception):
            self.proc.stdin and self.proc.stdin.close()

    def __enter__(self) -> Live:
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill()


def parse_ndjson(text: str) -> list[dict[str, Any]]:
    events = []
    for line in text.splitlines():
        event = json.loads(line)
        assert isinstance(event, dict), line
        events.append(event)
    return events


def state_dir(project: Path) -> Path:
    return project / ".flareflow" / "state"


def _dump_db(path: Path) -> list[str]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return list(conn.iterdump())
    finally:
        conn.close()


def stored(project: Path) -> dict[str, Any]:
    """Everything the state directory holds, row by row (raw bytes for files SQLite cannot read)."""
    snapshot: dict[str, Any] = {}
    root = state_dir(project)
    for path in sorted([root / "index.db", *sorted((root / "runs").glob("*.db"))]):
        if not path.exists():
            continue
        try:
            snapshot[path.name] = _dump_db(path)
        except sqlite3.DatabaseError:
            snapshot[path.name] = path.read_bytes()
    return snapshot


def copy_project(source: Path, dest: Path) -> Path:
    shutil.copytree(source, dest, ignore=shutil.ignore_patterns("__pycache__", "*.lock", "*.log"))
    return dest


def settled(project: Path, timeout: float = 5, quiet_for: float = 0.3) -> dict[str, Any]:
    """`stored` once it stops changing (a run writes its status just after the event that announces it)."""
    previous = stored(project)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(quiet_for)
        current = stored(project)
        if current == previous:
            return current
        previous = current
    raise AssertionError(f"state in {project} kept changing for {timeout}s")


def run_status(project: Path, run_id: str) -> str | None:
    """The status column of a run's own database, read without the CLI (None while unreadable)."""
    path = state_dir(project) / "runs" / f"{run_id}.db"
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            row = conn.execute("SELECT status FROM run").fetchone()
        finally:
            conn.close()
    except sqlite3.DatabaseError:
        return None
    return str(row[0]) if row else None


ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\r")


def _controlling_tty() -> None:  # in the child, after setsid: the pty becomes its terminal
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


class Terminal:
    """``flareflow ARGS`` with a pseudo-terminal as its stdin, stdout, stderr and controlling
    terminal, as in a real shell: typed keys go in (Ctrl-C included), the screen is read back."""

    def __init__(self, *args: str, cwd: Path) -> None:
        self.master, slave = os.openpty()
        env = {**cli_env(), "TERM": "xterm-256color", "COLUMNS": "120", "LINES": "40"}
        self.proc = subprocess.Popen([*FLAREFLOW, *args], cwd=cwd, env=env, stdin=slave, stdout=slave,
                                     stderr=slave, start_new_session=True, preexec_fn=_controlling_tty)
        os.close(slave)
        self._chunks: list[bytes] = []
        self._reader = threading.Thread(target=self._pump, daemon=True)
        self._reader.start()

    def _pump(self) -> None:
        while True:
            try:
                data = os.read(self.master, 4096)
            except OSError:  # EIO once the child side is closed
                return
            if not data:
                return
            self._chunks.append(data)

    @property
    def screen(self) -> str:
        return ANSI.sub("", b"".join(self._chunks).decode("utf-8", "replace"))

    def wait_for(self, text: str, timeout: float = 20) -> str:
        return str(wait_until(lambda: text in self.screen and self.screen, timeout,
                              f"{text!r} on the terminal; screen so far:\n{self.screen}"))

    def type(self, keys: str) -> None:
        os.write(self.master, keys.encode())

    def exit_code(self, timeout: float) -> int | None:
        """The exit code once the process has exited, None if it is still running after ``timeout``."""
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=5)
        self._reader.join(timeout=2)
        with contextlib.suppress(OSError):
            os.close(self.master)

    def __enter__(self) -> Terminal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

"""The local runtime's side of task graphs: processes, files, SQLite and urllib behind `flareflow.graphs.ports`.

``shell`` runs the command through ``/bin/sh -c`` in the project folder (or ``cwd``), with the task's
``environment`` added to the process environment; every line it writes is printed as it comes, so
the step's logs hold it line by line with its time (``step.completed`` / ``step.failed`` carry them),
and is captured as ``stdout`` / ``stderr``. A non-zero exit fails the attempt with ``command exited
with code N`` (the task's ``exit_code``); ``timeout`` (seconds) kills the process. The command's process
group lives no longer than its step (`_run_process`): Ctrl-C, ``runs cancel`` or a crash of the
runtime stops it, so a resumed run's re-run of the step is never a second copy running beside it. ``docker`` builds
the ``docker build`` / ``docker run --rm`` command line and runs it the same way. ``data_processor``
calls its ``module:function`` with each file matching ``input`` (a glob relative to the project) as
``(path, text)`` and writes what it returns into ``output`` (a folder) under the same name.
``database`` opens a SQLite file: ``connection`` (a path, or ``sqlite:///path``, relative to the
project), or for a ``binding`` (a D1 binding on Cloudflare) ``STATE_DIR/d1/BINDING.sqlite``, the local
stand-in. Migrations run in file-name order, each once (``_flareflow_migrations``), all in one
transaction: a failing file rolls every one of them back.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import glob
import importlib
import json
import os
import shlex
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ..engine.errors import FlareflowError, NonRetryableError
from ..graphs.ports import HTTP_DEFAULT_TIMEOUT, Ports, command_failed, http_timed_out, install, sql_statements

__all__ = ["install_local_ports", "local_ports"]


class CommandFailed(FlareflowError):
    """A shell or docker command exited non-zero (its message says the code)."""


#: Process groups of the commands running now: killed at exit if a shutdown skipped their task's cleanup.
_LIVE: set[int] = set()
#: Seconds a cancelled command gets between SIGTERM and SIGKILL.
STOP_GRACE = 2.0
#: Seconds the output pipes may stay open after the command exited (a background child holding them).
_DRAIN = 2.0


def _die_with_parent() -> None:
    """In the child before exec (Linux): SIGKILL it when flareflow's process dies, even by SIGKILL, so a
    crashed runtime leaves no command running on beside the re-run its resume starts."""
    if _PRCTL is not None:
        _PRCTL(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


_PRCTL: Callable[..., int] | None = None
if sys.platform.startswith("linux"):  # looked up once, in the parent: the child only calls it
    try:
        import ctypes

        _PRCTL = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # pragma: no cover - a libc without prctl
        _PRCTL = None


def _kill_group(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


@atexit.register
def _kill_leftovers() -> None:
    for pid in list(_LIVE):
        _kill_group(pid, signal.SIGKILL)


async def _run_process(argv: list[str], cwd: Path, env: dict[str, str], timeout: float | None) -> dict[str, Any]:
    """Run ``argv`` in a process group of its own, printing each line as it comes (the step's logs).

    The command lives no longer than its step: a cancelled step (Ctrl-C, ``runs cancel``, a step
    timeout abandoning it, the runtime shutting down) sends the group SIGTERM, then SIGKILL after
    `STOP_GRACE`; at interpreter exit any group left is killed; and on Linux the shell dies with
    flareflow's process even when that is SIGKILLed (``PR_SET_PDEATHSIG``)."""
    started = time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        *argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        start_new_session=True, preexec_fn=_die_with_parent if _PRCTL is not None else None)
    _LIVE.add(proc.pid)
    out: list[str] = []
    err: list[str] = []
    pumps = [asyncio.ensure_future(_pump(proc.stdout, out, sys.stdout)),
             asyncio.ensure_future(_pump(proc.stderr, err, sys.stderr))]
    try:
        try:
            code = await asyncio.wait_for(proc.wait(), timeout)
        except TimeoutError:
            _kill_group(proc.pid, signal.SIGKILL)
            await proc.wait()
            await _drained(pumps)
            raise CommandFailed(f"command timed out after {timeout:g}s and was killed (exited with code -9)") \
                from None
        await _drained(pumps)
    except BaseException:
        if proc.returncode is None:  # cancelled: the command goes with its step
            await _stop(proc)
        for pump in pumps:
            pump.cancel()
        raise
    finally:
        _LIVE.discard(proc.pid)
    stdout, stderr = "".join(out), "".join(err)
    if code != 0:
        raise CommandFailed(command_failed(code, stdout, stderr))
    return {"exit_code": code, "stdout": stdout, "stderr": stderr, "duration_s": round(time.monotonic() - started, 3)}


async def _pump(stream: asyncio.StreamReader | None, into: list[str], sink: Any) -> None:
    """Each line of ``stream`` into ``into`` and printed to ``sink`` as it comes (lines of any length)."""
    if stream is None:
        return
    pending = b""
    while chunk := await stream.read(65536):
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            text = line.decode("utf-8", "replace")
            into.append(text + "\n")
            print(text, file=sink)  # the step's captured logs, line by line as it comes
    if pending:
        text = pending.decode("utf-8", "replace")
        into.append(text)
        print(text, file=sink)


async def _drained(pumps: list[asyncio.Task[None]]) -> None:
    """Wait for the output to end; a background child that keeps the pipes open gets `_DRAIN` seconds."""
    _, pending = await asyncio.wait(pumps, timeout=_DRAIN)
    for pump in pending:
        pump.cancel()


async def _stop(proc: asyncio.subprocess.Process) -> None:
    """SIGTERM the command's group, SIGKILL it after `STOP_GRACE` seconds, and reap it."""
    _kill_group(proc.pid, signal.SIGTERM)
    with contextlib.suppress(TimeoutError, asyncio.CancelledError):
        await asyncio.wait_for(asyncio.shield(proc.wait()), STOP_GRACE)
    _kill_group(proc.pid, signal.SIGKILL)
    with contextlib.suppress(TimeoutError, asyncio.CancelledError):
        await asyncio.wait_for(asyncio.shield(proc.wait()), STOP_GRACE)


def _environment(extra: Any) -> dict[str, str]:
    env = dict(os.environ)
    if isinstance(extra, dict):
        env.update({str(k): v if isinstance(v, str) else json.dumps(v) for k, v in extra.items()})
    return env


class _LocalTasks:
    def __init__(self, root: Path, state_dir: Path) -> None:
        self.root = root
        self.state_dir = state_dir
        self._db_lock = threading.Lock()

    def _dir(self, cwd: Any) -> Path:
        return (self.root / str(cwd)).resolve() if cwd else self.root

    async def shell(self, spec: dict[str, Any]) -> dict[str, Any]:
        return await _run_process(["/bin/sh", "-c", spec["command"]], self._dir(spec.get("cwd")),
                            _environment(spec.get("environment")), spec.get("timeout"))

    async def docker(self, spec: dict[str, Any]) -> dict[str, Any]:
        env = spec.get("environment") or {}
        if spec.get("action") == "build":
            argv = ["docker", "build", "-t", str(spec["image"])]
            if spec.get("dockerfile"):
                argv += ["-f", str(spec["dockerfile"])]
            argv.append(str(spec.get("context") or "."))
        else:
            argv = ["docker", "run", "--rm"]
            for key, value in env.items():
                argv += ["-e", f"{key}={value}"]
            for volume in spec.get("volumes") or []:
                argv += ["-v", str(volume)]
            argv.append(str(spec["image"]))
            command = spec.get("command")
            if isinstance(command, str):
                argv += shlex.split(command)
            elif isinstance(command, list):
                argv += [str(c) for c in command]
        return await _run_process(argv, self._dir(spec.get("cwd")), _environment(None), spec.get("timeout"))

    def data_processor(self, spec: dict[str, Any]) -> dict[str, Any]:
        module_name, _, attr = str(spec["processor"]).partition(":")
        fn = getattr(importlib.import_module(module_name), attr)
        out_dir = self._dir(spec["output"])
        out_dir.mkdir(parents=True, exist_ok=True)
        written = []
        for name in sorted(glob.glob(str(self.root / str(spec["input"])), recursive=True)):
            path = Path(name)
            if not path.is_file():
                continue
            value = fn(str(path.relative_to(self.root)), path.read_text(encoding="utf-8"))
            target = out_dir / path.name
            target.write_text(value if isinstance(value, str) else json.dumps(value, indent=2) + "\n",
                              encoding="utf-8")
            written.append(str(target.relative_to(self.root)))
        return {"files": written, "count": len(written)}

    # -- database ----------------------------------------------------------------------------
    def _database_file(self, request: dict[str, Any]) -> Path:
        connection = request.get("connection")
        if connection:
            text = str(connection)
            if text.startswith("sqlite:///"):
                text = text[len("sqlite:///"):]
            elif "://" in text:
                raise NonRetryableError(f"database connection {text!r}: only SQLite files (a path or sqlite:///path) "
                                        "are supported")
            path = (self.root / text).resolve()
        else:
            path = self.state_dir / "d1" / f"{request.get('binding') or 'DB'}.sqlite"
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def database(self, request: dict[str, Any]) -> Any:
        with self._db_lock:
            db = sqlite3.connect(self._database_file(request), isolation_level=None)
            db.row_factory = sqlite3.Row
            try:
                return self._database(db, request)
            finally:
                db.close()

    def _database(self, db: sqlite3.Connection, request: dict[str, Any]) -> Any:
        op = request["op"]
        if op == "query":
            return _statement(db, request["sql"], request.get("params") or [])
        db.execute("BEGIN IMMEDIATE")
        try:
            if op == "transaction":
                result: Any = [_statement(db, s["sql"], s.get("params") or []) for s in request["statements"]]
            else:
                result = self._migrate(db, request)
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        return result

    def _migrate(self, db: sqlite3.Connection, request: dict[str, Any]) -> dict[str, Any]:
        db.execute("CREATE TABLE IF NOT EXISTS _flareflow_migrations (name TEXT PRIMARY KEY, applied_at TEXT)")
        done = {row[0] for row in db.execute("SELECT name FROM _flareflow_migrations")}
        files = request.get("files")
        if files is None:
            folder = self._dir(request["folder"])
            if not folder.is_dir():
                raise NonRetryableError(f"migration folder {request['folder']} does not exist")
            files = [[p.name, p.read_text(encoding="utf-8")] for p in sorted(folder.glob("*.sql"))]
        applied = []
        for name, sql in files:
            if name in done:
                continue
            try:
                for statement in sql_statements(sql):
                    db.execute(statement)
            except sqlite3.Error as exc:
                raise NonRetryableError(f"migration {name} failed (all of this run's migrations rolled back): "
                                        f"{exc}") from None
            db.execute("INSERT INTO _flareflow_migrations VALUES (?, datetime('now'))", (name,))
            applied.append(name)
        return {"applied": applied, "skipped": sorted(done & {f[0] for f in files})}

    # -- http --------------------------------------------------------------------------------
    async def http(self, request: dict[str, Any]) -> dict[str, Any]:
        return await asyncio.to_thread(_urllib, request)


def _statement(db: sqlite3.Connection, sql: str, params: Any) -> Any:
    values = params if isinstance(params, list) else [params]
    try:
        cursor = db.execute(sql, values)
    except sqlite3.Error as exc:
        raise NonRetryableError(f"SQL failed: {exc}: {sql[:120]}") from None
    if cursor.description is not None:
        return [dict(row) for row in cursor.fetchall()]
    return {"changes": cursor.rowcount, "last_row_id": cursor.lastrowid}


def _urllib(request: dict[str, Any]) -> dict[str, Any]:
    body = request.get("body")
    req = urllib.request.Request(request["url"], method=request["method"], headers=request.get("headers") or {},
                                 data=body.encode("utf-8") if isinstance(body, str) else None)
    try:
        with urllib.request.urlopen(req, timeout=request.get("timeout") or HTTP_DEFAULT_TIMEOUT) as response:
            return {"status": response.status, "headers": dict(response.headers.items()),
                    "text": response.read().decode("utf-8", "replace")}
    except urllib.error.HTTPError as exc:
        return {"status": exc.code, "headers": dict(exc.headers.items()) if exc.headers else {},
                "text": exc.read().decode("utf-8", "replace")}
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        if isinstance(reason, TimeoutError):  # connecting (URLError's reason) or reading (raised as it is)
            raise FlareflowError(http_timed_out(request)) from None
        raise FlareflowError(f"{request['method']} {request['url']}: {reason}") from None


def local_ports(root: Path, state_dir: Path) -> Ports:
    """The ports of the local runtime for the project at ``root``."""
    tasks = _LocalTasks(root.resolve(), state_dir)
    environ: Mapping[str, str] = os.environ
    return Ports(http=tasks.http, database=lambda r: asyncio.to_thread(tasks.database, r),
                 local={"shell": tasks.shell, "docker": tasks.docker, "data_processor": tasks.data_processor},
                 environ=lambda: dict(environ), host="local")


def install_local_ports(root: Path, state_dir: Path) -> None:
    """Make the local ports the ones graph runs of this process use."""
    install(local_ports(root, state_dir))

"""The local runtime's side of task graphs: processes, files, SQLite and urllib behind `flareflow.graphs.ports`.

``shell`` runs the command through ``/bin/sh -c`` in the project folder (or ``cwd``), with the task's
``environment`` added to the process environment; every line it writes is printed as it comes, so
the step's logs hold it line by line with its time (``step.completed`` / ``step.failed`` carry them),
and is captured as ``stdout`` / ``stderr``. A non-zero exit fails the attempt with ``command exited
with code N`` (the task's ``exit_code``); ``timeout`` (seconds) kills the process. ``docker`` builds
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
import glob
import importlib
import json
import os
import shlex
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..engine.errors import FlareflowError, NonRetryableError
from ..graphs.ports import Ports, install, sql_statements

__all__ = ["install_local_ports", "local_ports"]


class CommandFailed(FlareflowError):
    """A shell or docker command exited non-zero (its message says the code)."""


def _run_process(argv: list[str], cwd: Path, env: dict[str, str], timeout: float | None) -> dict[str, Any]:
    started = time.monotonic()
    proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, text=True, errors="replace", start_new_session=True)
    out: list[str] = []
    err: list[str] = []

    def pump(stream: Any, into: list[str], sink: Any) -> None:
        for line in stream:
            into.append(line)
            print(line.rstrip("\n"), file=sink)  # the step's captured logs, line by line as it comes

    import contextvars

    threads = [threading.Thread(target=contextvars.copy_context().run, args=(pump, proc.stdout, out, sys.stdout),
                                daemon=True),
               threading.Thread(target=contextvars.copy_context().run, args=(pump, proc.stderr, err, sys.stderr),
                                daemon=True)]
    for thread in threads:
        thread.start()
    try:
        code = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
        proc.wait()
        for thread in threads:
            thread.join(2)
        raise CommandFailed(f"command timed out after {timeout:g}s and was killed (exited with code -9)") from None
    for thread in threads:
        thread.join(5)
    result = {"exit_code": code, "stdout": "".join(out), "stderr": "".join(err),
              "duration_s": round(time.monotonic() - started, 3)}
    if code != 0:
        tail = "".join(err).strip().splitlines()[-1:] or "".join(out).strip().splitlines()[-1:]
        raise CommandFailed(f"command exited with code {code}" + (f": {tail[0][:200]}" if tail else ""))
    return result


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

    def shell(self, spec: dict[str, Any]) -> dict[str, Any]:
        return _run_process(["/bin/sh", "-c", spec["command"]], self._dir(spec.get("cwd")),
                            _environment(spec.get("environment")), spec.get("timeout"))

    def docker(self, spec: dict[str, Any]) -> dict[str, Any]:
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
        return _run_process(argv, self._dir(spec.get("cwd")), _environment(None), spec.get("timeout"))

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
        with urllib.request.urlopen(req, timeout=request.get("timeout") or 30) as response:
            return {"status": response.status, "headers": dict(response.headers.items()),
                    "text": response.read().decode("utf-8", "replace")}
    except urllib.error.HTTPError as exc:
        return {"status": exc.code, "headers": dict(exc.headers.items()) if exc.headers else {},
                "text": exc.read().decode("utf-8", "replace")}
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
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

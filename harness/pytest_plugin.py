"""pytest fixtures that serve a wrangler project on real workerd (harness/host/launch.mjs).

Test-only, never shipped. The harness takes the user's path: it serves a directory *as the user's
own command left it* -- the token and secrets from its ``.dev.vars``, D1/R2/KV/Durable Object state
from wrangler's local persistence (``.wrangler/state`` beside its wrangler.toml, or
``persist_dir``), which the user's command migrated. It applies no migrations and injects nothing.
``harness/bin/wrangler`` is a ``wrangler`` whose ``dev`` is the launcher and whose every other
command is the real pinned wrangler, so ``flareflow serve`` (``FLAREFLOW_WRANGLER``) or an ejected
project's ``npm run dev`` (``PATH``) run unchanged in front of it. Usage in a test module::

    from harness.pytest_plugin import workerd_server  # noqa: F401  (the fixture)

    @pytest.fixture
    def workerd_build_dir():          # required: which (prepared) project directory to serve
        return prepared_dir

    def test_something(workerd_server):
        httpx.get(workerd_server.url + "/health", headers={"authorization": f"Bearer {workerd_server.token}"})
        workerd_server.scheduled("0 9 * * 1", when=datetime(2030, 1, 7, 9, tzinfo=UTC))
        workerd_server.evict("run-id")   # ctx.abort() one Durable Object (storage kept)
        workerd_server.restart()         # new workerd process, same port + persisted storage
        workerd_server.kill()            # SIGKILL (crash); restart() brings it back

Or without fixtures: ``with WorkerdServer(build_dir) as server: ...``; ``command=`` starts something
else that ends in the launcher (e.g. ``flareflow serve`` with ``FLAREFLOW_WRANGLER`` set to the shim).

When node, the harness npm packages (harness/node_modules: miniflare, workerd, pyodide) or the SDK
wheel cannot be had, the fixture skips locally and FAILS when the ``CI`` environment variable is set.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

HARNESS_DIR = Path(__file__).resolve().parent
LAUNCHER = HARNESS_DIR / "host" / "launch.mjs"
#: ``wrangler`` with ``dev`` swapped for the launcher (every other command is the real one).
WRANGLER_SHIM = HARNESS_DIR / "bin" / "wrangler"
SDK_VERSION = "1.9.5"
SDK_WHEEL = HARNESS_DIR / "vendor" / f"workers_runtime_sdk-{SDK_VERSION}-py3-none-any.whl"
READY_PREFIX = "flareflow-harness listening on "
ADMIN_PREFIX = "flareflow-harness admin on "
START_TIMEOUT = float(os.environ.get("FLAREFLOW_HARNESS_START_TIMEOUT", "240"))


class HarnessUnavailable(RuntimeError):
    """node, the harness npm packages or the SDK wheel are missing."""


def ensure_sdk_wheel() -> Path:
    """Download the `workers` SDK wheel from PyPI into harness/vendor/ unless it is there."""
    if not SDK_WHEEL.exists():
        SDK_WHEEL.parent.mkdir(parents=True, exist_ok=True)
        proc = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check", "--no-deps",
             f"workers-runtime-sdk=={SDK_VERSION}", "-d", str(SDK_WHEEL.parent)],
            capture_output=True, text=True, check=False,
        )
        if proc.returncode != 0 or not SDK_WHEEL.exists():
            raise HarnessUnavailable(f"could not download workers-runtime-sdk=={SDK_VERSION}: {proc.stderr.strip()}")
    return SDK_WHEEL


def check_harness() -> str:
    """Return the node executable, or raise HarnessUnavailable naming what is missing."""
    node = shutil.which("node")
    if node is None:
        raise HarnessUnavailable("node is not on PATH (the workerd harness needs Node 20+)")
    for rel in ("node_modules/miniflare/package.json", "node_modules/pyodide/pyodide.asm.wasm",
                "node_modules/wrangler/package.json"):
        if not (HARNESS_DIR / rel).exists():
            raise HarnessUnavailable(f"harness/{rel} is missing: run `npm install` in harness/")
    ensure_sdk_wheel()
    return node


def _to_ms(when: datetime | float | int | None) -> int | None:
    if when is None:
        return None
    if isinstance(when, datetime):
        return int(when.timestamp() * 1000)
    return int(when * 1000)  # seconds since the epoch


def dev_vars(directory: Path) -> dict[str, str]:
    """The ``.dev.vars`` of a served directory (what wrangler dev would read), ``{}`` when absent."""
    path = directory / ".dev.vars"
    if not path.exists():
        return {}
    from flareflow.cli.devvars import parse_dev_vars

    return parse_dev_vars(path.read_text(encoding="utf-8"), source=str(path))


class WorkerdServer:
    """One launcher process (Node + Miniflare + workerd) serving a directory, or a command ending in one."""

    def __init__(self, build_dir: str | os.PathLike[str], *, persist_dir: str | os.PathLike[str] | None = None,
                 port: int = 0, verbose: bool = False,
                 command: Callable[[int], list[str]] | None = None, env: dict[str, str] | None = None) -> None:
        self.build_dir = Path(build_dir)
        self.persist_dir = Path(persist_dir) if persist_dir else None  # None: .wrangler/state in build_dir
        self.port = port
        self.verbose = verbose
        self.command = command
        self.env = env
        self.url = ""
        self.admin_url = ""
        self.proc: subprocess.Popen[str] | None = None
        self.lines: list[str] = []  # everything the launcher (and workerd) printed, all starts
        self.startup_seconds: float | None = None  # wall clock of the last start, until ready
        self._reader: threading.Thread | None = None

    @property
    def token(self) -> str | None:
        """``FLAREFLOW_TOKEN`` as the Worker gets it: from the served directory's ``.dev.vars``."""
        return dev_vars(self.build_dir).get("FLAREFLOW_TOKEN")

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> WorkerdServer:
        node = check_harness()
        if self.command is not None:
            cmd = self.command(self.port)
        else:
            cmd = [node, str(LAUNCHER), str(self.build_dir), "--port", str(self.port)]
            if self.persist_dir is not None:
                cmd += ["--persist-to", str(self.persist_dir)]
            if self.verbose:
                cmd.append("--verbose")
        t0 = time.monotonic()
        # Own process group, so kill() takes workerd (a child of node) down with it.
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, bufsize=1, start_new_session=True, env=self.env,
                                     cwd=self.build_dir if self.command is None else None)
        ready = threading.Event()
        found: dict[str, str] = {}
        proc = self.proc

        def read() -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                line = line.rstrip("\n")
                self.lines.append(line)
                if line.startswith(ADMIN_PREFIX):
                    found["admin"] = line[len(ADMIN_PREFIX):].strip()
                elif line.startswith(READY_PREFIX):
                    found["url"] = line[len(READY_PREFIX):].strip()
                    ready.set()
            ready.set()  # process ended

        self._reader = threading.Thread(target=read, name="workerd-harness-reader", daemon=True)
        self._reader.start()
        if not ready.wait(START_TIMEOUT) or "url" not in found:
            tail = "\n".join(self.lines[-40:])
            self._terminate(force=True)
            raise RuntimeError(f"workerd harness did not become ready within {START_TIMEOUT:.0f}s:\n{tail}")
        self.url, self.admin_url = found["url"], found["admin"]
        self.port = int(self.url.rsplit(":", 1)[1])  # keep the port across restarts
        self.startup_seconds = time.monotonic() - t0
        return self

    def _terminate(self, *, force: bool) -> None:
        proc = self.proc
        if proc is None:
            return
        if proc.poll() is None:
            if not force:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    force = True
            if force:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=15)
        # Anything left in the group (workerd) goes too.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        if proc.stdin:
            with contextlib.suppress(OSError):
                proc.stdin.close()
        if self._reader:
            self._reader.join(timeout=5)
        self.proc = None

    def kill(self) -> None:
        """SIGKILL node and workerd, as a crash would. Storage persists for restart()."""
        self._terminate(force=True)

    def stop(self) -> None:
        """Graceful stop (Miniflare disposes workerd)."""
        self._terminate(force=False)

    def restart(self) -> WorkerdServer:
        """Stop (if running) and start a fresh launcher on the same port and persisted storage:
        every isolate, Durable Object instance and Pyodide is gone; SQLite/D1/R2/KV data stays."""
        self.stop()
        return self.start()

    def close(self) -> None:
        self.stop()

    def __enter__(self) -> WorkerdServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- admin ---------------------------------------------------------------------------------
    def admin(self, command: str, body: dict[str, Any] | None = None, timeout: float = 120) -> Any:
        if not self.admin_url or self.proc is None:
            raise RuntimeError("workerd harness is not running")
        req = urllib.request.Request(f"{self.admin_url}/{command}", data=json.dumps(body or {}).encode(),
                                     method="POST", headers={"content-type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return json.loads(resp.read())
        except urllib.error.HTTPError as e:
            raise RuntimeError(f"harness admin {command} failed: {e.read().decode(errors='replace')}") from e

    def scheduled(self, cron: str, when: datetime | float | None = None) -> dict[str, Any]:
        """Run the Worker's scheduled() handler for `cron` at `when` (datetime or epoch seconds;
        default now). Returns Miniflare's result, e.g. {"outcome": "ok", "noRetry": false}."""
        result: dict[str, Any] = self.admin("scheduled", {"cron": cron, "time": _to_ms(when)})["result"]
        return result

    def evict(self, name: str, binding: str = "RUNS") -> dict[str, Any]:
        """Evict one Durable Object (by name) via ctx.abort(): its in-memory state is dropped, the
        next request constructs a new instance in the same (warm) isolate; storage is kept."""
        result: dict[str, Any] = self.admin("evict", {"name": name, "binding": binding})
        return result

    def restart_runtime(self) -> dict[str, Any]:
        """Restart workerd inside the running launcher (Miniflare setOptions): like restart()
        but keeps the Node process; Pyodide boots again."""
        result: dict[str, Any] = self.admin("restart", timeout=START_TIMEOUT)
        return result

    def send_queue(self, body: Any, binding: str = "DISPATCH") -> None:
        """Send a message through the queue producer binding from outside the Worker."""
        self.admin("queue", {"binding": binding, "body": body})

    def r2_objects(self, prefix: str = "", binding: str = "PAYLOADS") -> list[dict[str, Any]]:
        """Keys and sizes of what an R2 bucket holds (through Miniflare, from outside the Worker)."""
        result: dict[str, Any] = self.admin("r2list", {"binding": binding, "prefix": prefix})
        return list(result["objects"])

    def r2_text(self, key: str, binding: str = "PAYLOADS") -> str | None:
        result: dict[str, Any] = self.admin("r2get", {"binding": binding, "key": key})
        return result["text"]

    def log(self) -> str:
        return "\n".join(self.lines)


def _unavailable(exc: Exception) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"workerd harness unavailable in CI: {exc}", pytrace=False)
    pytest.skip(f"workerd harness unavailable: {exc}")


@pytest.fixture
def workerd_build_dir() -> Path:
    """Override in the test module (or a conftest) with the prepared directory to serve."""
    raise pytest.UsageError("define a `workerd_build_dir` fixture returning the build directory to serve")


@pytest.fixture
def workerd_server(workerd_build_dir: Path) -> Iterator[WorkerdServer]:
    """A running WorkerdServer for `workerd_build_dir`, storage in its ``.wrangler/state``."""
    try:
        check_harness()
    except HarnessUnavailable as exc:
        _unavailable(exc)
    server = WorkerdServer(workerd_build_dir)
    server.start()
    try:
        yield server
    finally:
        server.close()

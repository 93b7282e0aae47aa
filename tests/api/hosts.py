"""The hosts the end-to-end tests run against: one server class per host, all with the same interface.

``.url``, ``.token``, ``.headers``, ``.ws_base``, ``.start(port)``, ``.kill()``, ``.stop()``,
``.restart(hard=)``, ``.alive``, ``.output()``, ``.starts``, ``.down_at`` (wall-clock time the last
process went down), ``.evict(run_id)`` (drop the run's in-memory state, keep its storage) and
``.scheduled(cron, when)`` (fire a cron trigger: the local server's ``/cdn-cgi/handler/scheduled``,
the harness admin on workerd).

* `LocalServer` -- ``flareflow serve --local`` in a subprocess.
* `WorkerdHost` -- ``flareflow serve -C DIR`` with ``wrangler dev`` swapped for the harness launcher, so
  the project is served on real workerd exactly as the user's command prepared it.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import resource
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

import httpx

from harness.pytest_plugin import WRANGLER_SHIM, HarnessUnavailable, WorkerdServer, _unavailable, check_harness

from .project import write_project

URL_LINE = re.compile(r"local server on (http://[0-9A-Za-z.\[\]:-]+)")
START_TIMEOUT = 20.0
_STARTED: list[Any] = []


@atexit.register
def _kill_leftovers() -> None:
    """Never leave a server behind, even when pytest dies without running finalizers."""
    for srv in _STARTED:
        srv.kill()


def flareflow_executable() -> str:
    """The console script installed next to the running interpreter."""
    path = Path(sys.executable).with_name("flareflow")
    if not path.exists():  # pragma: no cover - broken venv
        raise RuntimeError(f"no flareflow console script next to {sys.executable}")
    return str(path)


class TestHost:
    """What every test host shares: the interface the tests see, and restart/eviction built on each
    host's own ``start`` / ``_kill`` / ``_stop``. Subclasses set ``kind``, ``supports_restart``,
    ``shared``, and implement ``start(port)``, ``_kill()``, ``_stop(timeout)``, ``alive``, ``output()``
    and ``evict(run_id)``."""

    __test__ = False  # not a pytest class, despite its name
    kind: ClassVar[str]
    supports_restart: ClassVar[bool] = True
    shared: ClassVar[bool] = False  # True: own_server hands out the session's server

    def __init__(self, project: Path, token: str, logs: Path) -> None:
        self.project = project
        self.token = token
        self.logs = logs
        self.url = ""
        self.port = 0
        self.starts = 0
        self.down_at: float | None = None

    def start(self, port: int = 0) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def _kill(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _stop(self, timeout: float) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def alive(self) -> bool:  # pragma: no cover - abstract
        raise NotImplementedError

    def output(self) -> str:  # pragma: no cover - abstract
        raise NotImplementedError

    def evict(self, run_id: str) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def kill(self) -> None:
        """SIGKILL, whole process group: no shutdown code runs (the crash case)."""
        self._kill()
        self.down_at = time.time()

    def stop(self, timeout: float = 8.0) -> None:
        """Graceful stop (SIGTERM); SIGKILL if it takes longer than ``timeout``."""
        self._stop(timeout)
        self.down_at = time.time()

    def restart(self, *, hard: bool = False) -> Any:
        """Stop (``hard``: SIGKILL) and start again on the same port and storage, so URLs stay valid."""
        port = self.port
        if hard:
            self.kill()
        else:
            self.stop()
        return self.start(port=port)

    def _register(self) -> None:
        if self not in _STARTED:
            _STARTED.append(self)

    @property
    def headers(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.token}"}

    @property
    def ws_base(self) -> str:
        return "ws" + self.url[len("http"):]


class LocalServer(TestHost):
    """``flareflow serve --local --port 0 -C PROJECT --token TOKEN`` in a subprocess."""

    kind: ClassVar[str] = "local"

    def __init__(self, project: Path, token: str, logs: Path) -> None:
        super().__init__(project, token, logs)
        self.proc: subprocess.Popen[bytes] | None = None
        #: RLIMIT_NOFILE for the server process (``ulimit -n``), None: inherited.
        self.nofile: int | None = None

    def _limits(self) -> None:  # runs in the child between fork and exec
        if self.nofile is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (self.nofile, self.nofile))

    # -- lifecycle -------------------------------------------------------------------------
    def start(self, port: int = 0) -> LocalServer:
        """Start the process (on ``port``, or a free one) and wait until /health answers."""
        self.starts += 1
        out = self.logs / f"server-{self.starts}.out"
        err = self.logs / f"server-{self.starts}.err"
        env = clean_env()
        cmd = [flareflow_executable(), "serve", "--local", "--host", "127.0.0.1", "--port", str(port),
               "-C", str(self.project), "--token", self.token]
        with out.open("wb") as stdout, err.open("wb") as stderr:
            self.proc = subprocess.Popen(cmd, stdout=stdout, stderr=stderr, stdin=subprocess.DEVNULL,
                                         cwd=self.project, env=env, start_new_session=True,
                                         preexec_fn=self._limits if self.nofile is not None else None)
        self._register()
        deadline = time.monotonic() + START_TIMEOUT
        url = None
        while url is None:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.output()}")
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"server printed no URL within {START_TIMEOUT}s:\n{self.output()}")
            found = URL_LINE.search(out.read_text(encoding="utf-8", errors="replace"))
            if found:
                url = found.group(1)
            else:
                time.sleep(0.02)
        self.url = url.rstrip("/")
        self.port = int(self.url.rsplit(":", 1)[1])
        while True:  # the socket is bound before the URL is printed; wait for startup (resume) too
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return self
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"server at {self.url} never became healthy:\n{self.output()}")
            time.sleep(0.02)

    def _kill(self) -> None:
        self._signal(signal.SIGKILL, 5.0)

    def _stop(self, timeout: float) -> None:
        self._signal(signal.SIGTERM, timeout)  # uvicorn's graceful shutdown

    def evict(self, run_id: str) -> None:
        """Drop the run's in-memory state, keep its storage. The local server has no per-run eviction,
        so this is the strongest equivalent: SIGKILL and a new process on the same port and project
        (every run is rebuilt from SQLite; unfinished ones are resumed at start-up)."""
        self.restart(hard=True)

    def scheduled(self, cron: str, when: datetime | float | None = None) -> dict[str, Any]:
        """Fire the cron trigger ``cron`` at ``when`` (datetime or epoch seconds; default now) the way a user
        does with ``wrangler dev``: ``GET /cdn-cgi/handler/scheduled?cron=...&time=MS`` with the token.
        Returns the server's answer, ``{"outcome": "ok", ...}`` like the workerd harness."""
        params = {"cron": cron}
        if when is not None:
            seconds = when.timestamp() if isinstance(when, datetime) else float(when)
            params["time"] = str(int(seconds * 1000))
        response = httpx.get(f"{self.url}/cdn-cgi/handler/scheduled", params=params, headers=self.headers,
                             timeout=15)
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    def _signal(self, sig: int, timeout: float) -> None:
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            proc.wait(5)

    # -- helpers ---------------------------------------------------------------------------
    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def output(self) -> str:
        """Everything every process of this server printed (for failure messages)."""
        parts = []
        for path in sorted(self.logs.glob("server-*.*")):
            parts.append(f"--- {path.name}\n{path.read_text(encoding='utf-8', errors='replace')[-4000:]}")
        return "\n".join(parts)


def clean_env() -> dict[str, str]:
    """The environment without FLAREFLOW_* settings (a developer's token or URL must not leak in)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLAREFLOW_")}
    env.update(PYTHONUNBUFFERED="1", COLUMNS="400", NO_COLOR="1", TERM="dumb")
    return env


class WorkerdHost(TestHost):
    """The project served by ``flareflow serve`` on real workerd: the user's own command, with only
    ``wrangler dev`` swapped for the harness launcher (``FLAREFLOW_WRANGLER=harness/bin/wrangler``).

    So every start builds, writes the token into ``.flareflow/build/.dev.vars`` and applies the D1
    index migrations with the real wrangler, as for a user; the harness reads them from there. Storage
    is wrangler's local state in the build directory, so ``restart()`` / ``start()`` after ``kill()``
    bring back every Durable Object's SQLite, D1 row, R2 object and KV entry (a crash, then a redeploy)."""

    kind: ClassVar[str] = "workerd"
    shared: ClassVar[bool] = True  # start-up costs 5-10 s: own_server reuses the session's server

    def __init__(self, project: Path, token: str, logs: Path) -> None:
        super().__init__(project, token, logs)
        self.build_dir = project / ".flareflow" / "build"
        self.harness: WorkerdServer | None = None

    def serve_command(self, port: int) -> list[str]:
        return [flareflow_executable(), "serve", "-C", str(self.project), "--port", str(port),
                "--token", self.token]

    def start(self, port: int = 0) -> WorkerdHost:
        """``flareflow serve`` (on ``port``, or a free one) on the persisted storage."""
        self.starts += 1
        if self.harness is None:
            env = clean_env()
            env["FLAREFLOW_WRANGLER"] = str(WRANGLER_SHIM)
            env["WRANGLER_SEND_METRICS"] = "false"
            self.harness = WorkerdServer(self.build_dir, command=self.serve_command, env=env)
        self._register()
        self.harness.port = port
        self.harness.start()
        assert self.harness.token == self.token, "the Worker did not get the token flareflow serve was given"
        self.url = self.harness.url.rstrip("/")
        self.port = self.harness.port
        return self

    def _kill(self) -> None:
        """SIGKILL the process group (flareflow serve, wrangler, node, workerd)."""
        if self.harness is not None:
            self.harness.kill()

    def _stop(self, timeout: float) -> None:
        """SIGTERM: flareflow serve stops wrangler dev, Miniflare disposes workerd (SIGKILL after 15 s)."""
        if self.harness is not None:
            self.harness.stop()

    def evict(self, run_id: str) -> None:
        """``ctx.abort()`` on the run's Durable Object (harness admin): in-memory state gone, storage kept."""
        assert self.harness is not None
        self.harness.evict(run_id)

    def scheduled(self, cron: str, when: datetime | float | None = None) -> dict[str, Any]:
        """Run the Worker's ``scheduled()`` for ``cron`` at ``when`` (harness admin)."""
        assert self.harness is not None
        return self.harness.scheduled(cron, when)

    @property
    def alive(self) -> bool:
        proc = self.harness.proc if self.harness is not None else None
        return proc is not None and proc.poll() is None

    def output(self) -> str:
        """Everything the launcher and workerd printed, over all starts (the tail)."""
        return self.harness.log()[-20000:] if self.harness is not None else ""


HOSTS: dict[str, Any] = {"local": LocalServer, "workerd": WorkerdHost}


def make_server(kind: str, root: Path, write: Callable[[Path], Path] = write_project) -> Any:
    """Write a project with ``write`` under ``root`` and start a ``kind`` server on it.

    For ``workerd``, a missing harness skips the test -- and fails it when ``CI`` is set."""
    if kind == "workerd":
        try:
            check_harness()
        except HarnessUnavailable as exc:
            _unavailable(exc)  # pytest.fail when CI is set, skip otherwise
    project = write(root / "project")
    logs = root / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    return HOSTS[kind](project, "tok-" + secrets.token_hex(16), logs).start()

"""Fixtures for the end-to-end API tests: real ``flareflow serve --local`` processes on loopback.

The tests only see a ``server`` object with ``.url``, ``.token``, ``.kill()``, ``.stop()`` and
``.restart()``. Hosts are registered in `HOSTS`; a later host (say a ``wrangler dev`` Worker) adds an
entry there and every test runs against it too, because the host-level fixtures are parametrised by
the keys of `HOSTS`.

* ``server``     -- session-scoped and shared; tests must not kill or restart it.
* ``own_server`` -- a fresh server on a fresh project for one test, free to be killed and restarted.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import ClassVar

import httpx
import pytest

from .project import write_project

URL_LINE = re.compile(r"local server on (http://[0-9A-Za-z.\[\]:-]+)")
START_TIMEOUT = 20.0
_STARTED: list[LocalServer] = []


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


class LocalServer:
    """``flareflow serve --local --port 0 -C PROJECT --token TOKEN`` in a subprocess."""

    kind: ClassVar[str] = "local"
    supports_restart: ClassVar[bool] = True

    def __init__(self, project: Path, token: str, logs: Path) -> None:
        self.project = project
        self.token = token
        self.logs = logs
        self.url = ""
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    # -- lifecycle -------------------------------------------------------------------------
    def start(self, port: int = 0) -> LocalServer:
        """Start the process (on ``port``, or a free one) and wait until /health answers."""
        self.starts += 1
        out = self.logs / f"server-{self.starts}.out"
        err = self.logs / f"server-{self.starts}.err"
        env = {k: v for k, v in os.environ.items() if not k.startswith("FLAREFLOW_")}
        env.update(PYTHONUNBUFFERED="1", COLUMNS="400", NO_COLOR="1", TERM="dumb")
        cmd = [flareflow_executable(), "serve", "--local", "--host", "127.0.0.1", "--port", str(port),
               "-C", str(self.project), "--token", self.token]
        with out.open("wb") as stdout, err.open("wb") as stderr:
            self.proc = subprocess.Popen(cmd, stdout=stdout, stderr=stderr, stdin=subprocess.DEVNULL,
                                         cwd=self.project, env=env, start_new_session=True)
        if self not in _STARTED:
            _STARTED.append(self)
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

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs (the crash case)."""
        self._signal(signal.SIGKILL, 5.0)

    def stop(self, timeout: float = 8.0) -> None:
        """SIGTERM: uvicorn's graceful shutdown; SIGKILL if it takes longer than ``timeout``."""
        self._signal(signal.SIGTERM, timeout)

    def restart(self, *, hard: bool = False) -> LocalServer:
        """Stop (``hard``: SIGKILL) and start again on the same port and project, so URLs stay valid."""
        port = self.port
        if hard:
            self.kill()
        else:
            self.stop()
        return self.start(port=port)

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

    @property
    def headers(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.token}"}

    @property
    def ws_base(self) -> str:
        return "ws" + self.url[len("http"):]

    def output(self) -> str:
        """Everything every process of this server printed (for failure messages)."""
        parts = []
        for path in sorted(self.logs.glob("server-*.*")):
            parts.append(f"--- {path.name}\n{path.read_text(encoding='utf-8', errors='replace')[-4000:]}")
        return "\n".join(parts)


HOSTS: dict[str, type[LocalServer]] = {"local": LocalServer}


def _make(kind: str, root: Path) -> LocalServer:
    project = write_project(root / "project")
    logs = root / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    return HOSTS[kind](project, "tok-" + secrets.token_hex(16), logs).start()


@pytest.fixture(scope="session", params=sorted(HOSTS))
def host_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def server(host_kind: str, tmp_path_factory: pytest.TempPathFactory):
    """One shared server for the session. Do not kill or restart it (use ``own_server``)."""
    srv = _make(host_kind, tmp_path_factory.mktemp(f"api-{host_kind}"))
    yield srv
    srv.stop()


@pytest.fixture
def own_server(host_kind: str, tmp_path: Path):
    """A private server for one test, which may kill and restart it."""
    srv = _make(host_kind, tmp_path)
    if not srv.supports_restart:  # pragma: no cover - for hosts that cannot be restarted
        srv.stop()
        pytest.skip(f"{host_kind} servers cannot be killed and restarted by the tests")
    yield srv
    srv.stop()

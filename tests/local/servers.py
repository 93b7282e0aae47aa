"""``flareflow serve --local`` subprocesses for the tests of the local runtime at scale and under faults."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import httpx

from ..api.hosts import LocalServer
from ..api.project import write_project


def project(root: Path) -> Path:
    """The API tests' project (workflows ``steps``, ``approval``, ``sleepy``, ``chatty``) under ``root``."""
    return write_project(root / "project")


def server(project_dir: Path, logs: Path, *, nofile: int | None = None) -> LocalServer:
    """A server (not started) on ``project_dir``; ``nofile`` is its ``ulimit -n``."""
    logs.mkdir(parents=True, exist_ok=True)
    srv = LocalServer(project_dir, "tok-" + secrets.token_hex(8), logs)
    srv.nofile = nofile
    return srv


def fds(srv: LocalServer) -> int:
    """Descriptors the server process holds right now (``/proc/PID/fd``)."""
    assert srv.proc is not None
    return len(os.listdir(f"/proc/{srv.proc.pid}/fd"))


def client(srv: LocalServer) -> httpx.Client:
    return httpx.Client(base_url=srv.url, headers=srv.headers, timeout=15)


def stderr(srv: LocalServer) -> str:
    """What the server's processes wrote to stderr (warnings, tracebacks)."""
    return "".join(p.read_text(encoding="utf-8", errors="replace") for p in sorted(srv.logs.glob("server-*.err")))

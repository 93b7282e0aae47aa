"""What a task graph needs from its host, as small ports each host fills.

The compiler (`flareflow.graphs.compiler`) runs on both hosts, so it never opens a socket, a process or
a database itself. It calls:

* ``http(request) -> response`` (async): ``request`` is ``{"method", "url", "headers", "body",
  "timeout"}`` (``timeout`` in seconds, or None; ``body`` text or None); the answer is
  ``{"status", "headers", "text"}``. Local: urllib in a thread; Cloudflare: the Worker's ``fetch``.
  A request that runs out of time fails with `http_timed_out`'s message on both hosts.
* ``database(request) -> result`` (async): ``request`` is ``{"op": "query" | "transaction" | "migration",
  ...}`` (see `flareflow.graphs.compiler`); local: a SQLite file; Cloudflare: a D1 binding.
* ``local[type](task) -> result`` (run as a step): ``shell`` and ``docker`` are async (their process
  group is stopped when the step is cancelled), ``data_processor`` is sync (a step thread). Only the
  local runtime has them; the Cloudflare build refuses these types.
* ``environ() -> mapping``: the host's environment variables (``${env.X}`` falls back to them).

`install` replaces what a host provides; a port left empty fails the task that needs it with a message
saying which host lacks it. Standard library only.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["HTTP_DEFAULT_TIMEOUT", "Ports", "command_failed", "current", "http_timed_out", "install",
           "sql_statements"]

HttpPort = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]
DatabasePort = Callable[[dict[str, Any]], Awaitable[Any]]
LocalTask = Callable[[dict[str, Any]], Any]


#: Seconds the local http port waits when the task has no ``timeout`` (the Worker's ``fetch`` has no limit of ours).
HTTP_DEFAULT_TIMEOUT = 30.0


def command_failed(code: int, stdout: str, stderr: str, note: str = "") -> str:
    """What a shell or docker task whose command exited non-zero fails with (the local runtime's command,
    and a mock of one under `flareflow.testing`): the code, then the last line of stderr, else of stdout.
    The compiler reads the code back out of it into the task's ``exit_code``."""
    tail = stderr.strip().splitlines()[-1:] or stdout.strip().splitlines()[-1:]
    return f"command exited with code {code}{note}" + (f": {tail[0][:200]}" if tail else "")


def http_timed_out(request: dict[str, Any]) -> str:
    """What an http task that ran out of time fails with, on either host: the limit in the unit the task
    wrote it in (a ``timeout: 5`` is 5 milliseconds, which a reader may have meant as seconds)."""
    seconds = request.get("timeout")
    what = f"{request.get('method', 'GET')} {request.get('url', '')}"
    if not seconds:
        return (f"{what} timed out after {HTTP_DEFAULT_TIMEOUT * 1000:g} ms, the default (a task's timeout sets it; "
                "http timeouts are in milliseconds)")
    return f"{what} timed out after {round(float(seconds) * 1000, 3):g} ms (http timeouts are in milliseconds)"


def _no_environ() -> Mapping[str, str]:
    return {}


@dataclass
class Ports:
    """The host's side of task execution (see the module docstring)."""

    http: HttpPort | None = None
    database: DatabasePort | None = None
    local: dict[str, LocalTask] = field(default_factory=dict)
    environ: Callable[[], Mapping[str, str]] = _no_environ
    #: Where this host runs: "local" or "cloudflare" (messages name it).
    host: str = "local"


_ports = Ports()


def install(ports: Ports) -> None:
    """Make ``ports`` the ones every graph run of this process uses."""
    global _ports
    _ports = ports


def current() -> Ports:
    return _ports


def sql_statements(sql: str) -> list[str]:
    """A migration file's statements, split on ``;`` at line ends (SQLite runs one statement at a time; a D1
    batch takes one prepared statement each), without the pieces that hold only comments. One rule for
    both hosts' database ports, so a file migrates the same way on each."""
    parts, current = [], []
    for line in sql.splitlines():
        current.append(line)
        if line.rstrip().endswith(";"):
            parts.append("\n".join(current))
            current = []
    if "".join(current).strip():
        parts.append("\n".join(current))
    return [p for p in parts if p.strip() and not all(not ln.strip() or ln.strip().startswith("--")
                                                       for ln in p.splitlines())]

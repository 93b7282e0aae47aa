"""What keeps slow and hostile clients from taking ``flareflow serve --local`` down, below ASGI.

uvicorn's HTTP/1.1 protocols (httptools and h11) start no timer before a request's headers are
complete, and ``limit_concurrency`` answers a plain-text 503 only once a request's headers have
arrived, while a connection that never sends them holds its descriptor for good. So:

* **Header timeout** -- a connection must bring a request's complete headers within
  ``header_timeout`` seconds of being opened, or, on a kept-alive connection, of the first byte of
  its next request; otherwise it is closed. (The body timeout is the application's, in
  `flareflow.local.server`, which reads the body.)
* **Connection cap** -- at most ``cap`` connections, HTTP and WebSocket, are served at once. One
  more is answered at once with a 503 in the API's error shape, without reaching the application,
  and closed after a short linger so the answer is not lost to a TCP reset.
* `RepeatFilter` -- identical log records (logger, level, message template, exception type and
  traceback) pass ``burst`` times per ``interval``; the rest are counted and reported in one line.

`guarded_protocol` wraps whichever protocol class uvicorn would use; it relies only on what both
keep: ``server_state.connections``, ``transport`` and ``cycle`` (the current request, with
``response_complete``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from .budget import FD_RESERVE

log = logging.getLogger("flareflow.local.guard")

#: How long a refused connection stays half-closed so the client reads its 503 before the close.
LINGER_SECONDS = 1.0


def raise_descriptor_limit(wanted: int = 65536) -> int:
    """Raise the soft RLIMIT_NOFILE towards the hard one (as Go's runtime does; 1024 is a common soft
    default with a far higher hard limit) and return the soft limit in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(hard, wanted)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):  # pragma: no cover - a platform that refuses
            pass
    return soft


@dataclass(frozen=True)
class Budget:
    """How the descriptors are shared out (`budget`)."""

    cap: int  # connections served at once
    backlog: int  # listen backlog, which is also how many connections asyncio accepts in one go
    lingering: int  # refused connections kept half-open at once so they read their 503


def budget(max_connections: int, limit: int | None = None) -> Budget:
    """Connections get the half of the descriptor limit (default: this process's soft RLIMIT_NOFILE)
    that the run databases leave (`flareflow.local.budget.open_budget` takes the other half of what
    ``FD_RESERVE`` leaves). Of that share, an eighth is the listen backlog, which is also how many
    connections asyncio accepts in one go before any can be refused, and an eighth is for refused
    connections still reading their 503; the rest, at most ``max_connections``, is the cap.
    ``ulimit -n 1024``: 360 connections, backlog 60."""
    if limit is None:
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        limit = soft if soft != resource.RLIM_INFINITY and soft > 0 else 1 << 20
    share = max(32, (limit - FD_RESERVE) // 2)
    eighth = share // 8
    backlog = min(2048, eighth)
    lingering = min(256, eighth)
    return Budget(cap=max(1, min(max_connections, share - backlog - lingering)), backlog=backlog,
                  lingering=lingering)


def _busy_response(cap: int) -> bytes:
    body = json.dumps({"error": {"code": "server_busy", "field": None,
                                 "message": f"the server is serving its limit of {cap} connections; retry shortly"}},
                      separators=(",", ":")).encode()
    return (b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\n"
            b"connection: close\r\ncontent-length: " + str(len(body)).encode() + b"\r\n\r\n" + body)


def guarded_protocol(base: type[asyncio.Protocol], *, header_timeout: float, cap: int,
                     max_lingering: int = 256) -> type[asyncio.Protocol]:
    """A subclass of uvicorn's HTTP protocol class ``base`` with the header timeout and connection cap;
    at most ``max_lingering`` refused connections wait for their client to close, the rest are closed."""
    busy = _busy_response(cap)
    lingering: set[asyncio.BaseTransport] = set()

    class Guarded(base):  # type: ignore[valid-type, misc]
        _ff_timer: asyncio.TimerHandle | None = None
        _ff_refused = False
        _ff_lingering: asyncio.BaseTransport | None = None

        # -- connection cap ------------------------------------------------------------------
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            if len(self.server_state.connections) >= cap:
                self._ff_refused = True
                self._ff_refuse(transport)
                return
            super().connection_made(transport)
            self._ff_arm()

        def _ff_refuse(self, transport: Any) -> None:
            transport.write(busy)
            if len(lingering) >= max_lingering or not transport.can_write_eof():
                transport.close()
                return
            transport.write_eof()  # FIN after the answer; what the client still sends is read and dropped
            self._ff_lingering = transport
            lingering.add(transport)
            self._ff_timer = asyncio.get_running_loop().call_later(LINGER_SECONDS, transport.close)

        def eof_received(self) -> bool | None:
            if self._ff_refused:
                return None  # the client read the answer and closed: close our side too
            result: bool | None = super().eof_received()
            return result

        def connection_lost(self, exc: Exception | None) -> None:
            self._ff_cancel()
            if self._ff_refused:
                if self._ff_lingering is not None:
                    lingering.discard(self._ff_lingering)
                return
            super().connection_lost(exc)

        # -- header timeout ------------------------------------------------------------------
        def data_received(self, data: bytes) -> None:
            if self._ff_refused:
                return
            if self._ff_timer is None and self._ff_between_requests():
                self._ff_arm()  # the first bytes of a new request on a kept-alive connection
            super().data_received(data)
            if self.transport.get_protocol() is not self or not self._ff_between_requests():
                self._ff_cancel()  # headers complete (a request is being served) or upgraded to WebSocket

        def _ff_between_requests(self) -> bool:
            cycle = getattr(self, "cycle", None)
            return cycle is None or bool(cycle.response_complete)

        def _ff_arm(self) -> None:
            self._ff_timer = asyncio.get_running_loop().call_later(header_timeout, self._ff_expired)

        def _ff_cancel(self) -> None:
            if self._ff_timer is not None:
                self._ff_timer.cancel()
                self._ff_timer = None

        def _ff_expired(self) -> None:
            self._ff_timer = None
            transport = self.transport
            if transport.is_closing() or transport.get_protocol() is not self or not self._ff_between_requests():
                return
            log.debug("closing a connection that sent no complete request headers within %gs", header_timeout)
            transport.close()

    Guarded.__name__ = Guarded.__qualname__ = f"Guarded{base.__name__}"
    return Guarded


class RepeatFilter(logging.Filter):
    """Let identical records through ``burst`` times per ``interval`` seconds, then count them; the
    count goes out as one warning (logger ``flareflow.local.guard``) with the first record after the
    interval, so a storm of one traceback costs a few lines, not megabytes."""

    def __init__(self, burst: int = 5, interval: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.burst = burst
        self.interval = interval
        self.clock = clock
        self._windows: dict[tuple[Any, ...], list[Any]] = {}  # key -> [window start, passed, dropped, text]
        self._reporting = False

    @staticmethod
    def _key(record: logging.LogRecord) -> tuple[Any, ...]:
        exc: tuple[Any, ...] = ()
        if record.exc_info and record.exc_info[0] is not None:
            tb: TracebackType | None = record.exc_info[2]
            frames = []
            while tb is not None:
                frames.append((tb.tb_frame.f_code.co_filename, tb.tb_lineno))
                tb = tb.tb_next
            exc = (record.exc_info[0].__name__, tuple(frames))
        return (record.name, record.levelno, str(record.msg), exc)

    def filter(self, record: logging.LogRecord) -> bool:
        if self._reporting:
            return True
        now = self.clock()
        self._report(now)
        key = self._key(record)
        window = self._windows.get(key)
        if window is None:
            if len(self._windows) > 1000:  # many distinct messages: forget the quiet ones
                self._windows = {k: w for k, w in self._windows.items() if w[2]}
            self._windows[key] = [now, 1, 0, str(record.msg)[:120]]
            return True
        if window[1] < self.burst:
            window[1] += 1
            return True
        window[2] += 1
        return False

    def _report(self, now: float) -> None:
        """One line for each message whose window is over and that had records dropped in it."""
        for key, window in list(self._windows.items()):
            if now - window[0] < self.interval:
                continue
            dropped = window[2]
            del self._windows[key]
            if dropped:
                self._reporting = True
                try:
                    log.warning("%d more like %r in the last %gs (logged %d, then dropped)",
                                dropped, window[3], self.interval, window[1])
                finally:
                    self._reporting = False

    def flush(self) -> None:
        """Report every count now (at shutdown)."""
        self._report(float("inf"))


def install_log_limits(filter_: RepeatFilter, loggers: tuple[str, ...] = ("uvicorn", "uvicorn.error")) -> None:
    """Put ``filter_`` on every handler records of the server reach: uvicorn's own and one stderr
    handler on the root logger (asyncio, flareflow), which otherwise logs through ``lastResort``."""
    root = logging.getLogger()
    if not root.handlers:
        stderr = logging.StreamHandler()
        stderr.setFormatter(logging.Formatter("%(levelname)s:  %(name)s: %(message)s"))
        stderr.setLevel(logging.WARNING)
        root.addHandler(stderr)
    handlers: list[logging.Handler] = list(root.handlers)
    for name in loggers:
        handlers.extend(logging.getLogger(name).handlers)
    for handler in handlers:
        if filter_ not in handler.filters:
            handler.addFilter(filter_)

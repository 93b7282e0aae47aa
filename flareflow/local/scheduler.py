"""Cron schedules on the local server: what Cloudflare's cron triggers do for the Worker.

`LocalScheduler` wakes at every minute boundary of the runtime's clock (so tests drive it with a
`ManualClock`) and starts each workflow whose ``schedule`` is due, with ``trigger: "cron"`` on its
``run.started`` and the same idempotency key the Worker uses (`flareflow.engine.cron.cron_start_key`:
one per workflow and scheduled minute). `fire` is the manual firing behind
``GET /cdn-cgi/handler/scheduled?cron=...`` (``wrangler dev``'s URL), through the Worker's own rule
(`flareflow.engine.cron.cron_firing`).

Missed firings: the table ``schedules`` in the state directory's ``index.db`` keeps, per workflow,
the minute its schedule has been checked through and the last minute it fired. On every wake (the
first one at start-up, or after the machine slept) each schedule starts at most one run, for its most
recent due minute since that mark: downtime over many due minutes is one catch-up, never a storm, and
a minute already fired is never fired again. The mark moves only after the start, so a crash between
the two re-plans the same minute on the next start, whose idempotency key meets the run already made.
A schedule the table has not seen yet (or whose expression changed) starts from the current minute.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote_plus

from ..engine.cron import (
    CRON_TRIGGER,
    CronError,
    CronStart,
    cron_firing,
    cron_start_key,
    latest_due,
    minute_of,
    parse_cron,
    schedule_of,
)
from ..engine.errors import FlareflowError
from ..engine.events import iso
from ..worker.http import HttpError, Request, Response
from ..worker.router import Router
from .runtime import LocalRuntime

log = logging.getLogger("flareflow.local.scheduler")

#: wrangler dev's path for firing a cron trigger by hand; the local server answers it too.
SCHEDULED_PATH = "/cdn-cgi/handler/scheduled"

_TABLE = """CREATE TABLE IF NOT EXISTS schedules (
    workflow TEXT PRIMARY KEY,
    schedule TEXT NOT NULL,
    checked_through REAL NOT NULL,
    last_fired REAL
)"""


@dataclass(frozen=True)
class Started:
    """One start a firing made (or found already made: ``created`` is False)."""

    workflow: str
    run_id: str
    idempotency_key: str
    created: bool

    def to_json(self) -> dict[str, Any]:
        return {"workflow": self.workflow, "run_id": self.run_id, "idempotency_key": self.idempotency_key,
                "created": self.created}


class LocalScheduler:
    """Fires the runtime registry's cron schedules on the runtime's clock; use `start` / `close`."""

    def __init__(self, runtime: LocalRuntime) -> None:
        self.runtime = runtime
        self.sql = runtime.index.sql
        self.sql.exec(_TABLE)
        self.ticks = 0  # completed wakes (tests wait on it)
        self._task: asyncio.Task[None] | None = None

    @property
    def schedules(self) -> list[tuple[str, str]]:
        """(workflow, schedule) of every workflow with a valid schedule, by name."""
        return [(d.name, str(d.schedule)) for d in self.runtime.registry if schedule_of(d) is not None]

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        """Tick now (catch-up) and then at every minute boundary (needs a running event loop)."""
        if self._task is None:
            self._task = asyncio.ensure_future(self._loop())

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _loop(self) -> None:
        clock = self.runtime.clock
        while True:
            try:
                await self.tick()
            except Exception:  # a broken tick must not stop the schedules for good
                log.exception("cron tick failed")
            now = clock.now()
            await clock.sleep(minute_of(now) + 60 - now)

    # -- firing ----------------------------------------------------------------------------
    def marks(self) -> dict[str, tuple[str, float, float | None]]:
        """workflow -> (schedule, checked through, last fired), as persisted."""
        rows = self.sql.exec("SELECT workflow, schedule, checked_through, last_fired FROM schedules")
        return {str(r[0]): (str(r[1]), float(r[2]), None if r[3] is None else float(r[3])) for r in rows}

    async def tick(self) -> list[Started]:
        """Start, per schedule, its most recent due minute since its mark (at most one), then move the mark."""
        now = minute_of(self.runtime.clock.now())
        marks = self.marks()
        started: list[Started] = []
        for defn in self.runtime.registry:
            cron = schedule_of(defn)
            if cron is None:
                continue
            mark = marks.get(defn.name)
            if mark is None or mark[0] != defn.schedule:  # new (or changed): the current minute may fire
                after, last, changed = now - 60, None, True
            else:
                after, last, changed = mark[1], mark[2], False
            minute = latest_due(cron, after, now)
            if minute is not None:
                result = await self._start(CronStart(defn.name, minute, cron_start_key(defn.name, minute)))
                if result is not None:
                    started.append(result)
                last = minute
            checked = max(now, after)  # a clock that went back never lowers the mark
            if changed or checked != after or minute is not None:
                self.sql.exec(
                    "INSERT INTO schedules (workflow, schedule, checked_through, last_fired) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT(workflow) DO UPDATE SET schedule = excluded.schedule, "
                    "checked_through = excluded.checked_through, last_fired = excluded.last_fired",
                    defn.name, str(defn.schedule), checked, last)
        self.ticks += 1
        return started

    async def fire(self, cron: str, when: float | None = None) -> list[Started]:
        """A manual firing of the trigger ``cron`` scheduled at ``when`` (default now), as the Worker's
        ``scheduled()`` would take it. Marks are left alone: the keys keep it from doubling a tick's start."""
        moment = self.runtime.clock.now() if when is None else when
        started = []
        for start in cron_firing(self.runtime.registry, cron, moment):
            result = await self._start(start)
            if result is not None:
                started.append(result)
        return started

    async def _start(self, start: CronStart) -> Started | None:
        try:
            obj, created = await self.runtime.start_or_get(start.workflow, None, idempotency_key=start.idempotency_key,
                                                           trigger=CRON_TRIGGER)
        except FlareflowError as exc:  # e.g. a scheduled workflow that requires an input
            log.warning("cron start of '%s' failed: %s", start.workflow, exc)
            return None
        if created:
            log.info("cron started %s (%s) as %s", start.workflow, start.idempotency_key, obj.run_id)
        return Started(start.workflow, obj.run_id, start.idempotency_key, created)


def scheduled_url(base: str, cron: str) -> str:
    """The URL that fires ``cron`` by hand (``+`` for spaces, like wrangler's documentation)."""
    return f"{base.rstrip('/')}{SCHEDULED_PATH}?cron={quote_plus(cron, safe='*/,-')}"


async def handle_scheduled(scheduler: LocalScheduler, router: Router, request: Request) -> Response:
    """``GET /cdn-cgi/handler/scheduled?cron=EXPR[&time=MS]``: fire a cron trigger as ``wrangler dev`` does.

    Bearer-token protected like the API and answered in its error shape; a firing that names no
    workflow's schedule starts nothing and is still ``{"outcome": "ok"}`` (the Worker's behaviour).
    """
    try:
        router.check_access(request.method, request.path, request.headers, request.query)  # 401 as the API
        if request.method != "GET":
            raise HttpError(405, "method_not_allowed", f"{request.method} is not allowed here; use GET")
        cron = " ".join((request.query.get("cron") or "").split())
        if not cron:
            raise HttpError(400, "missing_parameter", "'cron' is required, e.g. ?cron=0+9+*+*+1", "cron")
        try:
            parse_cron(cron)
        except CronError as exc:
            raise HttpError(400, "invalid_parameter", f"'cron': {exc}", "cron") from None
        raw = request.query.get("time") or ""
        when = None
        if raw:
            try:
                when = int(raw) / 1000
            except ValueError:
                raise HttpError(400, "invalid_parameter", "'time' must be milliseconds since the epoch",
                               "time") from None
            if not 0 <= when < 253_402_300_800:  # before year 10000
                raise HttpError(400, "invalid_parameter", "'time' is out of range", "time")
        moment = scheduler.runtime.clock.now() if when is None else when
        started = await scheduler.fire(cron, moment)
    except HttpError as exc:
        return exc.response()
    return Response(200, {"outcome": "ok", "cron": cron, "scheduled_time": iso(minute_of(moment)),
                          "started": [s.to_json() for s in started]})

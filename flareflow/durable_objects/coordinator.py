"""The per-run coordinator: one object per run, host-agnostic.

It owns the run's SQL (through the `Sql` port), drives activations of the engine, keeps the single
alarm at the earliest pending timer, and publishes committed events to live listeners. Nothing
about a run lives only in memory: drop the object at any point and a new one rebuilds from SQL.

Every transaction names its commit site (`COMMIT_SITES`). When the store refuses one (a
`StorageError`: disk full, I/O error), that is never the workflow's error: the workflow is unwound
with `Abandoned` (a `BaseException`, so ``except Exception`` in user code never sees it), nothing of
the failed write is kept in memory (the object reloads from SQL), the run stays unfinished, and the
alarm retries it after `fault_backoff`. A request that hit the fault gets the `StorageError` itself.

A deployment mistake never fails a run either: a workflow the registry lacks (its module gone or
broken) or code that diverges from the run's history *holds* the run -- status ``waiting``, one
``run.waiting`` with reason ``code`` and a message, its open wait ``{"kind": "code", ...}`` -- and a
timer (`CODE_TIMER`) re-checks it after `hold_backoff`, so it continues by itself once the code
matches (on Cloudflare: after a redeploy; locally also when the workflow files change). An operator
may cancel it meanwhile.

Recovery is here once for both hosts: an operator's `command` (cancel, pause, resume, retry) is
carried out by the run's owner, or left in the inbox for it by anyone else (`apply_commands`); a
`retry` reopens a failed run at its failed steps, `fork` + `create(restart=...)` start a new run that
reuses another's results before a step, and `require_finished` guards deletion.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any, TypeVar

from ..engine import events as ev
from ..engine import outcome as outcome_kind
from ..engine.errors import (
    InvalidInput,
    RunFinished,
    RunNotFound,
    RunStateConflict,
    StorageError,
    Suspend,
    WorkflowNotFound,
)
from ..engine.history import (
    COMPLETED,
    EVENT,
    INPUT,
    PATCH,
    RETRYING,
    UNCHANGED,
    WAITING,
    Delivery,
    Offload,
    StepRecord,
)
from ..engine.history import FAILED as STEP_FAILED
from ..engine.history import RUNNING as STEP_RUNNING
from ..engine.registry import Registry
from ..engine.replay import continue_advice
from ..engine.run import Execution, to_json
from ..engine.schema import SchemaError, validate
from ..engine.status import TERMINAL, RunStatus
from ..migrations.runs_index import waiting_for
from .migrate import migrate
from .ports import Alarm, Blobs, Clock, Sql
from .store import CODE_TIMER, DEFAULT_THRESHOLD, RunStore, dumps

RUNNING = RunStatus.RUNNING
WAITING_STATUS = RunStatus.WAITING
PAUSED = RunStatus.PAUSED

Listener = Callable[[dict[str, Any]], None]
StatusHook = Callable[[dict[str, Any]], None]
T = TypeVar("T")

# -- named commit sites: each transaction of the coordinator passes one to `Sql.transaction` --------
#: The run row and its ``run.started`` event.
RUN_CREATE = "run.create"
#: A step attempt begins (``step.started``; not fsynced on its own).
STEP_START = "step.start"
#: A step's result, its state patch and ``step.completed``, together.
STEP_COMPLETE = "step.complete"
#: A failed attempt and its backoff timer (``step.retrying``).
STEP_RETRY = "step.retry"
#: A step (or a wait, on its timeout) failed for good (``step.failed``).
STEP_FAIL = "step.fail"
#: A sleep, event wait or question is recorded with its timer (``run.waiting``, ``input.requested``).
WAIT_BEGIN = "wait.begin"
#: A sleep is over, or a delivered event or answer is consumed by its wait.
WAIT_END = "wait.end"
#: The run's status between activations: ``running`` <-> ``waiting``.
STATUS_CHANGE = "status.change"
#: The run completes, fails or is cancelled (status, output or error, timers cleared, terminal event).
RUN_FINISH = "run.finish"
#: An event or an answer enters the inbox (and, for the owner, its ``*.received`` event).
DELIVERY = "delivery"
#: A delivery another process left in the inbox is acknowledged (``*.received``).
INGEST = "ingest"
#: Pause or resume (``run.paused`` / ``run.resumed``).
CONTROL = "control"
#: The run is held for its code, or released (status, the `CODE_TIMER`, ``run.waiting`` reason ``code``).
HOLD = "run.hold"
#: `Run.patched` records its decision (a ``patch`` marker) the first time a run evaluates it.
PATCH_MARK = "patch.mark"
#: A failed run is reopened: its failed steps get fresh attempts (``run.retried``).
RETRY = "run.retry"
COMMIT_SITES = (RUN_CREATE, STEP_START, STEP_COMPLETE, STEP_RETRY, STEP_FAIL, WAIT_BEGIN, WAIT_END,
                STATUS_CHANGE, RUN_FINISH, DELIVERY, INGEST, CONTROL, RETRY, HOLD, PATCH_MARK)

#: The inbox kind of an operator's command another process left for the one executing the run.
COMMAND = "command"
#: The commands `RunCoordinator.command` takes (each one also a method of the coordinator).
COMMANDS = ("cancel", "pause", "resume", "retry")

#: Retries of an activation the store refused: 1 s, doubling, at most a minute apart.
FAULT_RETRY_BASE = 1.0
FAULT_RETRY_MAX = 60.0


def fault_backoff(failures: int) -> float:
    """Seconds before retrying a run after ``failures`` consecutive activations the store refused."""
    return min(FAULT_RETRY_MAX, FAULT_RETRY_BASE * 2.0 ** min(max(failures - 1, 0), 16))


#: A held run is re-checked after at least this long, then after as long as it has been held, at most
#: `HOLD_RETRY_MAX` apart (a redeploy is noticed within that; locally a code change is noticed at once).
HOLD_RETRY_MIN = 5.0
HOLD_RETRY_MAX = 900.0


def hold_backoff(held_for: float) -> float:
    """Seconds before re-checking a run that has been held for its code for ``held_for`` seconds."""
    return min(HOLD_RETRY_MAX, max(HOLD_RETRY_MIN, held_for))


def commit_site(record: StepRecord) -> str:
    """The named site of a step record's commit, from the status it is committed with."""
    if record.kind == PATCH:
        return PATCH_MARK
    if record.status == STEP_RUNNING:
        return STEP_START
    if record.status == RETRYING:
        return STEP_RETRY
    if record.status == STEP_FAILED:
        return STEP_FAIL
    if record.status == WAITING:
        return WAIT_BEGIN
    return STEP_COMPLETE if record.kind == "step" else WAIT_END


class Evicted(Suspend):
    """Raised after a step commit in evict-after-every-step mode: the host drops and rebuilds us."""


class Abandoned(Suspend):
    """Unwinds the workflow when the store refused a commit or a read during an activation.

    A `BaseException` like every `Suspend`: a workflow's ``except Exception`` never catches it, so a
    storage fault can neither fail a step nor be swallowed into a wrong result.
    """


class RunCoordinator:
    """One run's coordinator. The host creates it per activation or keeps it warm; both are correct."""

    def __init__(
        self,
        run_id: str,
        sql: Sql,
        alarm: Alarm,
        clock: Clock,
        registry: Registry,
        *,
        on_status: StatusHook | None = None,
        evict_after_step: bool = False,
        blobs: Blobs | None = None,
        payload_threshold: int = DEFAULT_THRESHOLD,
        offload: Offload | None = None,
    ) -> None:
        self.run_id = run_id
        self.sql = sql
        self.alarm = alarm
        self.clock = clock
        self.registry = registry
        self.on_status = on_status
        self.evict_after_step = evict_after_step
        #: The host's port for sync step functions (the local runtime's threads); None runs them inline.
        self.offload = offload
        #: ``run.ai``'s factory (`flareflow.ai.host.AiHost`), set by a host that has AI ports; None: none.
        self.ai: Any = None
        self.store = RunStore(sql, run_id, blobs, payload_threshold)
        self.listeners: list[Listener] = []
        self.evicted = False
        self._info: dict[str, Any] | None = None
        self._lock = asyncio.Lock()
        self._wake = False
        self._task: asyncio.Future[Any] | None = None
        #: Why the last activation was abandoned (None: it was not); `faults`: how many in a row.
        self.abandoned: StorageError | None = None
        self.faults = 0
        self._stale = False
        self._origin: tuple[dict[str, Any] | None] | None = None  # `describe`'s restarted_from, once read
        migrate(sql, "run")
        self._info = self.store.load()

    def refresh(self) -> None:
        """Forget what memory holds and reload the run row and the next event seq from SQL."""
        self._info = self.store.load()
        self._stale = False

    def _commit(self, site: str, write: Callable[[], T], *, durable: bool = True) -> T:
        """One transaction at a named site. After a refused one, memory is reloaded before the next:
        the write may have happened after all (a failed COMMIT whose data reached the disk)."""
        if self._stale:
            self.refresh()
        try:
            return self.sql.transaction(write, durable=durable, site=site)
        except StorageError:
            self._forget()
            raise

    def _forget(self) -> None:
        """Drop what memory holds after a refused write: reload now if the store lets us, else later.

        A write refused only after its COMMIT went through is found in SQL then: its events go to
        the listeners and its status to the status hook, as if it had been reported."""
        self._stale = True
        published = self.store.next_seq
        status = None if self._info is None else self._info["status"]
        with contextlib.suppress(StorageError):
            self.refresh()
            if self.store.next_seq > published:
                for event in self.store.events(after=published - 1):
                    for listener in list(self.listeners):
                        listener(event)
            if self._info is not None and self._info["status"] != status:
                self._status_changed()

    # -- reading ---------------------------------------------------------------------------
    @property
    def exists(self) -> bool:
        return self._info is not None

    @property
    def info(self) -> dict[str, Any]:
        """The run row (status, input, output, error, state, timestamps)."""
        if self._info is None:
            raise RunNotFound(f"no run '{self.run_id}'")
        return self._info

    @property
    def status(self) -> str:
        return str(self.info["status"])

    def summary(self) -> dict[str, Any]:
        """What listings show: id, workflow, status and timestamps."""
        info = self.info
        return {
            "id": info["id"],
            "workflow": info["workflow"],
            "status": info["status"],
            "idempotency_key": info["idempotency_key"],
            "created_at": info["created_at"],
            "updated_at": info["updated_at"],
            # what the listing says a waiting run waits for (the history is read only then)
            "waiting_for": waiting_for(self.open_waits()) if info["status"] == RunStatus.WAITING else None,
        }

    def describe(self) -> dict[str, Any]:
        """Everything about the run: row, steps and open waits (for ``runs show`` and ``GET /runs/{id}``)."""
        if self._stale:
            self.refresh()
        info = dict(self.info)
        info["created_at"] = ev.iso(info["created_at"])
        info["updated_at"] = ev.iso(info["updated_at"])
        info["steps"] = self.store.steps()
        info["waiting"] = self.open_waits()
        info["last_seq"] = self.store.next_seq - 1
        if self._origin is None:  # it never changes: read once per object
            self._origin = (self.store.restarted_from(),)
        info["restarted_from"] = self._origin[0]
        return info

    def open_waits(self) -> list[dict[str, Any]]:
        """Sleeps, event waits and questions the run is currently suspended on; first, while it is held
        for its code, ``{"kind": "code", "name": workflow, "step", "message", "until": next re-check}``."""
        out = []
        held = self.store.hold()
        if held is not None:
            _, retry_at, body = held
            out.append({"step": body.get("step"), "kind": ev.CODE_REASON, "name": body.get("name"),
                        "until": ev.iso(retry_at), "message": body.get("message")})
        for rec in sorted(self.store.history().values(), key=lambda r: r.started_at or 0):
            if rec.status != WAITING:
                continue
            entry: dict[str, Any] = {"step": rec.key, "kind": rec.kind, "name": rec.name,
                                     "until": None if rec.wake_at is None else ev.iso(rec.wake_at)}
            if rec.kind == INPUT:
                entry["prompt"] = rec.meta.get("prompt")
                entry["schema"] = rec.meta.get("schema")
            if rec.kind == EVENT:
                entry["event_type"] = rec.meta.get("event_type")
            out.append(entry)
        return out

    def events(self, after: int = 0, limit: int | None = None) -> list[dict[str, Any]]:
        return self.store.events(after, limit)

    # -- creating --------------------------------------------------------------------------
    def create(self, workflow: str, input: Any, idempotency_key: str | None = None, *,
               trigger: str | None = None, restart: dict[str, Any] | None = None) -> None:
        """Record a new run and its ``run.started`` event (one transaction). Call `activate` next.

        ``trigger`` (``"cron"`` for a scheduled start) is recorded on ``run.started``; API starts have none.
        ``restart`` (what `RunCoordinator.fork` of another run returned) makes it a restart of that run:
        its reused steps are recorded as they completed there, and ``run.started`` says
        ``restarted_from`` and ``reused``.
        """
        if self._info is not None:
            raise InvalidInput(f"run '{self.run_id}' already exists", "run_id")
        defn = self.registry.get(workflow)
        value, text = to_json(input, "the run input", "input")
        if defn.input_required and value is None:
            raise InvalidInput(f"workflow '{workflow}' requires an input", "input")
        if not defn.takes_input and value is not None:
            raise InvalidInput(f"workflow '{workflow}' takes no input", "input")
        if trigger is not None and trigger not in ev.TRIGGERS:
            raise InvalidInput(f"unknown start trigger '{trigger}' (known: {', '.join(ev.TRIGGERS)})", "trigger")
        started: dict[str, Any] = {"workflow": workflow, "input": value}
        if trigger is not None:
            started["trigger"] = trigger
        seeds = [] if restart is None else [seed_record(step) for step in restart.get("steps") or []]
        if restart is not None:
            started["restarted_from"] = restart["from"]
            started["reused"] = [rec.key for rec in seeds]
        now = self.clock.now()

        def write() -> list[dict[str, Any]]:
            self.store.insert_run(workflow, text, idempotency_key, now)
            for rec in seeds:
                self.store.save_step(rec, now)
            return self.store.append([(ev.RUN_STARTED, started)], now)

        wire = self._commit(RUN_CREATE, write)
        self._after_commit(wire)
        self._info = self.store.load()
        self._status_changed()

    # -- the Journal port ------------------------------------------------------------------
    def now(self) -> float:
        return self.clock.now()

    async def sleep(self, seconds: float) -> None:
        await self.clock.sleep(seconds)

    def commit(
        self,
        record: StepRecord,
        events: list[tuple[str, dict[str, Any]]],
        *,
        state: Any = UNCHANGED,
        delivery: int | None = None,
        durable: bool = True,
    ) -> None:
        if self.abandoned is not None:
            raise Abandoned()  # the store refused an earlier commit of this activation: write nothing more
        if self.info["status"] == PAUSED and record.status == STEP_RUNNING:
            raise Suspend()  # paused: start nothing new; the current activation unwinds here
        now = self.clock.now()

        def write() -> list[dict[str, Any]]:
            self.store.save_step(record, now)
            if state is not UNCHANGED:
                self.store.set_state(state, now)
            if delivery is not None:
                self.store.consume(delivery, record.key)
            return self.store.append(events, now)

        try:
            wire = self._commit(commit_site(record), write, durable=durable)
        except StorageError as exc:
            self.abandoned = exc
            raise Abandoned() from None
        if state is not UNCHANGED and self._info is not None:
            self._info["state"] = state
        self._after_commit(wire)
        if self.evict_after_step and record.status == COMPLETED and record.kind == "step":
            self.evicted = True
            raise Evicted()

    def find_delivery(self, kind: str, match: str) -> Delivery | None:
        try:
            found = self.store.find_delivery(kind, match)
        except StorageError as exc:
            self.abandoned = exc
            raise Abandoned() from None
        return None if found is None else Delivery(found[0], found[1])

    def _after_commit(self, wire: list[dict[str, Any]]) -> None:
        self.store.advance(len(wire))
        for event in wire:
            for listener in list(self.listeners):
                listener(event)

    # -- activation ------------------------------------------------------------------------
    async def activate(self) -> bool:
        """Run the workflow until it completes, fails or must wait. Re-entrant calls coalesce.

        Returns False when another activation was already under way (it will pick up the wake).
        """
        self._wake = True
        if self._lock.locked():
            return False
        async with self._lock:
            while self._wake and not self.evicted:
                self._wake = False
                await self._activate_once()
                if self.abandoned is not None:
                    break  # the retry comes from the alarm, after the backoff
        return True

    async def alarm_fired(self) -> None:
        """The host's alarm went off: due timers are handled by replaying."""
        await self.activate()

    async def _activate_once(self) -> None:
        """One activation; a `StorageError` anywhere in it abandons it (see the module docstring)."""
        self.abandoned = None
        try:
            await self._activation()
        except StorageError as exc:
            self.abandoned = exc
        if self.abandoned is None:
            self.faults = 0
            return
        self._forget()  # whatever the refused write left in memory is dropped
        self.faults += 1
        self.alarm.set(self.clock.now() + fault_backoff(self.faults))

    async def _activation(self) -> None:
        if self._stale:
            self.refresh()
        self.ingest()  # first: a command in the inbox may reopen a finished run (retry)
        info = self.info
        if info["status"] in TERMINAL:
            self.alarm.set(None)
            return
        if info["status"] == PAUSED:
            return
        try:
            defn = self.registry.get(info["workflow"])
        except WorkflowNotFound as exc:
            self._hold(None, f"{exc}; the run is held until its code is back (or cancel it)", None)
            return
        held = self.store.hold() is not None
        execution = Execution(defn, self.run_id, info["input"], self, self.store.history(), info["state"])
        if info["status"] != RUNNING:
            self._set_status(RUNNING)
        task = asyncio.ensure_future(execution.execute())
        self._task = task
        try:
            await asyncio.wait({task})
        except asyncio.CancelledError:
            task.cancel()
            raise
        finally:
            self._task = None
        if task.cancelled() or self.abandoned is not None or self.info["status"] in TERMINAL:
            return
        outcome = task.result()
        if outcome.kind == outcome_kind.COMPLETED:
            self._finish(RunStatus.COMPLETED, output=outcome.output, patch=outcome.patch, state=outcome.state)
        elif outcome.kind == outcome_kind.FAILED:
            self._finish(RunStatus.FAILED, error=outcome.error)
        elif outcome.kind == outcome_kind.HELD:
            error = outcome.error or {}
            divergence = error.get("divergence") or {}
            step = (divergence.get("recorded") or {}).get("key")
            self._hold(step, f"{error.get('message')}; the run is held until the code matches its history "
                       f"again: {continue_advice(defn, divergence)}; or cancel it", divergence)
        else:
            if held:
                self._commit(HOLD, lambda: self.store.delete_timer(CODE_TIMER))
            if not self.evicted and self.info["status"] != PAUSED:
                self._set_status(WAITING_STATUS)
            self.alarm.set(self.store.next_timer())

    def _hold(self, step: str | None, message: str, divergence: dict[str, Any] | None) -> None:
        """Hold the run for its code: ``waiting``, re-checked by the `CODE_TIMER` after `hold_backoff`.

        ``run.waiting`` (reason ``code``) is emitted when the hold begins or its message changes, not
        on every re-check that finds the code still wrong."""
        now = self.clock.now()
        current = self.store.hold()
        same = current is not None and current[2].get("message") == message
        since = current[0] if current is not None and same else now
        retry_at = now + hold_backoff(now - since)
        body: dict[str, Any] = {"reason": ev.CODE_REASON, "step": step, "name": self.info["workflow"],
                                "until": ev.iso(retry_at), "message": message}
        if divergence:
            body["divergence"] = divergence

        def write() -> list[dict[str, Any]]:
            self.store.set_status(WAITING_STATUS, now)
            self.store.set_timer(CODE_TIMER, ev.CODE_REASON, retry_at)
            return [] if same else self.store.append([(ev.RUN_WAITING, body)], now)

        wire = self._commit(HOLD, write)
        self.info.update(status=WAITING_STATUS, updated_at=now)
        self._after_commit(wire)
        self._status_changed()
        self.alarm.set(retry_at)  # only the re-check: the run's own timers wait until it is released

    def _finish(self, status: str, *, output: Any = None, error: Any = None,
                patch: list[dict[str, Any]] | None = None, state: Any = UNCHANGED) -> None:
        now = self.clock.now()
        if status == RunStatus.COMPLETED:
            event: tuple[str, dict[str, Any]] = (ev.RUN_COMPLETED, {"output": output, "patch": patch or []})
        elif status == RunStatus.FAILED:
            event = (ev.RUN_FAILED, {"error": error})
        else:
            event = (ev.RUN_CANCELLED, {"reason": error})

        def write() -> list[dict[str, Any]]:
            if state is not UNCHANGED and patch:
                self.store.set_state(state, now)
            self.store.set_status(status, now, output=output, error=error, has_output=status == RunStatus.COMPLETED)
            self.store.clear_timers()
            return self.store.append([event], now)

        wire = self._commit(RUN_FINISH, write)
        self.alarm.set(None)
        info = self.info
        info.update(status=status, updated_at=now)
        if status == RunStatus.COMPLETED:
            info["output"] = output
        elif error is not None:
            info["error"] = error
        if state is not UNCHANGED and patch:
            info["state"] = state
        self._after_commit(wire)
        self._status_changed()

    def _set_status(self, status: str) -> None:
        now = self.clock.now()
        self._commit(STATUS_CHANGE, lambda: self.store.set_status(status, now), durable=False)
        self.info["status"] = status
        self.info["updated_at"] = now
        self._status_changed()

    def _status_changed(self) -> None:
        if self.on_status is not None and self._info is not None:
            self.on_status(self.summary())

    # -- deliveries ------------------------------------------------------------------------
    def ingest(self) -> int:
        """Acknowledge inbox entries written by another process: apply its commands (`apply_commands`)
        and emit the ``*.received`` events of its deliveries (those wait while the run is finished)."""
        pending = self.store.unacked()
        count = self.apply_commands(pending)
        for delivery_id, kind, match, payload in pending:
            if kind == COMMAND or self.status in TERMINAL:
                continue
            count += 1
            now = self.clock.now()
            body = self._received_body(kind, match, payload)

            def write(delivery_id: int = delivery_id, body: tuple[str, dict[str, Any]] = body,
                      now: float = now) -> list[dict[str, Any]]:
                self.store.ack(delivery_id)
                return self.store.append([body], now)

            self._after_commit(self._commit(INGEST, write))
        return count

    def apply_commands(self, pending: list[tuple[int, str, str, Any]] | None = None) -> int:
        """Carry out the commands another process left in the inbox (oldest first), each then
        acknowledged. One the run no longer takes (a cancel of a run finished meanwhile) is dropped:
        the requester checked it when it asked. Returns how many there were."""
        entries = [e for e in (self.store.unacked() if pending is None else pending) if e[1] == COMMAND]
        for delivery_id, _, op, payload in entries:
            reason = payload.get("reason") if isinstance(payload, dict) else None
            with contextlib.suppress(RunFinished, RunStateConflict, InvalidInput):
                self.command(op, reason)

            def ack(delivery_id: int = delivery_id) -> None:
                self.store.ack(delivery_id)

            self._commit(INGEST, ack)
        return len(entries)

    def command(self, op: str, reason: str | None = None, *, owner: bool = True) -> int | None:
        """An operator's command (one of `COMMANDS`), checked against the run's status at once.

        The owner (the process or object executing the run) carries it out; anyone else leaves it in
        the inbox for the owner and gets the inbox entry's id. Call `activate` after a ``resume`` or
        a ``retry``."""
        if op not in COMMANDS:
            raise InvalidInput(f"unknown command '{op}' (known: {', '.join(COMMANDS)})", "command")
        if op == "retry":
            self._require_failed()
        else:
            self._require_open("commands")
        if not owner:
            return self._enqueue(COMMAND, op, {"reason": reason}, False)
        if op == "cancel":
            self.cancel(reason or "cancelled")
        elif op == "pause":
            self.pause(reason or "paused")
        elif op == "resume":
            self.resume()
        else:
            self.retry()
        return None

    @staticmethod
    def _received_body(kind: str, match: str, payload: Any) -> tuple[str, dict[str, Any]]:
        if kind == EVENT:
            return ev.EVENT_RECEIVED, {"event_type": match, "payload": payload}
        return ev.INPUT_RECEIVED, {"step": match, "value": payload}

    def _require_open(self, what: str) -> None:
        status = self.info["status"]
        if status in TERMINAL:
            raise RunFinished(f"run '{self.run_id}' is {status}; it takes no more {what}")

    def deliver_event(self, event_type: str, payload: Any = None, *, owner: bool = True) -> int:
        """Put an event in the inbox. The owner acknowledges it at once; call `activate` after."""
        self._require_open("events")
        if not isinstance(event_type, str) or not event_type.strip():
            raise InvalidInput("the event type must be a non-empty string", "type")
        value, _ = to_json(payload, "the event payload", "payload")
        return self._enqueue(EVENT, event_type, value, owner)

    def answer(self, value: Any, step: str | None = None, *, owner: bool = True) -> str:
        """Answer the open question (or the one at ``step``), validated against its schema."""
        self._require_open("answers")
        value, _ = to_json(value, "the answer", "value")
        questions = [w for w in self.open_waits() if w["kind"] == INPUT]
        answered = {m for kind, m in self._pending_inbox() if kind == INPUT}
        questions = [q for q in questions if q["step"] not in answered]
        if step is not None:
            chosen = [q for q in questions if q["step"] == step or q["name"] == step]
            if not chosen:
                raise InvalidInput(f"run '{self.run_id}' has no open question '{step}'", "step")
        else:
            chosen = questions
            if not chosen:
                raise InvalidInput(f"run '{self.run_id}' is not waiting for an answer", "value")
            if len(chosen) > 1:
                names = ", ".join(q["step"] for q in chosen)
                raise InvalidInput(f"run '{self.run_id}' has {len(chosen)} open questions ({names}); "
                                   "say which one", "step")
        question = chosen[0]
        try:
            validate(value, question.get("schema"))
        except SchemaError as exc:
            raise InvalidInput(f"answer rejected: {exc}", "value") from None
        self._enqueue(INPUT, question["step"], value, owner)
        return str(question["step"])

    def _pending_inbox(self) -> list[tuple[str, str]]:
        rows = self.sql.exec("SELECT kind, match FROM inbox WHERE consumed_by IS NULL")
        return [(str(r[0]), str(r[1])) for r in rows]

    def _enqueue(self, kind: str, match: str, value: Any, owner: bool) -> int:
        now = self.clock.now()

        def write() -> tuple[int, list[dict[str, Any]]]:
            delivery_id = self.store.enqueue(kind, match, value, now, acked=owner)
            if not owner:
                return delivery_id, []
            return delivery_id, self.store.append([self._received_body(kind, match, value)], now)

        delivery_id, wire = self._commit(DELIVERY, write)
        self._after_commit(wire)
        return delivery_id

    # -- pause and resume ------------------------------------------------------------------
    def pause(self, reason: str = "paused") -> None:
        """Hold the run: a running step finishes, nothing new starts, timers wait until `resume`."""
        self._require_open("commands")
        if self.status == PAUSED:
            return
        self._transition(PAUSED, (ev.RUN_PAUSED, {"reason": reason}))

    def resume(self) -> bool:
        """Release a paused run (call `activate` next). False if it was not paused."""
        self._require_open("commands")
        if self.status != PAUSED:
            return False
        self._transition(WAITING_STATUS, (ev.RUN_RESUMED, {}))
        return True

    def _transition(self, status: str, event: tuple[str, dict[str, Any]]) -> None:
        now = self.clock.now()

        def write() -> list[dict[str, Any]]:
            self.store.set_status(status, now)
            return self.store.append([event], now)

        wire = self._commit(CONTROL, write)
        self.info["status"] = status
        self.info["updated_at"] = now
        self._after_commit(wire)
        self._status_changed()

    # -- retry, restart and deletion --------------------------------------------------------
    def _require_failed(self) -> None:
        if self.status != RunStatus.FAILED:
            raise RunStateConflict(f"run '{self.run_id}' is {self.status}; only a failed run can be retried "
                                   "(a new run from one of its steps: restart)")

    def retry(self) -> list[str]:
        """Continue a failed run from where it failed (call `activate` next): each failed step gets
        fresh attempts under its retry policy (its attempt numbers go on), a wait that timed out is
        opened again with its full timeout, completed steps keep their results. One transaction:
        status ``running``, the error cleared, ``run.retried`` naming the reopened steps."""
        self._require_failed()
        now = self.clock.now()
        failed = [rec for rec in self.store.history().values() if rec.status == STEP_FAILED]

        def write() -> list[dict[str, Any]]:
            for rec in failed:
                if rec.kind == "step":
                    rec.status, rec.failures, rec.wake_at = RETRYING, 0, None
                    self.store.save_step(rec, now)
                else:  # reached again, it records its wait anew
                    self.store.delete_step(rec.key)
            self.store.reopen(now)
            return self.store.append([(ev.RUN_RETRIED, {"steps": [rec.key for rec in failed]})], now)

        wire = self._commit(RETRY, write)
        self.info.update(status=RUNNING, error=None, updated_at=now)
        self._after_commit(wire)
        self._status_changed()
        return [rec.key for rec in failed]

    def fork(self, from_step: str | None = None) -> dict[str, Any]:
        """What a restart of this run needs (`create` with ``restart=``): its workflow and input, and
        the completed steps recorded before ``from_step`` (a step key, or a name: its first
        occurrence), in recorded order, with their results. None: from the beginning, nothing reused."""
        steps = self.store.steps()
        chosen = None
        if from_step is not None:
            chosen = next((s["step"] for s in steps if s["step"] == from_step), None) or next(
                (s["step"] for s in steps if s["name"] == from_step), None)
            if chosen is None:
                known = ", ".join(s["step"] for s in steps[:20]) or "none yet"
                raise InvalidInput(f"run '{self.run_id}' has no step '{from_step}' (its steps: {known})", "from_step")
        before = [] if chosen is None else [s["step"] for s in steps[:[s["step"] for s in steps].index(chosen)]]
        history = self.store.history()
        reused = [history[key] for key in before if history[key].status == COMPLETED]
        return {"workflow": self.info["workflow"], "input": self.info["input"],
                "from": {"run_id": self.run_id, "step": chosen},
                "steps": [{"key": r.key, "pos": r.pos, "kind": r.kind, "name": r.name, "attempts": r.attempts,
                           "result": r.result, "started_at": r.started_at, "meta": r.meta} for r in reused]}

    def require_finished(self, what: str = "deleted") -> None:
        """`RunStateConflict` unless the run is finished (an unfinished one is cancelled first)."""
        if self.status not in TERMINAL:
            raise RunStateConflict(f"run '{self.run_id}' is {self.status}; only a finished run can be {what} "
                                   "(cancel it first)")

    # -- cancellation ----------------------------------------------------------------------
    def cancel(self, reason: str = "cancelled") -> None:
        """Stop the run for good: interrupt a running step, drop timers, emit ``run.cancelled``."""
        self._require_open("commands")
        self._finish(RunStatus.CANCELLED, error=reason)
        if self._task is not None:
            self._task.cancel()


def seed_record(step: dict[str, Any]) -> StepRecord:
    """A completed step of another run (an entry of `RunCoordinator.fork`'s ``steps``) as a record of
    a new one."""
    try:
        return StepRecord(str(step["key"]), str(step["pos"]), str(step["kind"]), str(step["name"]), COMPLETED,
                          int(step.get("attempts") or 1), 0, step.get("result"), None, None,
                          step.get("started_at"), dict(step.get("meta") or {}))
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidInput(f"a reused step is malformed ({exc})", "steps") from None


def open_run_object(
    run_id: str, sql: Sql, alarm: Alarm, clock: Clock, registry: Registry, **options: Any
) -> RunCoordinator:
    """A `RunCoordinator` over existing storage; `StorageError` when the storage is not a run's."""
    obj = RunCoordinator(run_id, sql, alarm, clock, registry, **options)
    if not obj.exists:
        raise StorageError(f"run '{run_id}' has no stored state")
    return obj


__all__ = ["COMMANDS", "COMMIT_SITES", "Abandoned", "Evicted", "RunCoordinator", "commit_site", "dumps",
           "fault_backoff", "open_run_object", "seed_record"]

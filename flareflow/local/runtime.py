"""The embedded runtime: hosts run objects in this process, on one sqlite3 file per run.

Layout of the state directory (default ``.flareflow/state/``)::

    index.db          one row per run (the local stand-in for the D1 index)
    runs/<id>.db      the run's own database: run row, steps, events, timers, inbox
    runs.lock         one byte-range lock per run, held by the process that executes it; the kernel
                      releases it when that process dies, however it dies

A process executes only the runs whose lock it holds. Others may read any run and leave events
and answers in its inbox; the owner notices (``PRAGMA data_version``, or the file's size and time
while the run is closed) and picks them up.

The number of runs on disk does not matter: start-up opens only the runs the index lists as
unfinished (and files it does not know), one at a time; run databases are opened when used and
closed when idle, at most `open_budget` at once (derived from RLIMIT_NOFILE: each costs three
descriptors). Files in ``runs/`` that are not run files are ignored with one warning each; a
damaged ``index.db`` (derived data) is moved aside and rebuilt from the run files.

A refused write (disk full, I/O error) never fails a run: the coordinator abandons the activation
and its alarm retries it with backoff; requests that hit it get the `StorageError` (503 over HTTP).

`LocalRuntime` is the facade; the concerns it composes live beside it: ``locks`` (which process
executes which run: `Ownership`), ``runfiles`` (run databases from a template, what is a run file),
``budget`` (how many run databases may be open), ``alarms`` (one alarm per run on the clock),
``objects`` (the open runs, least recently used first, closed under the budget: `OpenRuns`),
``inbox`` (deliveries other processes leave: `InboxPoller`), ``index`` (the run index), ``blobs``,
``threads`` (sync steps off the loop).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..durable_objects.coordinator import RunCoordinator, fault_backoff
from ..durable_objects.faults import Faults
from ..durable_objects.ports import Blobs, Clock, SystemClock
from ..durable_objects.store import DEFAULT_THRESHOLD
from ..engine.errors import RunNotFound, StorageError
from ..engine.ids import new_run_id
from ..engine.registry import Registry, default_registry
from ..engine.status import TERMINAL, UNFINISHED, RunStatus
from ..migrations.runs_index import PRUNE_LIMIT, prune_query
from .ai import local_ai_host
from .alarms import Alarms
from .blobs import FileBlobs
from .budget import open_budget
from .inbox import InboxPoller
from .index import RunIndex
from .live import LiveFrames
from .locks import Ownership
from .objects import OpenRuns
from .runfiles import OWN_TABLES, RUN_COMPANION, RUN_FILE, RunFiles
from .sqlite import SqliteSql, UnreadableDatabase
from .threads import DEFAULT_STEP_THREADS, StepThreads

log = logging.getLogger("flareflow.local")

#: How long an operator's command waits for the process executing the run to carry it out, and how
#: often it looks (that process looks at its inboxes every `flareflow.local.inbox.POLL_SECONDS`).
COMMAND_WAIT = 10.0
COMMAND_POLL = 0.05

Listener = Callable[[dict[str, Any]], None]


class LocalRuntime:
    """Per-run objects in-process, their alarms, and the run index. Use as ``async with``."""

    def __init__(
        self,
        state_dir: Path | str,
        registry: Registry | None = None,
        *,
        clock: Clock | None = None,
        sync: str = "normal",
        evict_after_step: bool = False,
        payload_threshold: int = DEFAULT_THRESHOLD,
        max_open: int | None = None,
        faults: Faults | None = None,
        step_threads: int = DEFAULT_STEP_THREADS,
    ) -> None:
        """``max_open`` caps open run databases (default `open_budget`); ``faults`` wraps every run's
        `Sql` port and the blob store for fault-injection tests (`flareflow.durable_objects.faults`)."""
        self.state_dir = Path(state_dir)
        self.runs_dir = self.state_dir / "runs"
        self.registry = registry if registry is not None else default_registry
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.sync = sync
        self.evict_after_step = evict_after_step
        self.payload_threshold = payload_threshold
        #: Where sync step functions run (``step_threads`` at once); 0: inline on the loop, as on the Worker.
        self.threads = StepThreads(step_threads) if step_threads > 0 else None
        self.faults = faults
        self.max_open = max(2, max_open if max_open is not None else open_budget())
        self.blobs = FileBlobs(self.state_dir / "blobs", fsync=sync == "full")
        self._blob_port: Blobs = faults.blobs(self.blobs) if faults is not None else self.blobs
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        self.files = RunFiles(self.state_dir, self.runs_dir, sync)
        self.index = self._open_index()
        self.ownership = Ownership(self.state_dir)  # the runs this runtime executes
        self.open_runs = OpenRuns(self.files, sync, self.max_open, self.ownership, self._new_object)
        #: The open run objects, least recently used first (`OpenRuns.objects`).
        self.objects = self.open_runs.objects
        # activations in flight at once: a few open slots stay free for reads of other runs
        self._slots = asyncio.Semaphore(max(1, self.max_open - max(1, self.max_open // 8)))
        self.inbox = InboxPoller(self.open_runs, self.ownership, self.schedule, self._retry_index)
        self._open_faults: dict[str, int] = {}
        self._index_pending: dict[str, dict[str, Any] | None] = {}  # index writes the store refused
        self._index_refused = False
        self._strays: set[str] = set()
        self._damaged: set[str] = set()
        self.alarms = Alarms(self.clock, self.schedule)  # one alarm per run, on the runtime's clock
        self._subscribers: dict[str, list[Listener]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._background: list[asyncio.Task[None]] = []
        self._settled: dict[str, asyncio.Event] = {}
        self.evictions = 0
        self.closed = False
        #: Frames that are not events (a streamed AI answer's ``ai.token``): to current listeners only.
        self.live = LiveFrames()
        #: ``run.ai``'s host: the state directory's cache and the index's call log, and no provider until
        #: the project's ``[tool.flareflow.ai]`` says one (the CLI sets it: `flareflow.cli.backends`); a
        #: call then fails naming the setting (and a test's mock of the step still answers).
        self.ai: Any = local_ai_host(self.state_dir, None, self.index, self.clock.now, stream=self.live.token)

    # -- lifecycle -------------------------------------------------------------------------
    async def __aenter__(self) -> LocalRuntime:
        self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def start(self) -> None:
        """Start the alarm scheduler and the inbox poller (needs a running event loop)."""
        if not self._background:
            self._background = [asyncio.ensure_future(self.alarms.run()),
                                asyncio.ensure_future(self.inbox.run())]

    async def close(self) -> None:
        """Stop background work and release every run this process owned (they stay resumable)."""
        if self.closed:
            return
        self.closed = True
        for task in [*self._background, *self._tasks]:
            task.cancel()
        for task in [*self._background, *self._tasks]:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self.threads is not None:
            self.threads.close()  # a step still blocked in a thread was abandoned above; not waited for
        self.open_runs.close_all()
        self.ownership.release_all()
        self.index.close()

    def _open_index(self) -> RunIndex:
        """The run index; a damaged one is derived data: moved aside and rebuilt by `reconcile`."""
        path = self.state_dir / "index.db"
        try:
            if path.exists() and not path.is_file():
                raise UnreadableDatabase("index.db: not a file")
            return RunIndex(path)
        except UnreadableDatabase as exc:
            aside = self.state_dir / "index.db.damaged"
            log.warning("%s; moved it to %s and rebuilding the index from the run files (schedules "
                        "start again from the current minute)", exc, aside.name)
            if aside.is_dir() and not aside.is_symlink():
                shutil.rmtree(aside)  # the previous damaged copy: the newest one is kept
            elif aside.exists() and path.is_dir():
                aside.unlink()
            os.replace(path, aside)
            for suffix in ("-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
            return RunIndex(path)

    # -- paths and ownership ---------------------------------------------------------------
    def db_path(self, run_id: str) -> Path:
        return self.files.path(run_id)

    def owns(self, run_id: str) -> bool:
        """Whether this runtime executes the run (holds its lock)."""
        return self.ownership.holds(run_id)

    def resolve(self, ref: str) -> str:
        """A full run id from an id or a unique prefix of one."""
        if not ref or not all(c in "0123456789abcdef" for c in ref):
            raise RunNotFound(f"no run '{ref}' (run ids are lowercase hex)")
        if self.db_path(ref).exists():
            return ref
        matches = sorted(p.stem for p in self.runs_dir.glob(f"{ref}*.db") if RUN_FILE.fullmatch(p.name))
        if len(matches) == 1:
            return matches[0]
        if not matches:
            raise RunNotFound(f"no run '{ref}' in {self.state_dir}")
        raise RunNotFound(f"run id prefix '{ref}' is ambiguous: {', '.join(matches[:5])}")

    # -- objects ---------------------------------------------------------------------------
    def _new_object(self, run_id: str, sql: SqliteSql) -> RunCoordinator:
        """The run's object on its connection (wrapped by the fault injector in tests), with the
        runtime's ports; `OpenRuns` calls it to build one."""
        obj = RunCoordinator(
            run_id,
            self.faults.sql(sql, run_id) if self.faults is not None else sql,
            self.alarms.port(run_id),
            self.clock,
            self.registry,
            on_status=self._index_status,
            evict_after_step=self.evict_after_step,
            blobs=self._blob_port,
            payload_threshold=self.payload_threshold,
            offload=self.threads.run if self.threads is not None else None,
        )
        obj.listeners.append(lambda event: self._publish(run_id, event))
        obj.ai = self.ai
        return obj

    def get(self, run_id: str) -> RunCoordinator:
        """The run's object, built from SQL if it is not in memory. Raises `RunNotFound`."""
        return self.open_runs.get(self.resolve(run_id))

    def evict(self, run_id: str, *, counted: bool = True) -> None:
        """Drop the in-memory object and its connection; the next access rebuilds from SQL.

        ``counted`` evictions are the ones tests care about (evict-after-every-step, explicit calls).
        """
        self.open_runs.evict(run_id)
        if counted:
            self.evictions += 1

    # -- the index -------------------------------------------------------------------------
    def _index_status(self, summary: dict[str, Any] | None, run_id: str | None = None) -> None:
        """Write a run's row (None: delete it). A store that refuses keeps it pending, retried by
        the poll loop: the run's own file is the truth, and the index must not fail a run."""
        key = str(summary["id"]) if summary is not None else str(run_id)
        self._index_pending[key] = summary
        self._flush_index()

    def _flush_index(self) -> bool:
        """Apply pending index writes; False while the store still refuses them."""
        while self._index_pending:
            run_id, row = next(iter(self._index_pending.items()))
            try:
                if row is None:
                    self.index.delete(run_id)
                else:
                    self.index.upsert(row)
            except StorageError as exc:
                if not self._index_refused:
                    log.warning("index.db: %s; %d run row(s) will be written when it accepts writes",
                                exc, len(self._index_pending))
                self._index_refused = True
                return False
            if self._index_pending.get(run_id, False) is row:
                del self._index_pending[run_id]
        self._index_refused = False
        return True

    def _retry_index(self) -> None:
        """Index writes a refusing store kept pending, tried again (each round of the inbox poller)."""
        if self._index_pending:
            self._flush_index()

    # -- starting and driving runs ---------------------------------------------------------
    async def start_run(self, workflow: str, input: Any = None, *, idempotency_key: str | None = None,
                        activate: bool = True) -> RunCoordinator:
        """Create a run (or return the one holding ``idempotency_key``) and begin executing it."""
        obj, _ = await self.start_or_get(workflow, input, idempotency_key=idempotency_key, activate=activate)
        return obj

    async def start_or_get(self, workflow: str, input: Any = None, *, idempotency_key: str | None = None,
                           activate: bool = True, trigger: str | None = None,
                           restart: dict[str, Any] | None = None) -> tuple[RunCoordinator, bool]:
        """Like `start_run`, and say whether this call created the run (False: the key's existing run).

        ``trigger`` (``"cron"``) is recorded on the new run's ``run.started`` event; ``restart`` (a
        `RunCoordinator.fork`) makes the new run a restart of another (`RunCoordinator.create`)."""
        defn = self.registry.get(workflow)
        if idempotency_key is not None:
            self._flush_index()  # a start the store refused must not answer for its key
            existing = self.index.by_key(idempotency_key)
            if existing is not None and not (existing in self._index_pending
                                             and self._index_pending[existing] is None):
                return self.get(existing), False
        now = self.clock.now()
        run_id = new_run_id(now)
        row = {"id": run_id, "workflow": defn.name, "status": str(RunStatus.RUNNING),
               "idempotency_key": idempotency_key, "created_at": now, "updated_at": now}
        if not self.ownership.take(run_id):  # pragma: no cover - a fresh random id cannot be locked by others
            raise StorageError(f"run '{run_id}' is locked by another process")
        # locked before it is indexed, so another process's reconcile never drops the fresh row
        try:
            holder = self.index.reserve(row)
        except BaseException:
            self.ownership.release(run_id)
            raise
        if holder is not None:
            self.ownership.release(run_id)
            return self.get(holder), False
        try:
            self.files.create(self.db_path(run_id))
            obj = self.open_runs.build(run_id)
            obj.create(defn.name, input, idempotency_key, trigger=trigger, restart=restart)
        except BaseException:
            self._abort_start(run_id)
            raise
        self.open_runs.keep(run_id, obj)
        if activate:
            self.schedule(run_id)
        return obj, True

    def _abort_start(self, run_id: str) -> None:
        """Undo a start that failed half-way: no file, no index row, no lock (best effort each)."""
        self.open_runs.close(run_id)
        for suffix in (".db", ".db-wal", ".db-shm"):
            with contextlib.suppress(OSError):
                (self.runs_dir / f"{run_id}{suffix}").unlink()
        self._index_status(None, run_id)
        self.ownership.release(run_id)

    def schedule(self, run_id: str) -> None:
        """Activate the run in the background (if this process owns it)."""
        task = asyncio.ensure_future(self._drive(run_id))
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("run activation crashed", exc_info=task.exception())

    async def _drive(self, run_id: str) -> None:
        if not self.ownership.take(run_id):
            return
        async with self._slots:
            with self.open_runs.in_use(run_id):
                while not self.closed:
                    try:
                        obj = self.get(run_id)
                    except StorageError as exc:
                        self._retry_later(run_id, exc)
                        break
                    self._open_faults.pop(run_id, None)
                    ran = await obj.activate()
                    if ran and obj.abandoned is not None:
                        log.warning("run %s: %s; activation abandoned, nothing of it kept, retrying in %gs",
                                    run_id, obj.abandoned, fault_backoff(obj.faults))
                    if not ran or not obj.evicted:
                        break  # only the driver that ran the activation may drop the object
                    self.evict(run_id)
        self._notify_settled(run_id)

    def _retry_later(self, run_id: str, exc: StorageError) -> None:
        """The run could not even be opened (a refusing store): try again after a backoff."""
        failures = self._open_faults[run_id] = self._open_faults.get(run_id, 0) + 1
        delay = fault_backoff(failures)
        log.warning("run %s: %s; retrying in %gs", run_id, exc, delay)
        self.alarms.set(run_id, self.clock.now() + delay)

    async def activate(self, run_id: str) -> None:
        """Activate now and wait for this activation to finish (used by tests and the CLI)."""
        await self._drive(self.resolve(run_id))

    async def idle(self) -> None:
        """Wait until no activation is in flight or scheduled and no alarm is due on the clock: the
        moment a test may move a skipped clock (`flareflow.testing`) or look at settled runs."""
        while True:
            if self._tasks:
                await asyncio.wait(set(self._tasks))
                continue
            due = self.alarms.next()
            await asyncio.sleep(0)  # a due alarm (or a delivery's schedule) becomes a task in a turn or two
            if not self._tasks and (due is None or due > self.clock.now()) and self.alarms.next() == due:
                return

    async def recover(self, run_ids: list[str] | None = None) -> list[str]:
        """Continue unfinished runs (all of them, or the given ones) that no other process owns: after a
        crash, a detach or a restart. (Un-pausing a paused run is `unpause`, the API's ``resume``.)"""
        self.reconcile()
        resumed = []
        if run_ids is None:  # the index now agrees with every unfinished run file: nothing else is opened
            candidates = [r for r in self.index.ids(tuple(sorted(UNFINISHED))) if r not in self._damaged]
        else:
            candidates = [self.resolve(ref) for ref in run_ids]
        for run_id in candidates:
            if run_ids is not None and self.get(run_id).status in TERMINAL:
                continue
            if not self.ownership.take(run_id):
                continue
            resumed.append(run_id)
            self.schedule(run_id)
        return resumed

    def held_runs(self) -> list[str]:
        """Ids of the runs held for their code (a missing or broken workflow module, a replay
        divergence), from the index's ``waiting_for``: no run file is opened to find them."""
        return self.index.held()

    def recheck_held(self) -> list[str]:
        """Activate every held run no other process executes (after the workflow code changed): those
        whose code is back now continue; the others stay held. Returns the ids re-checked."""
        rechecked = []
        for run_id in self.held_runs():
            if self.ownership.take(run_id):
                rechecked.append(run_id)
                self.schedule(run_id)
        return rechecked

    def run_files(self) -> set[str]:
        """Ids of the run files in ``runs/``; anything else there is ignored, with one warning per file."""
        found = set()
        with os.scandir(self.runs_dir) as entries:
            for entry in entries:
                match = RUN_FILE.fullmatch(entry.name)
                try:
                    regular = entry.is_file()
                except OSError:  # a symlink loop, a vanished entry: not a run file
                    regular = False
                if match is not None and regular:
                    found.add(match.group(1))
                elif not RUN_COMPANION.fullmatch(entry.name) and entry.name not in self._strays:
                    self._strays.add(entry.name)
                    log.warning("ignoring runs/%s: not a run file (run files are named <run id>.db)",
                                entry.name)
        return found

    def reconcile(self) -> None:
        """Make the index agree with the run files after a crash between their two writes.

        Runs the index lists as finished are not opened (a run is indexed after its own commit, so
        the index never says finished too early): only unfinished and unindexed ones are, one at a
        time, and closed again. A run file that holds no run (the process died between creating it
        and its first commit) is removed with its index row; a damaged file is reported and left
        alone (and not resumed).
        """
        on_disk = self.run_files()
        indexed = self.index.statuses()
        damaged = set()
        for run_id in sorted(on_disk):
            if indexed.get(run_id) in TERMINAL:
                continue
            was_open = run_id in self.objects
            try:
                summary = self.get(run_id).summary()
            except StorageError as exc:
                if self._discard_if_empty(run_id):
                    indexed.pop(run_id, None)
                    continue
                log.warning("skipping run %s: %s", run_id, exc)
                damaged.add(run_id)
                continue
            self._index_status(summary)
            if not was_open and not self.open_runs.busy(run_id):
                self.evict(run_id, counted=False)
        self._damaged = damaged
        for run_id in sorted(set(indexed) - on_disk):
            if self.ownership.take(run_id):  # not being created by a live process right now
                self._index_status(None, run_id)
                self.ownership.release(run_id)

    def _discard_if_empty(self, run_id: str) -> bool:
        """Remove a run file that never got its run row (and that no live process is creating)."""
        if not self.ownership.take(run_id):
            return False
        try:
            sql = SqliteSql(self.db_path(run_id), sync=self.sync, label=f"runs/{run_id}.db")
        except Exception:
            return False
        try:
            tables = {str(r[0]) for r in sql.exec("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if not tables <= OWN_TABLES:
                return False  # someone else's database: never delete it
            empty = "run" not in tables or not sql.exec("SELECT 1 FROM run LIMIT 1")
        except Exception:
            return False
        finally:
            sql.close()
        if not empty:
            return False
        self.evict(run_id, counted=False)
        for suffix in (".db", ".db-wal", ".db-shm"):
            (self.runs_dir / f"{run_id}{suffix}").unlink(missing_ok=True)
        self._index_status(None, run_id)
        return True

    # -- deliveries from this or another process -------------------------------------------
    async def send_event(self, run_id: str, event_type: str, payload: Any = None) -> None:
        run_id = self.resolve(run_id)
        owner = self.ownership.take(run_id)
        try:
            self.get(run_id).deliver_event(event_type, payload, owner=owner)
        except StorageError:
            if owner:  # the refused commit may have gone through: an activation finds out
                self.schedule(run_id)
            raise
        if owner:
            self.schedule(run_id)

    async def answer(self, run_id: str, value: Any, step: str | None = None) -> str:
        run_id = self.resolve(run_id)
        owner = self.ownership.take(run_id)
        try:
            key = self.get(run_id).answer(value, step, owner=owner)
        except StorageError:
            if owner:
                self.schedule(run_id)
            raise
        if owner:
            self.schedule(run_id)
        return key

    async def command(self, run_id: str, op: str, reason: str | None = None) -> tuple[RunCoordinator, bool]:
        """An operator's command (``cancel``, ``pause``, ``resume``, ``retry``), wherever the run executes.

        Not executed by another process: this runtime takes the run and carries the command out
        (after a ``resume`` or ``retry`` it executes the run). Executed by another process (a detached
        ``flareflow resume``, ``serve --local``): the command goes into the run's inbox, and this
        waits up to `COMMAND_WAIT` seconds for that process to carry it out (taking the run over if
        that process dies meanwhile). Returns the run and whether the command was carried out."""
        run_id = self.resolve(run_id)
        owner = self.ownership.take(run_id)
        obj = self.get(run_id)
        if not owner:
            obj.refresh()  # the owner writes; what this process read before may be old
        entry = obj.command(op, reason, owner=owner)
        if entry is None:
            self._after_command(run_id, op)
            return obj, True
        deadline = time.monotonic() + COMMAND_WAIT
        while True:
            if obj.store.acked(entry):
                obj.refresh()
                return obj, True
            if self.ownership.take(run_id):  # its process is gone: carry it out here
                obj.refresh()
                obj.apply_commands()
                self._after_command(run_id, op)
                return obj, True
            if time.monotonic() >= deadline:
                return obj, False
            await asyncio.sleep(COMMAND_POLL)

    def _after_command(self, run_id: str, op: str) -> None:
        if op in ("resume", "retry"):
            self.schedule(run_id)
        elif op == "cancel":
            self._notify_settled(run_id)

    async def cancel(self, run_id: str, reason: str = "cancelled") -> None:
        """Stop a run for good (`command`)."""
        await self.command(run_id, "cancel", reason)

    async def pause(self, run_id: str, reason: str = "paused") -> None:
        """Hold a run: its running step finishes, nothing new starts until `unpause` (`command`)."""
        await self.command(run_id, "pause", reason)

    async def unpause(self, run_id: str) -> None:
        """Release a paused run and continue it (`command`)."""
        await self.command(run_id, "resume")

    async def retry(self, run_id: str) -> tuple[RunCoordinator, bool]:
        """Continue a failed run from its failed steps (`RunCoordinator.retry`, through `command`)."""
        return await self.command(run_id, "retry")

    async def restart(self, run_id: str, from_step: str | None = None, *,
                      activate: bool = True) -> RunCoordinator:
        """A new run of the same workflow and input that reuses the results the run recorded before
        ``from_step`` (None: from the beginning); the run itself is left as it is."""
        origin = self.get(run_id)
        if not self.owns(origin.run_id):
            origin.refresh()
        fork = origin.fork(from_step)
        obj, _ = await self.start_or_get(fork["workflow"], fork["input"], activate=activate, restart=fork)
        return obj

    async def delete(self, run_id: str) -> str:
        """Remove a finished run: its file, its index row, its payloads in the blob store and its log.
        An unfinished run is refused (`RunStateConflict`): cancel it first."""
        run_id = self.resolve(run_id)
        obj = self.get(run_id)
        if not self.owns(run_id):
            obj.refresh()
        obj.require_finished()
        keys = obj.store.blob_keys()
        self.open_runs.close(run_id)
        self.alarms.set(run_id, None)
        for suffix in (".db", ".db-wal", ".db-shm", ".log"):
            (self.runs_dir / f"{run_id}{suffix}").unlink(missing_ok=True)
        self.blobs.delete(keys)
        self._index_status(None, run_id)
        self.ownership.release(run_id)
        return run_id

    async def prune(self, older_than: float, statuses: tuple[str, ...], *, dry_run: bool = False,
                    limit: int = PRUNE_LIMIT) -> list[str]:
        """Delete (or, ``dry_run``, just list) up to ``limit`` runs in the finished ``statuses`` whose
        last update is over ``older_than`` seconds ago, oldest first (`delete`)."""
        sql, params = prune_query(statuses, self.clock.now() - older_than, limit)
        self._flush_index()
        ids = [str(row[0]) for row in self.index.sql.exec(sql, *params)]
        if dry_run:
            return ids
        deleted = []
        for run_id in ids:
            try:
                deleted.append(await self.delete(run_id))
            except RunNotFound:  # an index row without its file: the row goes
                self._index_status(None, run_id)
        return deleted

    # -- events to watchers ----------------------------------------------------------------
    def subscribe(self, run_id: str, listener: Listener) -> Callable[[], None]:
        """Call ``listener`` with every event the run commits from now on; returns an unsubscribe."""
        subscribers = self._subscribers.setdefault(run_id, [])
        subscribers.append(listener)
        def unsubscribe() -> None:
            if listener in subscribers:
                subscribers.remove(listener)
            if not subscribers and self._subscribers.get(run_id) is subscribers:
                del self._subscribers[run_id]  # no empty list per run ever streamed

        return unsubscribe

    def _publish(self, run_id: str, event: dict[str, Any]) -> None:
        for listener in list(self._subscribers.get(run_id, ())):
            try:
                listener(event)
            except Exception:  # a broken watcher must not break the run
                log.exception("event listener failed")

    def _notify_settled(self, run_id: str) -> None:
        # only runs someone waits for have an event, and it goes once set: a server that has run a
        # million runs keeps none (it kept one Event per run, ~0.9 KiB, for good)
        event = self._settled.pop(run_id, None)
        if event is not None:
            event.set()

    async def wait_settled(self, run_id: str) -> RunCoordinator:
        """Wait until the current activation of ``run_id`` ends (finished or suspended)."""
        event = self._settled.setdefault(run_id, asyncio.Event())
        await event.wait()
        return self.get(run_id)

    async def until_finished(self, run_id: str) -> RunCoordinator:
        """Wait until the run completes, fails or is cancelled (timers and deliveries keep it going)."""
        run_id = self.resolve(run_id)
        done = asyncio.Event()

        def watch(event: dict[str, Any]) -> None:
            if event["type"] in ("run.completed", "run.failed", "run.cancelled"):
                done.set()

        unsubscribe = self.subscribe(run_id, watch)
        try:
            if self.get(run_id).status not in TERMINAL:
                await done.wait()
        finally:
            unsubscribe()
        return self.get(run_id)

    # -- alarms ----------------------------------------------------------------------------
    def next_alarm(self) -> float | None:
        """When the earliest run alarm is due, if any."""
        return self.alarms.next()

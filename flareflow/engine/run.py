"""The `Run` context a workflow receives, and the replay machinery behind it.

Every activation runs the workflow function from the top. A step, sleep, event wait or question
first *reserves* a deterministic key (scope + name + occurrence) synchronously, in call order; when
the history already holds a result for that key it is returned without running anything. When the
run must wait (timer not due, event not delivered, answer not given) the engine raises `Suspend`,
which unwinds the workflow; the host re-activates it when the alarm fires or a delivery arrives.

Parallel branches get their own key scope, so keys do not depend on how branches interleave.
Domain calls (`flareflow.engine.domains`, ``run.Inventory(product).check()``) are steps keyed by a hash
of the call (``path@hash#occurrence``) instead of by name; one the history holds replays wherever it
was recorded, so reordered calls keep their results.

A call that does not match the history at its position is a replay divergence: the workflow is
unwound (a `Suspend`, which ``except Exception`` cannot swallow) and the activation ends ``held``, so
the host keeps the run until the code matches again. `Run.patched` lets new code branch on whether
a run was recorded before a change: it records a ``patch`` marker where a run first evaluates it.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import json
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine, Generator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar, cast

from . import events as ev
from .aicalls import AiCalls
from .capture import StepOutput, capturing
from .durations import parse_duration
from .errors import (
    Cancelled,
    InvalidInput,
    NonRetryableError,
    ReplayDivergence,
    StepFailed,
    StepTimeout,
    Suspend,
    WaitTimeout,
    error_body,
)
from .history import (
    COMPLETED,
    EVENT,
    FAILED,
    INPUT,
    PATCH,
    RETRYING,
    RUNNING,
    SLEEP,
    STEP,
    UNCHANGED,
    WAITING,
    Journal,
    StepRecord,
)
from .jsonpatch import diff
from .outcome import COMPLETED as COMPLETED_OUTCOME
from .outcome import FAILED as FAILED_OUTCOME
from .outcome import HELD as HELD_OUTCOME
from .outcome import Outcome
from .registry import WorkflowDef
from .retry import Retry
from .schema import check_schema

if TYPE_CHECKING:
    from .domains import Domain, DomainHandle

T = TypeVar("T")

#: Retry policy of a step that names none: three attempts, 1 s then 2 s apart.
DEFAULT_RETRY = Retry(limit=3, delay=1.0, backoff="exponential")


@dataclass
class _Scope:
    """Key space of one branch: positions and per-name occurrence counters; ``helper``: the name of
    the ``async def`` a `run.parallel` branch runs (its steps' ``step.started`` say it as ``branch``)."""

    prefix: str
    counter: int = 0
    occurrences: dict[str, int] = field(default_factory=dict)
    helper: str | None = None


_scope: contextvars.ContextVar[_Scope | None] = contextvars.ContextVar("flareflow_scope", default=None)

#: The id of the declarative task (`flareflow.graphs`) whose durable calls run in this context: their
#: step and wait events carry it as ``task``.
task_tag: contextvars.ContextVar[str | None] = contextvars.ContextVar("flareflow_task", default=None)


#: Whether the steps started in this context stream what they print while they run (``step.output``
#: events; a task graph's shell and docker tasks set it). Their ``logs`` hold every line at the end too.
live_output: contextvars.ContextVar[bool] = contextvars.ContextVar("flareflow_live_output", default=False)
#: Seconds between two ``step.output`` events of one step (lines written meanwhile go in one event).
LIVE_INTERVAL = 0.2


class _LiveOutput:
    """Batches a running attempt's output lines into ``step.output`` events (not durable: a lost one is
    harmless, the step's ``logs`` keep every line). Lines may come from any thread (a step thread); the
    events are committed on the event loop, at most every `LIVE_INTERVAL` seconds, never after the
    attempt's end."""

    def __init__(self, journal: Journal, rec: StepRecord, body: dict[str, Any]) -> None:
        self.journal = journal
        self.rec = rec
        self.body = body
        self.loop = asyncio.get_running_loop()
        self.lock = threading.Lock()
        self.pending: list[dict[str, Any]] = []
        self.scheduled = False
        self.done = False

    def add(self, entry: dict[str, Any]) -> None:
        with self.lock:
            if self.done:
                return
            self.pending.append(entry)
            if self.scheduled:
                return
            self.scheduled = True
        self.loop.call_soon_threadsafe(self._later)

    def _later(self) -> None:
        self.loop.call_later(LIVE_INTERVAL, self.flush)

    def flush(self, final: bool = False) -> None:
        with self.lock:
            if self.done:
                return
            lines, self.pending = self.pending, []
            self.scheduled = False
            self.done = final
        if lines:
            self.journal.commit(self.rec, [(ev.STEP_OUTPUT, {**self.body, "lines": lines})], durable=False)


def _tag(body: dict[str, Any]) -> dict[str, Any]:
    """``body`` with the current graph task's id as ``task``, when a graph task runs."""
    task = task_tag.get()
    if task is not None:
        body["task"] = task
    return body


def _helper_name(branch: Awaitable[Any]) -> str | None:
    """The function name of a branch coroutine (``enrich`` of ``enrich(run, c)``), if it has one."""
    name = str(getattr(branch, "__qualname__", "") or getattr(branch, "__name__", "")).rsplit(".", 1)[-1]
    return name if name.isidentifier() else None


_ENCODE = json.JSONEncoder(allow_nan=False, separators=(",", ":")).encode


def to_json(value: Any, what: str, field: str | None = None) -> tuple[Any, str]:
    """Normalise ``value`` to plain JSON (tuples become lists) and return it with its text.

    Returning the decoded copy means a live run and its replay see identical values. ``field``
    names the API field at fault when the value came from a client.
    """
    try:
        text = encode_text(value)
    except (TypeError, ValueError, RecursionError) as exc:
        raise InvalidInput(f"{what} is not JSON ({type(value).__name__}): {exc}", field) from None
    return json.loads(text), text


def encode_text(value: Any) -> str:
    """Compact JSON text of ``value`` that is valid Unicode: a lone surrogate (``"\\ud800"``, which a
    Python string may hold but UTF-8 cannot encode, so it could never be served back) is a ValueError.
    Surrogates only ever appear as ``\\udXXX`` escapes in the ASCII text, so ordinary values cost one
    substring search."""
    text = _ENCODE(value)
    if "\\ud" in text:  # a character outside the BMP (a valid pair), a lone surrogate, or a backslash
        try:
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("it holds a lone surrogate (\\ud800-\\udfff); text must be valid Unicode") from None
    return text


class _Raised(Exception):
    """Carries a `BaseException` that user code raised (SystemExit, KeyboardInterrupt, ...) out of a
    step as an ordinary failure of that step, so it never reaches the event loop or the process."""

    def __init__(self, original: BaseException) -> None:
        super().__init__()
        self.original = original


def _current_task() -> asyncio.Task[Any] | None:
    try:
        return asyncio.current_task()
    except RuntimeError:  # no running loop
        return None


def _unwinds(exc: BaseException, owner: asyncio.Task[Any] | None) -> bool:
    """Whether ``exc`` is the host's or the engine's own signal to unwind, never a failure of user code.

    That is `Suspend` and `Cancelled`; a `CancelledError` while the task is being cancelled (a step
    timeout, a cancelled run, the host shutting down) -- one that user code raises by itself is a
    failure like any other; and a `GeneratorExit` thrown in by closing the coroutine (it is then not
    driven by ``owner``, the task that started it).
    """
    if isinstance(exc, (Suspend, Cancelled)):
        return True
    if isinstance(exc, asyncio.CancelledError):
        task = _current_task()
        return task is not None and task.cancelling() > 0
    if isinstance(exc, GeneratorExit):
        return _current_task() is not owner
    return False


def _forget(task: asyncio.Future[Any]) -> None:
    """Done-callback of an abandoned attempt: its outcome is read (so it is never logged) and dropped."""
    if not task.cancelled():
        task.exception()


async def bounded(journal: Journal, call: Callable[[], Awaitable[T]], timeout: float | None, what: str) -> T:
    """``await call()``, failing with `StepTimeout` (``"{what} timed out after …"``) once ``timeout`` seconds
    have passed on the host's clock. At the deadline the work is abandoned, not awaited (a thread cannot be
    stopped: it runs on and its late result is dropped), so a step that ignores cancellation cannot hold the
    run; one that ran inline past the deadline fails with the timeout once it returns. The one timeout rule
    of a step's attempt and of a domain method within one (`flareflow.engine.domains`)."""
    if timeout is None:
        return await call()
    started = journal.now()
    work = asyncio.ensure_future(call())
    timer = asyncio.ensure_future(journal.sleep(timeout))
    try:
        done, _ = await asyncio.wait({work, timer}, return_when=asyncio.FIRST_COMPLETED)
    except BaseException:
        work.cancel()
        work.add_done_callback(_forget)
        raise
    finally:
        timer.cancel()
    if work in done and journal.now() - started < timeout:
        return work.result()
    if not work.done():
        work.cancel()
    work.add_done_callback(_forget)
    raise StepTimeout(f"{what} timed out after {timeout:g}s")


class _Held(Suspend):
    """Unwinds the workflow at a replay divergence; the activation ends ``held``."""


class _Pending(Awaitable[T]):
    """An awaitable whose key was reserved when it was created (so ``parallel`` order is fixed)."""

    def __init__(self, coro: Coroutine[Any, Any, T], key: str | None = None) -> None:
        self._coro = coro
        #: The step key reserved for it (`flareflow.ai` streams an answer's pieces under it).
        self.key = key

    def __await__(self) -> Generator[Any, None, T]:
        return self._coro.__await__()


class Run:
    """The workflow's handle on its run: durable steps, timers, waits, questions and tracked state."""

    # Instance attributes are declared here too, so a `flareflow.Domain` cannot take their names.
    id: str
    workflow: str
    input: Any
    #: Tracked state: change it freely; each step completion records an RFC 6902 patch of it.
    state: dict[str, Any]

    def __init__(self, execution: Execution, run_id: str, workflow: str, input: Any) -> None:
        self._x = execution
        self.id = run_id
        self.workflow = workflow
        self.input = input
        self.state = {}

    def step(
        self,
        name: str,
        fn: Callable[..., Any],
        *args: Any,
        retry: Retry | None = None,
        timeout: float | str | None = None,
        **kwargs: Any,
    ) -> Awaitable[Any]:
        """Run ``fn(*args, **kwargs)`` once, durably: its JSON result is recorded and replayed.

        ``retry`` sets attempts and backoff (default `DEFAULT_RETRY`); ``timeout`` bounds each
        attempt. Raising `NonRetryableError` (or an exception type listed in the policy's
        ``non_retryable``) fails the step at once. A failed step raises `StepFailed` here.

        What an attempt prints and logs is captured with it (`flareflow.engine.capture`): recorded
        with the step and sent as ``logs`` on its ``step.completed`` / ``step.retrying`` /
        ``step.failed`` event.
        """
        policy = retry if retry is not None else DEFAULT_RETRY
        if not isinstance(policy, Retry):
            raise TypeError(f"step '{name}': retry must be a flareflow.Retry, got {type(policy).__name__}")
        limit = parse_duration(timeout) if timeout is not None else None
        key, pos, rec = self._x.reserve(STEP, name)
        return _Pending(self._x.run_step(key, pos, rec, name, fn, args, kwargs, policy, limit), key)

    @property
    def ai(self) -> AiCalls:
        """AI calls as durable steps (`flareflow.ai.steps.RunAi`: ``generate``, ``chat``, ``embed``).

        The engine imports nothing of ours, so it does not build them: the host hands its coordinator
        an ``ai`` factory (`flareflow.ai.host.AiHost`), called once per activation, and `RunAi` builds
        each call on `Run.step`. A host without one raises its not-configured error here."""
        built = self.__dict__.get("_ai")
        if built is None:
            factory = getattr(self._x.journal, "ai", None)
            if factory is None:
                raise NonRetryableError("run.ai: this host has no AI ports (no provider is configured: set "
                                        "tool.flareflow.ai.base_url)")
            built = self.__dict__["_ai"] = factory(self)
        return cast(AiCalls, built)

    def sleep(self, name: str, duration: float | str) -> Awaitable[None]:
        """A durable timer: the run suspends (the host may hibernate) until ``duration`` has passed."""
        seconds = parse_duration(duration)
        key, pos, rec = self._x.reserve(SLEEP, name)
        return _Pending(self._x.run_sleep(key, pos, rec, name, seconds))

    def wait_for_event(
        self, name: str, *, type: str | None = None, timeout: float | str | None = None
    ) -> Awaitable[Any]:
        """Suspend until an event of ``type`` (default: ``name``) is delivered; return its payload.

        With ``timeout``, raise `WaitTimeout` when nothing arrived in time.
        """
        limit = parse_duration(timeout) if timeout is not None else None
        event_type = type if type is not None else name
        if not isinstance(event_type, str) or not event_type:
            raise InvalidInput("wait_for_event: the event type must be a non-empty string", "type")
        key, pos, rec = self._x.reserve(EVENT, name)
        return _Pending(self._x.run_wait(key, pos, rec, name, EVENT, limit, {"event_type": event_type}))

    def ask(
        self,
        prompt: str,
        *,
        schema: dict[str, Any] | None = None,
        name: str | None = None,
        timeout: float | str | None = None,
    ) -> Awaitable[Any]:
        """Ask a human: suspend until an answer that satisfies ``schema`` is given; return it."""
        if schema is not None:
            check_schema(schema)
        limit = parse_duration(timeout) if timeout is not None else None
        label = name if name is not None else "ask"
        key, pos, rec = self._x.reserve(INPUT, label)
        meta = {"prompt": str(prompt), "schema": schema}
        return _Pending(self._x.run_wait(key, pos, rec, label, INPUT, limit, meta))

    def patched(self, change_id: str) -> bool:
        """Whether this run takes the new code of the change ``change_id`` (versioning a workflow).

        True for a new run and for a run that reaches this point for the first time after the change
        shipped (a marker is recorded, so its replays say True again); False for a run whose history
        already went past this point with the old code. Keep the old branch while such runs exist::

            if run.patched("bill-before-shipping"):
                await run.step("bill", bill, order)
            await run.step("ship", ship, order)

        Removing the call later (keeping the new branch) is safe for runs that recorded the marker.
        """
        return self._x.patched(change_id)

    async def parallel(self, *branches: Awaitable[Any]) -> list[Any]:
        """Await several steps or branch coroutines together; results come back in argument order.

        Pass ``run.step(...)`` calls (their keys are fixed before anything runs) or coroutines of
        your own ``async def`` helpers (each runs in its own key scope). If any branch fails, the
        first failure in argument order is raised once every branch has settled.
        """
        from .domains import DomainCall  # domain calls reserve their keys here, in argument order

        return await self._x.run_parallel([b._start() if isinstance(b, DomainCall) else b for b in branches])

    def domain(self, name: str | Domain) -> DomainHandle:
        """The domain called ``name`` (`flareflow.engine.domains`): ``run.domain("Inventory")(product)``."""
        from .domains import DomainHandle, find_domain

        return DomainHandle(self, find_domain(name))

    def __getattr__(self, name: str) -> DomainHandle:
        """``run.Inventory``: the domain of that name. Only names that are no attribute of the run get here
        (so mypy accepts any ``run.NAME``; a wrong one is an AttributeError listing the domains)."""
        from .domains import domain_attribute

        return domain_attribute(self, name)


class Execution:
    """One activation of one run: replays the recorded history, then continues live."""

    def __init__(
        self,
        defn: WorkflowDef,
        run_id: str,
        input: Any,
        journal: Journal,
        history: dict[str, StepRecord],
        stored_state: Any,
    ) -> None:
        self.defn = defn
        self.journal = journal
        self.history = history
        self.by_pos = {rec.pos: rec for rec in history.values()}
        self.reached: set[str] = set()
        self.diverged: ReplayDivergence | None = None
        self.root = _Scope("")
        self.run = Run(self, run_id, defn.name, input)
        self._snapshot: Any = stored_state if stored_state is not None else {}
        self._snapshot_text: str | None = None

    # -- key reservation -------------------------------------------------------------------
    def reserve(self, kind: str, name: str, ident: str | None = None) -> tuple[str, str, StepRecord | None]:
        """Fix the key and position of the next durable call, and check it against the history.

        A ``patch`` marker recorded at this position by a `Run.patched` the code no longer calls is
        passed over: it did no work. ``ident`` (a domain call's ``path@hash``) replaces ``name`` in the
        key and its occurrence count; a call so keyed that the history holds replays wherever it was
        recorded (`flareflow.engine.domains`: reordered calls keep their results)."""
        if not isinstance(name, str) or not name:
            raise InvalidInput(f"a {kind} needs a non-empty string name, got {name!r}", "name")
        if self.diverged is not None:
            raise _Held()
        scope = _scope.get() or self.root
        while (marker := self.by_pos.get(f"{scope.prefix}{scope.counter}")) is not None and marker.kind == PATCH:
            self.reached.add(marker.pos)
            scope.counter += 1
        index = scope.counter
        scope.counter += 1
        counted = ident if ident is not None else name
        occurrence = scope.occurrences.get(counted, 0) + 1
        scope.occurrences[counted] = occurrence
        key = f"{scope.prefix}{counted}#{occurrence}"
        pos = f"{scope.prefix}{index}"
        rec = self.history.get(key)
        if ident is not None and rec is not None and rec.kind == kind:
            self.reached.add(rec.pos)
            return key, rec.pos, rec
        self.reached.add(pos)
        recorded = self.by_pos.get(pos)
        new = {"kind": kind, "name": name, "key": key}
        if recorded is not None and (recorded.key != key or recorded.kind != kind):
            self._diverge(
                f"replay diverged at position {pos}: the history has {recorded.kind} '{recorded.name}' "
                f"(key '{recorded.key}') there, but the workflow now calls {kind} '{name}' (key '{key}')"
                + (": the same path with another context or arguments" if recorded.name == name
                   and recorded.kind == kind and "@" in key else ""),
                pos, _call(recorded), new)
        elif rec is not None and rec.pos != pos:
            self._diverge(
                f"replay diverged: {kind} '{name}' (key '{key}') was recorded at position {rec.pos} "
                f"but is now reached at position {pos}", pos, _call(rec), new)
        return key, pos, rec

    def _diverge(self, message: str, pos: str, recorded: dict[str, Any], new: dict[str, Any] | None) -> None:
        if self.diverged is None:
            self.diverged = ReplayDivergence(message, position=pos, recorded=recorded, new=new)
        raise _Held()

    def patched(self, change_id: str) -> bool:
        """`Run.patched`: decided by what the history holds at the current position."""
        if not isinstance(change_id, str) or not change_id:
            raise InvalidInput(f"run.patched needs a non-empty string change id, got {change_id!r}", "change_id")
        if self.diverged is not None:
            raise _Held()
        scope = _scope.get() or self.root
        pos = f"{scope.prefix}{scope.counter}"
        recorded = self.by_pos.get(pos)
        if recorded is not None and not (recorded.kind == PATCH and recorded.name == change_id):
            return False  # the run went past this point before the change: the old code path
        counted = f"patch:{change_id}"
        occurrence = scope.occurrences.get(counted, 0) + 1
        scope.occurrences[counted] = occurrence
        scope.counter += 1
        self.reached.add(pos)
        if recorded is None:  # first evaluation: record the decision, so every replay takes it again
            marker = StepRecord(f"{scope.prefix}{counted}#{occurrence}", pos, PATCH, change_id, COMPLETED,
                                result=True, started_at=self.journal.now())
            self.journal.commit(marker, [])
            self.history[marker.key] = self.by_pos[pos] = marker
        return True

    # -- steps -----------------------------------------------------------------------------
    async def run_step(
        self,
        key: str,
        pos: str,
        rec: StepRecord | None,
        name: str,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        retry: Retry,
        timeout: float | None,
        extra: dict[str, Any] | None = None,
    ) -> Any:
        """``extra``: fields added to the step's events and ``meta`` (a domain call's ``hash``); the events
        also carry the graph task's id (`task_tag`), which is the same for every event of the step."""
        j = self.journal
        meta_tags = extra or {}
        tags = _tag(dict(meta_tags))
        while True:
            if rec is not None:
                if rec.status == COMPLETED:
                    return rec.result
                if rec.status == FAILED:
                    raise StepFailed(name, rec.error or {})
                if rec.status == RETRYING and rec.wake_at is not None and rec.wake_at > j.now():
                    raise Suspend()
            else:
                rec = StepRecord(key, pos, STEP, name, RUNNING, meta={"retry": retry.to_json(), **meta_tags})
            now = j.now()
            rec.attempts += 1
            rec.status = RUNNING
            rec.started_at = now
            rec.wake_at = None
            rec.logs = None
            attempt = rec.attempts
            started: dict[str, Any] = {"step": key, "name": name, "attempt": attempt, **tags}
            helper = (_scope.get() or self.root).helper
            if helper is not None:
                started["branch"] = helper
            j.commit(rec, [(ev.STEP_STARTED, started)], durable=False)
            t0 = time.perf_counter()
            live = None
            if live_output.get():
                live = _LiveOutput(j, rec, {"step": key, "name": name, "attempt": attempt, **tags})
            output = StepOutput(j.now, listener=live.add if live is not None else None)
            hook = self.defn.step_hook  # the test kit's mocks: still a recorded step, its fn replaced
            call = (hook(name, key) or fn) if hook is not None else fn
            try:
                try:
                    value = await self._invoke(name, attempt, call, args, kwargs, timeout, output)
                finally:
                    rec.logs = output.close()
                    if live is not None:
                        live.flush(final=True)  # what is still buffered goes out before the step's end
                try:  # encoding runs the result's own code (items(), __str__ ...): it may raise anything
                    result, text = to_json(value, f"the result of step '{name}'")
                    state, patch = self.state_patch()
                except BaseException as raised:
                    if isinstance(raised, Exception) or _unwinds(raised, _current_task()):
                        raise
                    raise _Raised(raised) from raised
            except Exception as exc:
                duration_ms = round((time.perf_counter() - t0) * 1000, 3)
                cause = exc.original if isinstance(exc, _Raised) else exc
                err = error_body(cause)
                rec.failures += 1
                rec.error = err
                final = (isinstance(cause, (NonRetryableError, InvalidInput, *retry.non_retryable))
                         or rec.failures >= retry.limit)
                if final:
                    rec.status = FAILED
                    body = {"step": key, "name": name, "attempt": attempt, "duration_ms": duration_ms,
                            "error": err, "logs": rec.logs, **tags}
                    j.commit(rec, [(ev.STEP_FAILED, body)])
                    raise StepFailed(name, err) from cause
                delay = retry.delay_for(rec.failures)
                rec.status = RETRYING
                rec.wake_at = j.now() + delay
                body = {"step": key, "name": name, "attempt": attempt, "duration_ms": duration_ms, "error": err,
                        "delay": delay, "retry_at": ev.iso(rec.wake_at), "logs": rec.logs, **tags}
                j.commit(rec, [(ev.STEP_RETRYING, body)])
                continue
            duration_ms = round((time.perf_counter() - t0) * 1000, 3)
            rec.status = COMPLETED
            rec.result = result
            rec.result_text = text
            rec.error = None
            body = {"step": key, "name": name, "attempt": attempt, "duration_ms": duration_ms,
                    "result": result, "patch": patch, "logs": rec.logs, **tags}
            j.commit(rec, [(ev.STEP_COMPLETED, body)], state=state if patch else UNCHANGED)
            return result

    async def _invoke(
        self,
        name: str,
        attempt: int,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        timeout: float | None,
        output: StepOutput,
    ) -> Any:
        """One attempt: a sync ``fn`` runs through the host's ``offload`` (a thread) when it has one,
        else inline; an async one on the loop. With ``timeout`` the attempt fails at the deadline and
        is abandoned (a thread cannot be stopped: it runs on, and its late result is dropped); one
        that ran inline past the deadline fails with the timeout once it returns. Whatever user code
        raises -- SystemExit and KeyboardInterrupt too -- comes out as an Exception (`_Raised`).
        What it prints and logs goes to ``output`` (the step thread runs in a copy of this context)."""
        offload = self.journal.offload
        threaded = offload is not None and not inspect.iscoroutinefunction(fn)

        async def call() -> Any:
            owner = _current_task()
            try:
                with capturing(output):
                    if offload is not None and threaded:
                        value = await offload(functools.partial(fn, *args, **kwargs))
                    else:
                        value = fn(*args, **kwargs)
                    if inspect.isawaitable(value):
                        value = await value
                return value
            except Exception:
                raise
            except BaseException as exc:
                if _unwinds(exc, owner):
                    raise
                raise _Raised(exc) from exc

        return await bounded(self.journal, call, timeout, f"step '{name}' attempt {attempt}")

    # -- timers and waits ------------------------------------------------------------------
    async def run_sleep(self, key: str, pos: str, rec: StepRecord | None, name: str, seconds: float) -> None:
        j = self.journal
        if rec is not None and rec.status == COMPLETED:
            return
        now = j.now()
        if rec is None:
            rec = StepRecord(key, pos, SLEEP, name, WAITING, wake_at=now + seconds, started_at=now,
                             meta={"seconds": seconds})
            if seconds > 0:
                body = {"reason": "sleep", "step": key, "name": name, "until": ev.iso(now + seconds)}
                j.commit(rec, [(ev.RUN_WAITING, _tag(body))])
        if rec.wake_at is None or now >= rec.wake_at:
            rec.status = COMPLETED
            rec.wake_at = None
            j.commit(rec, [])
            return
        raise Suspend()

    async def run_wait(
        self,
        key: str,
        pos: str,
        rec: StepRecord | None,
        name: str,
        kind: str,
        timeout: float | None,
        meta: dict[str, Any],
    ) -> Any:
        j = self.journal
        if rec is not None:
            if rec.status == COMPLETED:
                return rec.result
            if rec.status == FAILED:
                raise WaitTimeout(name, float(rec.meta.get("timeout") or 0))
        now = j.now()
        if rec is None:
            wake = now + timeout if timeout is not None else None
            rec = StepRecord(key, pos, kind, name, WAITING, wake_at=wake, started_at=now,
                             meta={**meta, "timeout": timeout})
            until = ev.iso(wake) if wake is not None else None
            waiting: list[tuple[str, dict[str, Any]]] = []
            if kind == INPUT:
                waiting.append((ev.INPUT_REQUESTED, {"step": key, "prompt": meta["prompt"],
                                                     "schema": meta["schema"]}))
                waiting.append((ev.RUN_WAITING, {"reason": "input", "step": key, "name": name,
                                                 "until": until}))
            else:
                waiting.append((ev.RUN_WAITING, {"reason": "event", "step": key, "name": name,
                                                 "event_type": meta["event_type"], "until": until}))
            j.commit(rec, [(kind_, _tag(body)) for kind_, body in waiting])
        delivery = j.find_delivery(kind, rec.meta["event_type"] if kind == EVENT else key)
        if delivery is not None:
            rec.status = COMPLETED
            rec.result = delivery.payload
            rec.wake_at = None
            j.commit(rec, [], delivery=delivery.id)
            return delivery.payload
        if rec.wake_at is not None and now >= rec.wake_at:
            rec.status = FAILED
            rec.wake_at = None
            timed_out = WaitTimeout(name, float(timeout if timeout is not None else 0))
            rec.error = error_body(timed_out)
            body = {"step": key, "name": name, "attempt": 1, "duration_ms": 0, "error": rec.error, "logs": []}
            j.commit(rec, [(ev.STEP_FAILED, _tag(body))])
            raise timed_out
        raise Suspend()

    # -- parallel --------------------------------------------------------------------------
    async def run_parallel(self, branches: list[Awaitable[Any]]) -> list[Any]:
        parent = _scope.get() or self.root
        base = f"{parent.prefix}{parent.counter}."
        parent.counter += 1

        async def branch(index: int, aw: Awaitable[Any]) -> tuple[bool, Any]:
            if not isinstance(aw, _Pending):
                _scope.set(_Scope(f"{base}{index}/", helper=_helper_name(aw)))
            try:
                return True, await aw
            except asyncio.CancelledError:
                raise
            except BaseException as exc:  # Suspend and Cancelled travel as values until all settle
                return False, exc

        for aw in branches:
            if not inspect.isawaitable(aw):
                raise TypeError(f"run.parallel takes awaitables (run.step(...) or coroutines), got {aw!r}")
        tasks = [asyncio.ensure_future(branch(i, aw)) for i, aw in enumerate(branches)]
        try:
            settled = await asyncio.gather(*tasks)
        except asyncio.CancelledError:
            for task in tasks:
                task.cancel()
            raise
        failures = [exc for ok, exc in settled if not ok]
        for exc in failures:
            if isinstance(exc, Cancelled):
                raise exc
        if any(isinstance(exc, Suspend) for exc in failures):
            raise Suspend()  # a branch still waits: it has not settled, so nothing is raised yet
        if failures:
            raise failures[0]
        return [value for _, value in settled]

    # -- state and the whole run -----------------------------------------------------------
    def state_patch(self) -> tuple[Any, list[dict[str, Any]]]:
        """The tracked state as JSON and the patch since the last recorded snapshot."""
        try:
            text = encode_text(self.run.state)
        except (TypeError, ValueError) as exc:
            raise InvalidInput(f"run.state is not JSON ({type(self.run.state).__name__}): {exc}") from None
        if text == self._snapshot_text:
            return self._snapshot, []
        current = json.loads(text)
        patch = diff(self._snapshot, current)
        self._snapshot = current
        self._snapshot_text = text
        return current, patch

    async def execute(self) -> Outcome:
        """Run the workflow from the top; say whether it completed, failed or must wait."""
        _scope.set(self.root)
        run = self.run
        owner = _current_task()
        try:
            if self.defn.takes_input and not (run.input is None and not self.defn.input_required):
                value = await self.defn.fn(run, run.input)
            else:
                value = await self.defn.fn(run)
        except Suspend:
            if self.diverged is not None:
                return self._held(self.diverged)
            return Outcome("suspended")
        except BaseException as exc:  # SystemExit & co. in the workflow body fail the run, not the process
            if not isinstance(exc, Exception) and _unwinds(exc, owner):
                raise
            if self.diverged is not None:
                return self._held(self.diverged)
            return Outcome(FAILED_OUTCOME, error=error_body(exc))
        if self.diverged is not None:
            return self._held(self.diverged)
        missed = sorted(pos for pos in set(self.by_pos) - self.reached if self.by_pos[pos].kind != PATCH)
        if missed:
            rec = self.by_pos[missed[0]]
            message = (f"replay diverged: the history has {rec.kind} '{rec.name}' (key '{rec.key}') "
                       "that the workflow no longer reaches")
            return self._held(ReplayDivergence(message, position=rec.pos, recorded=_call(rec), new=None))
        try:
            output, _ = to_json(value, f"the output of workflow '{self.defn.name}'")
            state, patch = self.state_patch()
        except BaseException as exc:  # user objects' encoding may raise anything (SystemExit, RecursionError)
            if not isinstance(exc, Exception) and _unwinds(exc, owner):
                raise
            return Outcome(FAILED_OUTCOME, error=error_body(exc))
        return Outcome(COMPLETED_OUTCOME, output=output, state=state, patch=patch)

    @staticmethod
    def _held(divergence: ReplayDivergence) -> Outcome:
        return Outcome(HELD_OUTCOME, error={**error_body(divergence), "divergence": divergence.describe()})


def _call(rec: StepRecord) -> dict[str, Any]:
    """A recorded durable call as a divergence names it."""
    return {"kind": rec.kind, "name": rec.name, "key": rec.key}

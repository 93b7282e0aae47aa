"""`create_test_workflow`: run one workflow in a test on the real embedded runtime, with time skipped.

Each `TestWorkflow.run` opens a fresh `LocalRuntime` (real SQLite, the real coordinator and alarm
loop) in a new temporary state directory, on a `ManualClock`, with a registry of its own that holds
only a copy of the workflow carrying the test's mocks (`flareflow.testing.mocks`); the directory is
removed when the run ends, however it ends. Nothing is shared between runs or tests.

The run is driven from outside, as a user would drive it: whenever the runtime is idle (no activation
in flight, no alarm due; `LocalRuntime.idle`) the kit looks at what the run waits for and

1. delivers the first queued event of a type an open ``wait_for_event`` waits for (`send_event`),
2. answers an open question with the next queued answer (`answer`),
3. moves the clock: to the next alarm when sleeps are disabled (so sleeps, retry backoffs and wait
   timeouts elapse at once), or by the next queued `advance`,
4. otherwise stops with `RunStuck`, naming what the run waits for.

Time moves only in step 3, never while a step runs, so a step's ``timeout`` never fires in a test
(the clock stands still while the step runs); the real-time bound of `run` (``timeout=``) catches a
step that hangs.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import shutil
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..ai.errors import AiNotConfigured
from ..engine.durations import parse_duration
from ..engine.errors import FlareflowError, InvalidInput, WorkflowNotFound, did_you_mean
from ..engine.events import iso
from ..engine.registry import Registry, WorkflowDef, WorkflowFn, default_registry
from ..engine.run import to_json
from ..engine.status import TERMINAL, RunStatus
from ..local.clock import ManualClock
from ..local.runtime import LocalRuntime
from .graphs import graph_ports, graph_tasks, is_graph_path, load_graph_workflow, project_graphs
from .mocks import Mocks, UnusedMockWarning

#: Real seconds a test run may take before `TestWorkflow.run` gives up (a hanging step, a busy loop).
DEFAULT_TIMEOUT = 60.0


class RunFailed(FlareflowError):
    """The run ended ``failed`` (or ``cancelled``): ``error`` is its wire error body (``type``,
    ``message``, ``traceback``; a failed step adds ``step`` and the step's own error as ``cause``)."""

    def __init__(self, workflow: str, run_id: str, error: dict[str, Any], events: list[dict[str, Any]],
                 status: str = str(RunStatus.FAILED)) -> None:
        self.workflow = workflow
        self.run_id = run_id
        self.error = error
        self.events = events
        self.status = status
        #: The failed step's name (or domain path) when a step's failure failed the run.
        self.step: str | None = error.get("step") if isinstance(error.get("step"), str) else None
        super().__init__(f"run of '{workflow}' {status}: {error.get('type', 'Error')}: {error.get('message', '')}")


class RunStuck(FlareflowError):
    """The run waits for something the test never gives it (an event, an answer, time): ``waiting``
    holds its open waits (``kind``, ``name``, ``until``, ``event_type`` / ``prompt``)."""

    def __init__(self, message: str, waiting: list[dict[str, Any]], events: list[dict[str, Any]]) -> None:
        self.waiting = waiting
        self.events = events
        super().__init__(message)


class TestWorkflow:
    """One workflow under test: mocks, queued events and answers, a skipped clock; `run` runs it.

    What the last run did stays readable after it: `events`, `steps`, `output`, `state`, `run_id`,
    `status`.
    """

    __test__ = False  # not a pytest test class, although its name starts with "Test"

    def __init__(self, defn: WorkflowDef) -> None:
        self.defn = defn
        self._tasks = graph_tasks(defn)
        self._mocks = Mocks(self._tasks.step_kind)
        self._events: collections.deque[tuple[str, Any]] = collections.deque()
        self._answers: collections.deque[Any] = collections.deque()
        self._advances: collections.deque[float] = collections.deque()
        self._skip_sleeps = False
        #: Where the skipped clock starts (epoch seconds; 2026-01-01T00:00:00Z); it moves only when told.
        self.start_time = ManualClock().now()
        self.now = self.start_time
        self.run_id: str | None = None
        self.status: str | None = None
        self.output: Any = None
        #: The run's tracked state (``run.state``) as it last recorded it.
        self.state: Any = None
        self.events: list[dict[str, Any]] = []

    @property
    def name(self) -> str:
        return self.defn.name

    # -- what the test sets up -------------------------------------------------------------
    def disable_sleeps(self) -> TestWorkflow:
        """Sleeps, retry backoffs and wait timeouts elapse at once: whenever the run has nothing else
        to do, the clock jumps to its next timer."""
        self._skip_sleeps = True
        return self

    def advance(self, duration: float | str) -> TestWorkflow:
        """Move the skipped clock by ``duration`` (``"7 days"``, seconds) the next time the run waits
        with nothing else to do. Several queue up and are spent in order, one each time the run is
        stuck again; with sleeps not disabled, a run whose timers the advances do not reach ends in
        `RunStuck`. Advances a run did not need stay queued for the next run."""
        self._advances.append(parse_duration(duration))
        return self

    def mock_step_result(self, name: str, value: Any, occurrence: int | None = None) -> TestWorkflow:
        """Step ``name`` (a step name or a domain path such as ``"Inventory.check"``) returns ``value``
        instead of running: every call of it, or only its ``occurrence``-th call (from 1)."""
        self._mocks.add_result(name, value, occurrence)
        return self

    def mock_step_error(self, name: str, error: BaseException | type[BaseException],
                        occurrence: int | None = None) -> TestWorkflow:
        """Step ``name`` raises ``error`` on every attempt (its retry policy plays out on the skipped
        clock, then the step fails); every call of it, or only its ``occurrence``-th call."""
        self._mocks.add_error(name, error, occurrence)
        return self

    def send_event(self, type: str, payload: Any = None) -> TestWorkflow:
        """Deliver an event of ``type`` when the run waits for one; several queue up, in order."""
        if not isinstance(type, str) or not type.strip():
            raise InvalidInput("send_event: the event type must be a non-empty string", "type")
        plain, _ = to_json(payload, f"the payload of event '{type}'", "payload")
        self._events.append((type, plain))
        return self

    def answer(self, value: Any) -> TestWorkflow:
        """The answer to the next question the run asks (checked against its schema then); several
        queue up, one per question, in order."""
        plain, _ = to_json(value, "the answer", "value")
        self._answers.append(plain)
        return self

    # -- what the last run did -------------------------------------------------------------
    @property
    def steps(self) -> list[str]:
        """Names (or domain paths) of the steps the last run called, in call order; a retried step
        once, a step called twice twice."""
        seen: dict[str, str] = {}
        for event in self.events:
            if event["type"] == "step.started" and event["step"] not in seen:
                seen[event["step"]] = event["name"]
        return list(seen.values())

    @property
    def unused_mocks(self) -> list[str]:
        """Mocks no step matched (``name`` or ``name#occurrence``): a misspelt name runs the real step.
        When a run ends, each one is also warned about once (`UnusedMockWarning`)."""
        return self._mocks.unused()

    def _warn_unused(self, stacklevel: int) -> None:
        """Warn, at the test's line, about each mock no run of this workflow has matched so far (a mock
        one run used is spelt right, so a later run that takes another branch does not warn about it)."""
        if self.run_id is None:  # the run never started (bad input): its mocks were never tried
            return
        for sentence in self._mocks.unused_sentences(self.name, self._tasks.labels):
            warnings.warn(sentence, UnusedMockWarning, stacklevel=stacklevel + 1)

    # -- running ---------------------------------------------------------------------------
    def run_sync(self, input: Any = None, *, timeout: float = DEFAULT_TIMEOUT) -> Any:
        """`run` for a synchronous test: on an event loop of its own."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass  # no loop: the run goes outside this handler, so its failure is not chained to it
        else:
            raise RuntimeError("run_sync was called inside a running event loop; use 'await wf.run(...)' there")
        try:
            return asyncio.run(self._run(input, timeout))
        finally:
            self._warn_unused(stacklevel=2)

    async def run(self, input: Any = None, *, timeout: float = DEFAULT_TIMEOUT) -> Any:
        """Start a run with ``input`` and drive it to its end; return its output.

        Raises `RunFailed` if it fails, `RunStuck` if it waits for something the test never gives,
        `TimeoutError` after ``timeout`` real seconds. However it ends, a mock no step has matched yet is
        an `UnusedMockWarning` (see `flareflow.testing.mocks`)."""
        try:
            return await self._run(input, timeout)
        finally:
            self._warn_unused(stacklevel=2)

    async def _run(self, input: Any, timeout: float) -> Any:
        self.run_id, self.status, self.output, self.state, self.events = None, None, None, None, []
        self._mocks.start_run()
        registry = Registry()
        registry.add(replace(self.defn, step_hook=self._mocks.hook))
        clock = ManualClock(self.start_time)
        state_dir = Path(tempfile.mkdtemp(prefix="flareflow-test-"))
        try:
            with graph_ports(self.defn, state_dir):
                return await self._run_in(state_dir, registry, clock, input, timeout)
        finally:
            shutil.rmtree(state_dir, ignore_errors=True)

    async def _run_in(self, state_dir: Path, registry: Registry, clock: ManualClock, input: Any,
                      timeout: float) -> Any:
        async with LocalRuntime(state_dir, registry, clock=clock) as runtime:
            runtime.ai.providers = _no_model_server
            try:
                return await asyncio.wait_for(self._drive(runtime, clock, input), timeout)
            except TimeoutError:
                if self.run_id is not None:
                    self.events = runtime.get(self.run_id).events()
                raise TimeoutError(f"run of '{self.name}' still going after {timeout:g}s of real time "
                                   f"(a step that hangs?); its last events: {self._tail()}") from None
            finally:
                self.now = clock.now()
                if self.run_id is not None:
                    with contextlib.suppress(FlareflowError):  # never hide why the run stopped
                        obj = runtime.get(self.run_id)
                        self.events, self.status, self.state = obj.events(), obj.status, obj.info.get("state")

    async def _drive(self, runtime: LocalRuntime, clock: ManualClock, input: Any) -> Any:
        obj = await runtime.start_run(self.name, input)
        self.run_id = run_id = obj.run_id
        while True:
            await runtime.idle()
            obj = runtime.get(run_id)
            if obj.status in TERMINAL:
                return self._finished(obj.status, obj.info, obj.events())
            waits = obj.open_waits()
            if any(w["kind"] == "code" for w in waits):
                self.events = obj.events()
                raise RunStuck(f"run of '{self.name}' is held for its code: {waits[0].get('message')}", waits,
                               self.events)
            if await self._deliver(runtime, run_id, waits):
                continue
            due = runtime.next_alarm()
            if self._skip_sleeps and due is not None:
                clock.advance(max(0.0, due - clock.now()))
                continue
            if self._advances:
                clock.advance(self._advances.popleft())
                continue
            self.events = obj.events()
            raise RunStuck(self._stuck_message(waits, due, clock.now()), waits, self.events)

    async def _deliver(self, runtime: LocalRuntime, run_id: str, waits: list[dict[str, Any]]) -> bool:
        """Queued events and answers the open waits take; whether anything was delivered."""
        delivered = False
        for wait in waits:
            if wait["kind"] == "event":
                for i, (type_, payload) in enumerate(self._events):
                    if type_ == wait.get("event_type"):
                        del self._events[i]
                        await runtime.send_event(run_id, type_, payload)
                        delivered = True
                        break
            elif wait["kind"] == "input" and self._answers:
                await runtime.answer(run_id, self._answers.popleft(), wait["step"])
                delivered = True
        return delivered

    def _finished(self, status: str, info: dict[str, Any], events: list[dict[str, Any]]) -> Any:
        self.status, self.events = status, events
        if status == RunStatus.COMPLETED:
            self.output = info.get("output")
            return self.output
        last: dict[str, Any] = next((e for e in reversed(events) if e["type"] in ("run.failed", "run.cancelled")), {})
        error = last.get("error") if status == RunStatus.FAILED else {
            "type": "Cancelled", "message": str(last.get("reason") or "cancelled")}
        assert self.run_id is not None
        raise RunFailed(self.name, self.run_id, error if isinstance(error, dict) else {}, events, str(status))

    def _stuck_message(self, waits: list[dict[str, Any]], due: float | None, now: float) -> str:
        parts = []
        for wait in waits:
            what = f"{wait['kind']} '{wait['name']}'"
            if wait["kind"] == "event":
                what += f" (event type '{wait.get('event_type')}')"
            if wait["kind"] == "input":
                what += f" (question {wait.get('prompt')!r})"
            parts.append(f"{what} until {wait['until']}" if wait.get("until") else f"{what}, no timeout")
        if not parts and due is not None:
            retrying = self._retrying()
            why = f": the retry of {retrying}" if retrying else " (a retry backoff?)"
            parts.append(f"a timer at {iso(due)}{why}")
        hints = []
        if any(w["kind"] == "input" for w in waits):
            hints.append("wf.answer(value) for the question")
        if any(w["kind"] == "event" for w in waits):
            hints.append("wf.send_event(TYPE, payload) for the event")
        if due is not None:  # a timer would end the wait (with sleeps disabled it would have been skipped to)
            hints.append("wf.disable_sleeps() or wf.advance(...) to let time pass")
        use = f": use {', or '.join(hints)}" if hints else ""
        queued = f"; queued events nobody waits for: {', '.join(t for t, _ in self._events)}" if self._events else ""
        return (f"run of '{self.name}' waits for {'; '.join(parts) or 'nothing it says'}, and the test gives "
                f"it nothing more (clock at {iso(now)}){use}{queued}")

    def _retrying(self) -> str:
        """The steps whose retry is due (a ``step.retrying`` not followed by their next attempt), as
        ``step 'NAME' (attempt N failed: ERROR)``."""
        pending: dict[str, dict[str, Any]] = {}
        for event in self.events:
            if event["type"] == "step.retrying":
                pending[str(event["step"])] = event
            elif event["type"] in ("step.started", "step.completed", "step.failed"):  # its next attempt, or its end
                pending.pop(str(event.get("step")), None)
        described = []
        for event in pending.values():
            error = event.get("error")
            error = error if isinstance(error, dict) else {}
            described.append(f"step '{event.get('name') or event['step']}' (attempt {event.get('attempt')} failed: "
                             f"{error.get('type', 'an error')}: {str(error.get('message', ''))[:200]})")
        return ", ".join(described)

    def _tail(self) -> str:
        return ", ".join(e["type"] for e in self.events[-5:]) or "none read"


#: The ``flareflow_workflow`` fixture's type: ``(workflow, *, registry=None) -> TestWorkflow``.
WorkflowFactory = Callable[..., TestWorkflow]


def _no_model_server(_: dict[str, Any]) -> Any:
    """A test's ``run.ai`` provider: none, whatever the project's settings say (a test never calls a
    model server), so an unmocked AI step fails at once saying how to mock it."""
    raise AiNotConfigured("run.ai has no model server under flareflow.testing (tests never call one, whatever "
                          "tool.flareflow.ai.base_url says): mock the step, e.g. "
                          "wf.mock_step_result('ai.generate', 'an answer') (or 'ai.chat'; 'ai.embed': a list "
                          "of vectors; occurrence=N for one call)")


def create_test_workflow(workflow: WorkflowFn | WorkflowDef | str | Path, *, registry: Registry | None = None,
                         ) -> TestWorkflow:
    """A `TestWorkflow` for ``workflow``: a function decorated with ``@workflow`` (or a plain
    ``async def run(run, input)``, tested under its function name), its `WorkflowDef`, the path of a
    task-graph file (``workflows/deploy.yaml``: loaded and validated into a registry of its own), or a
    workflow's name: in ``registry`` (default: the one ``@workflow`` fills; import the module first),
    else a task graph of that name (or file name) in the workflow folders of the project at or above
    the current directory (`project_graphs`)."""
    source = registry if registry is not None else default_registry
    if isinstance(workflow, WorkflowDef):
        return TestWorkflow(workflow)
    if isinstance(workflow, (str, Path)) and is_graph_path(workflow):
        return TestWorkflow(load_graph_workflow(workflow))
    if isinstance(workflow, str):
        try:
            return TestWorkflow(source.get(workflow))
        except WorkflowNotFound as exc:
            missing = exc
        graphs = project_graphs(Path.cwd())
        path = graphs.find(workflow)
        if path is not None:
            return TestWorkflow(load_graph_workflow(path))
        where = (f"the graph files of {', '.join(graphs.folders)} have {', '.join(sorted(graphs.names)) or 'none'}"
                 if graphs.folders else f"no flareflow project at or above {Path.cwd()} to look in")
        hint = did_you_mean(workflow, sorted({*graphs.names, *(d.name for d in source)}))
        raise WorkflowNotFound(f"{missing}{hint}; a Python workflow is found by name once its module is imported "
                               "(import workflows.NAME in the test, or pass the function), a task graph by its "
                               f"name or file name in the project's workflow folders ({where}), or pass the "
                               "graph file's path (create_test_workflow('workflows/NAME.yaml'))") from None
    if not callable(workflow):
        raise TypeError(f"create_test_workflow takes a workflow function or name, got {type(workflow).__name__}")
    for defn in source:
        if defn.fn is workflow:
            return TestWorkflow(defn)
    try:
        return TestWorkflow(Registry().register(workflow))
    except FlareflowError as exc:
        raise WorkflowNotFound(f"{exc} (create_test_workflow found no @workflow for it either)") from None

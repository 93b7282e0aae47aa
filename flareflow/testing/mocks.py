"""Mocked steps: what a test says a step returns or raises, matched by step name or domain path (in
a task graph also by task id).

The engine's only seam is `flareflow.engine.registry.StepHook`: before each attempt of a step it asks
the test copy of the workflow for a stand-in of the step's function. A mocked step is still a real,
recorded step (``step.started`` / ``step.completed`` or ``step.retrying`` / ``step.failed``), so what a
test sees in `wf.events <flareflow.testing.TestWorkflow.events>` is what the run would record.

``occurrence`` counts the calls of one step name in the order the run first reaches them (1-based). It is
assigned per step key on the first attempt, so replays and retries of a call keep their number.

A mock that matches nothing (a misspelt name, a task id that is not there, ``occurrence=3`` of a step
called once) would let the test pass on the real function, so when a test run ends the kit warns about
it (`UnusedMockWarning`, `Mocks.unused_sentences`). A warning rather than an error: a mock for a branch
this run legitimately did not take is fine, and ``-W error::flareflow.testing.UnusedMockWarning`` (or
pytest's ``filterwarnings``) makes it fail where a project wants that.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from ..engine.errors import FlareflowError, InvalidInput, NonRetryableError, did_you_mean
from ..engine.run import task_tag, to_json
from ..graphs.ports import command_failed


class UnusedMockWarning(UserWarning):
    """A mock of a test workflow matched no step of its runs: its name is misspelt, or names a step or
    task the run did not reach (a branch it did not take), or its ``occurrence`` is past the calls made."""


@dataclass(frozen=True)
class _Mock:
    """One stand-in: a result to return, or an exception to raise on every attempt."""

    result: Any = None
    error: BaseException | None = None

    def stand_in(self, kind: str | None = None, task: str | None = None) -> Callable[..., Any]:
        """The function the step runs instead of its own; ``kind``: the graph task type (``shell``,
        ``docker``, ``http``) whose step result the mocked value is shaped into (`step_result`)."""
        async def mocked(*args: Any, **kwargs: Any) -> Any:
            if self.error is not None:
                raise self.error.with_traceback(None)
            return step_result(self.result, kind, task)

        return mocked


#: The keys of a shell or docker task's step result (`flareflow.local.graphtasks`).
PROCESS_KEYS = frozenset({"exit_code", "stdout", "stderr", "duration_s"})


def step_result(value: Any, kind: str | None, task: str | None) -> Any:
    """A mocked value as the step of a graph task of type ``kind`` returns it.

    A shell, docker or http task's step returns more than the task's result (what ``${tasks.ID.result}``
    reads), and the compiler (`flareflow.graphs.compiler`) takes the result out of it: the output text of
    ``{"stdout", "exit_code", "stderr", "duration_s"}``, the ``body`` of ``{"status", "body"}``. A test
    mocks the task's result, so a plain value is wrapped: a string is what the command printed (exit code
    0), anything else the body of a ``200`` answer. A value of the step's whole shape (a dict of those
    keys: ``stdout`` or ``exit_code`` among them; ``status`` as a number and ``body``) is kept as it is,
    but a non-zero ``exit_code`` fails the attempt as the command would (``command exited with code N``:
    the task records the code, its retries apply, dependents are skipped).
    Any other value for a process task is one the command could never give (its result is text), so the
    step fails saying what to mock."""
    if kind in ("shell", "docker"):
        if isinstance(value, dict) and value and set(value) <= PROCESS_KEYS and {"stdout", "exit_code"} & set(value):
            code = value.get("exit_code", 0)
            if code not in (0, None):  # as the real command: a non-zero exit fails the attempt
                raise FlareflowError(command_failed(code, str(value.get("stdout") or ""),
                                                    str(value.get("stderr") or ""), " (mocked)"))
            return value
        if isinstance(value, str):
            return {"exit_code": 0, "stdout": value if not value or value.endswith("\n") else value + "\n",
                    "stderr": "", "duration_s": 0.0}
        raise NonRetryableError(
            f"mocked {kind} task '{task}' with a {type(value).__name__}, but its result is the text the command "
            f"printed (${{tasks.{task}.result}}): mock a string, or the step's whole result "
            f"{{'stdout': ..., 'exit_code': 0}}")
    if kind == "http":
        if (isinstance(value, dict) and set(value) == {"status", "body"} and isinstance(value["status"], int)
                and not isinstance(value["status"], bool)):
            return value
        return {"status": 200, "body": value}
    return value


class Mocks:
    """The mocks of one test workflow, and the occurrence numbers of the current run's steps."""

    def __init__(self, kind_of: Callable[[str | None], str | None] = lambda tag: None) -> None:
        #: A graph task tag -> the type its step results are shaped for (`GraphTasks.step_kind`).
        self._kind_of = kind_of
        self._mocks: dict[tuple[str, int | None], _Mock] = {}
        self._used: set[tuple[str, int | None]] = set()
        self._occurrence: dict[str, int] = {}  # step key -> its number among the calls of its name
        self._seen: dict[str, int] = {}  # name -> calls reached so far
        self._calls: dict[str, int] = {}  # step name or task id -> calls of it in the current run
        self._warned: set[tuple[str, int | None]] = set()

    def add_result(self, name: str, value: Any, occurrence: int | None) -> None:
        plain, _ = to_json(value, f"the mocked result of step '{name}'")
        self._add(name, occurrence, _Mock(result=plain))

    def add_error(self, name: str, error: BaseException | type[BaseException], occurrence: int | None) -> None:
        if isinstance(error, type) and issubclass(error, BaseException):
            error = error()
        if not isinstance(error, BaseException):
            raise TypeError(f"mock_step_error('{name}', ...) takes an exception, got {type(error).__name__}")
        self._add(name, occurrence, _Mock(error=error))

    def _add(self, name: str, occurrence: int | None, mock: _Mock) -> None:
        if not isinstance(name, str) or not name:
            raise InvalidInput(f"a mock needs a step name or domain path, got {name!r}", "name")
        if occurrence is not None and (isinstance(occurrence, bool) or not isinstance(occurrence, int)
                                       or occurrence < 1):
            raise InvalidInput(f"mock of '{name}': occurrence counts calls from 1, got {occurrence!r}",
                               "occurrence")
        self._mocks[(name, occurrence)] = mock

    def start_run(self) -> None:
        """A new run numbers its calls from 1 again."""
        self._occurrence.clear()
        self._seen.clear()
        self._calls.clear()

    def hook(self, name: str, key: str) -> Callable[..., Any] | None:
        """The `StepHook`: the stand-in for this call of ``name``, or None to run the real function."""
        task = task_tag.get()  # in a task graph: the task's id matches too
        labels = [name] if task is None or task == name else [name, task]
        occurrence = self._occurrence.get(key)
        if occurrence is None:
            occurrence = self._occurrence[key] = self._seen[name] = self._seen.get(name, 0) + 1
            for label in labels:
                self._calls[label] = self._calls.get(label, 0) + 1
        for match in [(label, occ) for label in labels for occ in (occurrence, None)]:
            mock = self._mocks.get(match)
            if mock is not None:
                self._used.add(match)
                return mock.stand_in(self._kind_of(task), task)
        return None

    def unused(self) -> list[str]:
        """Mocks no step has matched yet (a misspelt name runs the real function): ``name`` or
        ``name#occurrence``."""
        return [name if occ is None else f"{name}#{occ}"
                for (name, occ) in self._mocks if (name, occ) not in self._used]

    def unused_sentences(self, workflow: str, known: Collection[str] = ()) -> list[str]:
        """One sentence for each unused mock not yet warned about (each is said once per test workflow),
        saying why it may not have matched: a did-you-mean over the step names and task ids the last run
        called (and ``known``: a graph's task ids and names), or how many times its step ran."""
        called = sorted(self._calls)
        sentences = []
        for (name, occ), mock in self._mocks.items():
            if (name, occ) in self._used or (name, occ) in self._warned:
                continue
            self._warned.add((name, occ))
            method = "mock_step_error" if mock.error is not None else "mock_step_result"
            shown = f"wf.{method}({name!r}" + (f", occurrence={occ})" if occ is not None else ")")
            ran = self._calls.get(name, 0)
            if occ is not None and ran:
                times = f"{ran} time{'s' if ran != 1 else ''}"
                why = f"'{name}' was called {times} in the last run, so it has no call {occ}"
            elif ran:
                why = f"each call of '{name}' matched a mock for its own occurrence"
            elif name in known:
                why = f"'{name}' did not run in the last run (a branch it did not take?)"
            else:
                hint = did_you_mean(name, sorted({*called, *known}))
                why = f"no step or task '{name}' was called in the last run{hint}"
                if not hint and called:
                    why += f"; it called: {', '.join(called)[:300]}"
            sentences.append(f"{shown} matched no step of workflow '{workflow}' (the real step runs where one "
                             f"exists): {why}")
        return sentences

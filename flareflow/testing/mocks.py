"""Mocked steps: what a test says a step returns or raises, matched by step name or domain path (in
a task graph also by task id).

The engine's only seam is `flareflow.engine.registry.StepHook`: before each attempt of a step it asks
the test copy of the workflow for a stand-in of the step's function. A mocked step is still a real,
recorded step (``step.started`` / ``step.completed`` or ``step.retrying`` / ``step.failed``), so what a
test sees in `wf.events <flareflow.testing.TestWorkflow.events>` is what the run would record.

``occurrence`` counts the calls of one step name in the order the run first reaches them (1-based). It is
assigned per step key on the first attempt, so replays and retries of a call keep their number.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..engine.errors import InvalidInput
from ..engine.run import task_tag, to_json


@dataclass(frozen=True)
class _Mock:
    """One stand-in: a result to return, or an exception to raise on every attempt."""

    result: Any = None
    error: BaseException | None = None

    def stand_in(self) -> Callable[..., Any]:
        async def mocked(*args: Any, **kwargs: Any) -> Any:
            if self.error is not None:
                raise self.error.with_traceback(None)
            return self.result

        return mocked


class Mocks:
    """The mocks of one test workflow, and the occurrence numbers of the current run's steps."""

    def __init__(self) -> None:
        self._mocks: dict[tuple[str, int | None], _Mock] = {}
        self._used: set[tuple[str, int | None]] = set()
        self._occurrence: dict[str, int] = {}  # step key -> its number among the calls of its name
        self._seen: dict[str, int] = {}  # name -> calls reached so far

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

    def hook(self, name: str, key: str) -> Callable[..., Any] | None:
        """The `StepHook`: the stand-in for this call of ``name``, or None to run the real function."""
        occurrence = self._occurrence.get(key)
        if occurrence is None:
            occurrence = self._occurrence[key] = self._seen[name] = self._seen.get(name, 0) + 1
        task = task_tag.get()  # in a task graph: the task's id matches too
        labels = [name] if task is None or task == name else [name, task]
        for match in [(label, occ) for label in labels for occ in (occurrence, None)]:
            mock = self._mocks.get(match)
            if mock is not None:
                self._used.add(match)
                return mock.stand_in()
        return None

    def unused(self) -> list[str]:
        """Mocks no step has matched yet (a misspelt name runs the real function): ``name`` or
        ``name#occurrence``."""
        return [name if occ is None else f"{name}#{occ}"
                for (name, occ) in self._mocks if (name, occ) not in self._used]

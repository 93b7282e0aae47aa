"""The workflow registry: ``@workflow`` turns an ``async def`` into a named, discoverable workflow.

The registry is the manifest every host reads: the local runtime, the HTTP router and the generated
Worker entry (which imports every workflow module statically). A name maps to exactly one
function; declaring a second is an error at import time, naming both places, so a typo never
silently shadows a workflow.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

from .errors import WorkflowDefinitionError, WorkflowNotFound

WorkflowFn = Callable[..., Awaitable[Any]]
F = TypeVar("F", bound=WorkflowFn)
#: A test seam (`flareflow.testing` mocks): called as ``hook(name, key)`` before each attempt of a step
#: (``name``: the step's name or domain path; ``key``: its step key); returns a callable to run instead of
#: the step's function (with the same arguments), or None to run the function itself.
StepHook = Callable[[str, str], Callable[..., Any] | None]


@dataclass(frozen=True)
class WorkflowDef:
    """One registered workflow and what the hosts need to know about it."""

    name: str
    fn: WorkflowFn
    schedule: str | None = None
    description: str = ""
    takes_input: bool = True
    input_required: bool = False
    metadata: dict[str, Any] = field(default_factory=dict)
    #: The schedule as the author wrote it (a phrase like ``"every Monday at 9am"``) and its zone;
    #: ``schedule`` holds the UTC cron expression compiled from them (`flareflow.engine.schedules`).
    schedule_text: str | None = None
    tz: str | None = None
    #: Set only on the copies `flareflow.testing` registers (mocked steps); None everywhere else.
    step_hook: StepHook | None = field(default=None, compare=False, repr=False)

    @property
    def location(self) -> str:
        """Where the function is defined, for error messages (a task graph: its file, ``metadata["source"]``)."""
        if isinstance(self.metadata.get("source"), str):
            return str(self.metadata["source"])
        code = getattr(self.fn, "__code__", None)
        if code is None:
            return getattr(self.fn, "__module__", "?")
        return f"{code.co_filename}:{code.co_firstlineno}"

    def describe(self) -> dict[str, Any]:
        """The JSON manifest entry for this workflow."""
        return {
            "name": self.name,
            "description": self.description,
            "schedule": self.schedule,
            **({"schedule_text": self.schedule_text} if self.schedule_text not in (None, self.schedule) else {}),
            **({"tz": self.tz} if self.tz else {}),
            "takes_input": self.takes_input,
            "input_required": self.input_required,
            "metadata": self.metadata,
        }


def _inspect_signature(name: str, fn: Callable[..., Any]) -> tuple[bool, bool]:
    """Check ``fn(run[, input])`` and say whether it takes input and whether input is required."""
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError) as exc:  # pragma: no cover - builtins only
        raise WorkflowDefinitionError(f"workflow '{name}': cannot read its signature ({exc})") from exc
    positional = [
        p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    if not positional:
        raise WorkflowDefinitionError(
            f"workflow '{name}' must accept the run context as its first parameter: "
            f"async def {getattr(fn, '__name__', name)}(run, input=None)"
        )
    if len(positional) > 2:
        raise WorkflowDefinitionError(
            f"workflow '{name}' takes {len(positional)} positional parameters; "
            "a workflow takes (run) or (run, input) — pass several values as one JSON object"
        )
    if len(positional) == 1:
        return False, False
    return True, positional[1].default is inspect.Parameter.empty


class Registry:
    """Name -> workflow. Hosts look workflows up here; ``@workflow`` fills the default one."""

    def __init__(self) -> None:
        self._workflows: dict[str, WorkflowDef] = {}
        #: Modules that failed to import when the project was loaded (``file:line: import failed: ...``
        #: lines); `get` names them, since the workflow asked for may be one of theirs.
        self.import_errors: list[str] = []

    def register(
        self,
        fn: WorkflowFn,
        name: str | None = None,
        *,
        schedule: str | None = None,
        description: str | None = None,
        metadata: dict[str, Any] | None = None,
        tz: str | None = None,
    ) -> WorkflowDef:
        """Add ``fn`` under ``name``; reject non-async functions, duplicate names and unreadable schedules.

        ``schedule`` is a cron expression or an English phrase, read in the zone ``tz`` (default UTC) and
        compiled to UTC cron here, at definition time (`flareflow.engine.schedules`)."""
        wf_name = name if name is not None else getattr(fn, "__name__", "")
        if not isinstance(wf_name, str) or not wf_name.strip():
            raise WorkflowDefinitionError("a workflow name must be a non-empty string")
        if not inspect.iscoroutinefunction(fn):
            where = WorkflowDef(wf_name, fn).location
            raise WorkflowDefinitionError(f"workflow '{wf_name}' at {where} must be declared with 'async def'")
        takes_input, input_required = _inspect_signature(wf_name, fn)
        cron = _compiled_schedule(wf_name, fn, schedule, tz)
        defn = WorkflowDef(
            name=wf_name,
            fn=fn,
            schedule=cron,
            schedule_text=schedule,
            tz=tz,
            description=(description if description is not None else inspect.getdoc(fn) or "").strip(),
            takes_input=takes_input,
            input_required=input_required,
            metadata=dict(metadata or {}),
        )
        existing = self._workflows.get(wf_name)
        if existing is not None and not _same_definition(existing.fn, fn):
            raise WorkflowDefinitionError(
                f"two workflows are named '{wf_name}': {existing.location} and {defn.location}"
            )
        self._workflows[wf_name] = defn
        return defn

    def add(self, defn: WorkflowDef) -> WorkflowDef:
        """Add an already built definition (the test kit's copy carrying its mocks), replacing none."""
        existing = self._workflows.get(defn.name)
        if existing is not None and existing is not defn:
            raise WorkflowDefinitionError(f"two workflows are named '{defn.name}': {existing.location} and "
                                          f"{defn.location}")
        self._workflows[defn.name] = defn
        return defn

    def get(self, name: str) -> WorkflowDef:
        """The workflow called ``name``, or `WorkflowNotFound` listing what exists."""
        try:
            return self._workflows[name]
        except KeyError:
            known = ", ".join(sorted(self._workflows)) or "none registered"
            broken = f"; not imported: {'; '.join(self.import_errors)}" if self.import_errors else ""
            raise WorkflowNotFound(f"unknown workflow '{name}' (known: {known}{broken})") from None

    def __contains__(self, name: object) -> bool:
        return name in self._workflows

    def __iter__(self) -> Iterator[WorkflowDef]:
        return iter(sorted(self._workflows.values(), key=lambda d: d.name))

    def __len__(self) -> int:
        return len(self._workflows)

    def names(self) -> list[str]:
        """Registered names, sorted."""
        return sorted(self._workflows)

    def clear(self) -> None:
        """Forget everything (tests and re-discovery)."""
        self._workflows.clear()
        self.import_errors.clear()

    def manifest(self) -> list[dict[str, Any]]:
        """JSON description of every workflow, sorted by name."""
        return [d.describe() for d in self]


def _compiled_schedule(name: str, fn: Callable[..., Any], schedule: str | None, tz: str | None) -> str | None:
    """``schedule`` as UTC cron; an unreadable phrase or zone is a `WorkflowDefinitionError` naming the workflow."""
    if schedule is None:
        if tz is not None:
            where = WorkflowDef(name, fn).location
            raise WorkflowDefinitionError(f"workflow '{name}' at {where}: tz= needs a schedule=")
        return None
    from .schedules import ScheduleError, compile_schedule  # schedules -> cron -> (types of) this module

    try:
        return compile_schedule(schedule, tz)
    except ScheduleError as exc:
        raise WorkflowDefinitionError(f"workflow '{name}' at {WorkflowDef(name, fn).location}: {exc}") from None


def _same_definition(a: Callable[..., Any], b: Callable[..., Any]) -> bool:
    """Re-importing a module re-runs its decorators; that is the same workflow, not a duplicate."""
    return (getattr(a, "__module__", None), getattr(a, "__qualname__", None)) == (
        getattr(b, "__module__", None),
        getattr(b, "__qualname__", None),
    )


default_registry = Registry()


def workflow(
    name: str | None = None,
    *,
    schedule: str | None = None,
    description: str | None = None,
    registry: Registry | None = None,
    tz: str | None = None,
    **metadata: Any,
) -> Callable[[F], F]:
    """Register an ``async def`` as a workflow: ``@workflow("customer-onboarding")``.

    ``schedule`` starts it on a timer: cron (``"0 9 * * 1"``) or English (``"every Monday at 9am"``),
    in UTC unless ``tz`` names a zone (converted with its standard offset; see `flareflow.engine.schedules`)."""
    if callable(name):
        raise WorkflowDefinitionError("use @workflow(...) with parentheses, e.g. @workflow(\"my-flow\")")

    def decorate(fn: F) -> F:
        target = registry if registry is not None else default_registry
        target.register(fn, name, schedule=schedule, description=description, metadata=metadata, tz=tz)
        return fn

    return decorate

"""The replay check: would the current code replay a run's recorded history? Nothing is executed.

`check_replay` runs the workflow from the top against the history through a journal that records
nothing: recorded steps return their results as in a real replay, and the first call that would do
new work (run a step, begin a wait, record a ``run.patched`` marker) ends that branch -- the history
has nothing more to compare there. A call that does not match the history is reported as the
activation would hold the run for it (`flareflow.engine.errors.ReplayDivergence`): the position,
the recorded call and the new one. ``flareflow check`` runs it over the local unfinished runs and
exported histories; ``flareflow deploy`` over the deployed Worker's unfinished runs.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from typing import Any

from .errors import Suspend, WorkflowNotFound
from .history import UNCHANGED, Delivery, Offload, StepRecord
from .outcome import HELD
from .registry import Registry, WorkflowDef
from .run import Execution

#: Seconds a replay may take before it is reported as not finishing (a workflow body that waits on
#: something of its own between steps).
CHECK_TIMEOUT = 10.0


class _DryJournal:
    """A `Journal` that records nothing: a commit means the replay reached new work, so it unwinds."""

    offload: Offload | None = None

    def now(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    def commit(self, record: StepRecord, events: list[tuple[str, dict[str, Any]]], *, state: Any = UNCHANGED,
               delivery: int | None = None, durable: bool = True) -> None:
        raise Suspend()

    def find_delivery(self, kind: str, match: str) -> Delivery | None:
        return None


def _epoch(value: Any) -> float | None:
    if value is None or isinstance(value, (int, float)):
        return value
    return dt.datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()


def records_from_steps(steps: list[dict[str, Any]]) -> dict[str, StepRecord]:
    """The history a run's ``steps`` describe (``GET /runs/{id}``, ``flareflow runs export``), by key.

    ValueError when a step lacks what a replay compares (``step``, ``pos``, ``kind``, ``name``,
    ``status``): an export from a flareflow that did not publish positions."""
    out: dict[str, StepRecord] = {}
    for step in steps:
        try:
            rec = StepRecord(str(step["step"]), str(step["pos"]), str(step["kind"]), str(step["name"]),
                             str(step["status"]), int(step.get("attempts") or 0), 0, step.get("result"),
                             step.get("error"), _epoch(step.get("wake_at")), _epoch(step.get("started_at")),
                             dict(step.get("meta") or {}))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"a step of the history lacks {exc} (export it with this flareflow)") from None
        if rec.kind == "event" and "event_type" not in rec.meta:
            rec.meta["event_type"] = rec.name  # only waiting records read it, and the dry journal delivers nothing
        out[rec.key] = rec
    return out


async def check_replay(registry: Registry, run: dict[str, Any], history: dict[str, StepRecord],
                       timeout: float = CHECK_TIMEOUT) -> dict[str, Any] | None:
    """None when the current code replays ``run``'s history, else what is wrong:
    ``{"problem": "missing" | "diverges" | "timeout", "message", "position", "recorded", "new"}`` (and, for
    a divergence, ``advice``: `continue_advice`).

    ``run`` is the run as ``GET /runs/{id}`` shows it (``id``, ``workflow``, ``input``, ``state``)."""
    try:
        defn = registry.get(str(run["workflow"]))
    except WorkflowNotFound as exc:
        return {"problem": "missing", "message": str(exc), "position": None, "recorded": None, "new": None}
    execution = Execution(defn, str(run["id"]), run.get("input"), _DryJournal(), history, run.get("state"))
    try:
        outcome = await asyncio.wait_for(execution.execute(), timeout)
    except TimeoutError:
        return {"problem": "timeout", "message": f"the replay did not finish within {timeout:g}s",
                "position": None, "recorded": None, "new": None}
    if outcome.kind != HELD:
        return None
    error = outcome.error or {}
    divergence = error.get("divergence") or {}
    return {"problem": "diverges", "message": str(error.get("message", "")), **divergence,
            "advice": continue_advice(defn, divergence)}


def continue_advice(defn: WorkflowDef, divergence: dict[str, Any] | None) -> str:
    """What lets a run held at ``divergence`` continue, in its workflow's own language: Python code can
    keep the old path behind ``run.patched``; a task graph (a YAML/JSON file) has no such branch, so the
    advice is to give the file back what the history recorded -- a task's label (its ``name``, else its
    ``id``) is its step's name, so renaming one is what usually diverges."""
    source = defn.metadata.get("source")
    if not (defn.metadata.get("graph") and isinstance(source, str)):
        return 'keep the old path behind a run.patched("change-id") branch'
    recorded = (divergence or {}).get("recorded") or {}
    new = (divergence or {}).get("new") or {}
    old = recorded.get("name")
    if not old:
        return f"restore {source} as it was when the run started"
    if new.get("name") and new.get("name") != old:
        return (f"restore task '{old}' in {source} (now '{new['name']}': a task's name, else its id, is "
                "recorded in the run's history)")
    return f"restore task '{old}' in {source} as it was when the run started"


def describe_problem(problem: dict[str, Any]) -> str:
    """One line for a `check_replay` result: the step, the recorded call and the new call."""
    if problem["problem"] != "diverges":
        return str(problem["message"])
    recorded, new = problem.get("recorded") or {}, problem.get("new")
    line = (f"diverges at step '{recorded.get('key')}' (position {problem.get('position')}): "
            f"recorded {recorded.get('kind')} '{recorded.get('name')}', ")
    if new is None:
        return line + "the code no longer reaches it"
    same = new.get("name") == recorded.get("name") and new.get("kind") == recorded.get("kind")
    why = ": the same path with another context or arguments" if same and "@" in str(new.get("key")) else ""
    return line + f"the code now calls {new.get('kind')} '{new.get('name')}' (key '{new.get('key')}'{why})"

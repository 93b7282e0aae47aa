"""A task graph compiled onto the engine: one registered workflow whose tasks are recorded steps.

`register_graph` turns a validated `Graph` into an ``async def (run, input)`` in the same registry as
Python workflows (one namespace: a clash names both files). Running it:

* every top-level task is a `Run.parallel` branch (its own key scope, so keys never depend on timing);
  a branch first awaits the tasks it ``depends_on``, so independent tasks run at once and a task
  starts as soon as its dependencies are done. Replays take the same path from the recorded steps.
* a task that fails makes its dependents ``skipped`` (unless it has ``continue_on_failure``); a task
  whose ``when`` is false is ``skipped`` too, but counts as done for its dependents. The run fails
  (`GraphFailed`, naming the failed and skipped tasks) when a task failed without
  ``continue_on_failure``, after the graph's ``on_failure`` tasks ran; otherwise its output is
  ``{"tasks": {id: {"status", "result", ...}}, "ran", "skipped", "failed"}``. ``run.state["tasks"]``
  follows every task's status as it settles.
* types: ``shell``/``docker``/``data_processor`` (host ports, `flareflow.graphs.ports`), ``http`` and
  ``database`` (ports), ``python`` (``module:function`` called as a step with ``inputs`` as keyword
  arguments), ``sleep`` (`Run.sleep`), ``wait_event`` (`Run.wait_for_event`), ``input`` (`Run.ask`),
  ``conditional``, ``parallel`` (``wait_for: any`` succeeds when one of its tasks did; all of them run),
  ``loop`` (sequential, or ``parallel: true``; ``stop_on_failure`` skips the items after a failure) and
  ``workflow`` (another workflow run *inline*, in its own key scope of this run: its steps are this
  run's steps, its output the task's result).
* a ``shell`` or ``docker`` task's step streams its output while it runs (``step.output`` events,
  `flareflow.engine.run.live_output`) unless ``live_output: false``; its logs keep every line anyway.
* every durable call of a task carries the task's id on its events (`flareflow.engine.run.task_tag`).
* ``retry`` (``attempts``, ``delay`` and ``max_delay`` in ms, ``backoff``, default constant) maps onto
  `Retry`; without one a task has a single attempt. ``timeout``: a number of seconds (``http``:
  milliseconds) or a duration string (``"10s"``, ``"5 minutes"``), handed on as seconds.

``${env.X}`` reads the run's ``$env`` input overrides (``flareflow run --env``), then the host's
environment, then the graph's ``env`` defaults; it is read on every activation, not recorded, so
secrets never land in the history. Standard library only: the Worker runs this.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import importlib
import json
import re
from collections.abc import Callable, Coroutine
from typing import Any

from ..engine.errors import FlareflowError, InvalidInput, NonRetryableError, StepFailed, Suspend, WaitTimeout
from ..engine.registry import Registry, WorkflowDef
from ..engine.retry import NO_RETRY, Retry
from ..engine.run import Run, live_output, task_tag
from ..engine.schema import SchemaError
from ..engine.schema import validate as validate_schema
from .expressions import ExpressionError, parse_condition, render_value
from .model import COMPLETED, FAILED, SKIPPED, Graph, timeout_seconds
from .ports import current

__all__ = ["ENV_KEY", "GraphFailed", "graph_of", "register_graph"]

#: The input key holding environment overrides (``flareflow run --env K=V``); not part of ``inputs``.
ENV_KEY = "$env"
_EXIT = re.compile(r"exited with code (-?\d+)")
#: Set inside a ``workflow`` task's branch: the graph running there is a child of the run's own.
_inline: contextvars.ContextVar[bool] = contextvars.ContextVar("flareflow_graph_inline", default=False)


class GraphFailed(FlareflowError):
    """A graph run ended with failed tasks; the message names them and what was skipped."""


class TaskError(NonRetryableError):
    """A task cannot run as written (a bad interpolated value, a missing port); never retried."""


def _retry(spec: Any) -> Retry:
    if not isinstance(spec, dict):
        return NO_RETRY
    max_delay = spec.get("max_delay")
    return Retry(limit=int(spec.get("attempts", 1)), delay=float(spec.get("delay", 0)) / 1000,
                 backoff=spec.get("backoff", "constant"),
                 max_delay=float(max_delay) / 1000 if max_delay is not None else None)


def _timeout(task: dict[str, Any]) -> float | None:
    """The task's ``timeout`` in seconds (a number in its type's unit, or a duration string such as ``"10s"``;
    `timeout_seconds`, the validator's reading too), or None without one. Every port and engine call takes
    seconds as a float, so a ``"5 minutes"`` never reaches a process wait as text."""
    value = task.get("timeout")
    return None if value is None else timeout_seconds(value, task.get("type"))


def _label(task: dict[str, Any], fallback: str) -> str:
    name = task.get("name") or task.get("id")
    return str(name) if name else fallback


def _item_text(value: Any) -> str:
    """A loop item as its iteration's label shows it (``deploy: staging``)."""
    return (value if isinstance(value, str) else _json_text(value))[:40]


class _GraphRun:
    """One activation of one graph run."""

    def __init__(self, graph: Graph, registry: Registry, run: Run, value: Any) -> None:
        self.graph = graph
        self.d = graph.definition
        self.registry = registry
        self.run = run
        overrides: dict[str, str] = {}
        if isinstance(value, dict) and ENV_KEY in value:
            raw = value[ENV_KEY]
            value = {k: v for k, v in value.items() if k != ENV_KEY}
            if not isinstance(raw, dict):
                raise InvalidInput(f"input.{ENV_KEY}: environment overrides are an object of names to strings",
                                   ENV_KEY)
            overrides = {str(k): v if isinstance(v, str) else str(v) for k, v in raw.items()}
        self.input = self._checked_input(value)
        env: dict[str, Any] = {str(k): v if isinstance(v, str) else _text(v) for k, v in
                               (self.d.get("env") or {}).items()}
        env.update(current().environ())
        env.update(overrides)
        self.overrides = overrides
        #: statuses by task id: ``run.state["tasks"]`` for the run's own graph; a graph run as another
        #: graph's ``workflow`` task keeps its own (it must not overwrite its parent's)
        self.statuses: dict[str, str] = {}
        trigger = self.d.get("trigger") or {"type": "manual"}
        self.tasks: dict[str, dict[str, Any]] = {}
        self.base: dict[str, Any] = {"env": env, "input": self.input, "tasks": self.tasks,
                                     "trigger": {"type": trigger.get("type"), "payload": self.input},
                                     "run": {"id": run.id, "workflow": run.workflow}}

    def _checked_input(self, value: Any) -> Any:
        schema = self.d.get("inputs")
        if not isinstance(schema, dict):
            return value
        if value is None and schema.get("type") == "object":
            value = {}
        if isinstance(value, dict) and isinstance(schema.get("properties"), dict):
            for key, prop in schema["properties"].items():
                if key not in value and isinstance(prop, dict) and "default" in prop:
                    value[key] = prop["default"]
        try:
            validate_schema(value, schema)
        except SchemaError as exc:
            raise InvalidInput(f"input of workflow '{self.graph.name}': {exc}", "input") from None
        return value

    # -- the whole graph ---------------------------------------------------------------------
    async def execute(self) -> Any:
        top: list[dict[str, Any]] = list(self.d["tasks"])
        done: dict[str, asyncio.Future[str]] = {t["id"]: asyncio.get_running_loop().create_future() for t in top}
        if not _inline.get():
            self.run.state["tasks"] = self.statuses
        branches = []
        for task in top:
            coro = self._branch(task, done)
            if task["id"].isidentifier():
                coro.__qualname__ = task["id"]  # type: ignore[attr-defined]  # step.started's "branch": the task
            branches.append(coro)
        await self.run.parallel(*branches)
        # the run fails for its top-level tasks: a task inside one (a group's, a branch) fails its parent
        failed = [t["id"] for t in top if self.tasks[t["id"]]["status"] == FAILED
                  and not self.tasks[t["id"]].get("tolerated")]
        if failed:
            for index, task in enumerate(self.d.get("on_failure") or []):
                await self._nested(task, f"on failure: {_label(task, str(index + 1))}", dict(self.base),
                                   task.get("id") or "on_failure")
        summary = self.summary()
        if failed:
            parts = []
            for tid in failed:
                rec = self.tasks[tid]
                code = f" (exit code {rec['exit_code']})" if rec.get("exit_code") not in (None, 0) else ""
                parts.append(f"{tid}{code}: {rec.get('error', {}).get('message', '')}"[:200])
            skipped = [t for t in summary["skipped"] if self.tasks[t].get("reason") != "when"]
            message = f"{len(failed)} task(s) failed: " + "; ".join(parts)
            if skipped:
                message += f"; skipped: {', '.join(skipped)}"
            raise GraphFailed(message)
        return summary

    def summary(self) -> dict[str, Any]:
        """The output: every task that settled, in definition order (not the order they finished in)."""
        order = {tid: index for index, tid in enumerate(_ids(self.d.get("tasks")) + _ids(self.d.get("on_failure")))}
        settled = sorted(self.tasks.items(), key=lambda item: order.get(item[0], len(order)))
        shown = {tid: {k: v for k, v in rec.items() if k != "tolerated"} for tid, rec in settled}
        return {"tasks": shown,
                "ran": [t for t, r in settled if r["status"] != SKIPPED],
                "skipped": [t for t, r in settled if r["status"] == SKIPPED],
                "failed": [t for t, r in settled if r["status"] == FAILED]}

    def _settle(self, tid: str, record: dict[str, Any]) -> None:
        self.tasks[tid] = record
        self.statuses[tid] = record["status"]

    async def _branch(self, task: dict[str, Any], done: dict[str, asyncio.Future[str]]) -> None:
        tid: str = task["id"]
        future = done[tid]
        try:
            blocked: str | None = None
            for dep in task.get("depends_on") or []:
                outcome = await asyncio.shield(done[dep])
                if outcome == "suspended":
                    raise Suspend()
                rec = self.tasks[dep]
                if (rec["status"] == FAILED and not rec.get("tolerated")) or rec.get("reason") == "upstream":
                    blocked = blocked or dep
            if blocked is not None:
                self._settle(tid, {"status": SKIPPED, "reason": "upstream",
                                   "message": f'task "{blocked}" did not complete'})
            else:
                record = await self._task(task, _label(task, tid), dict(self.base), tid)
                if record["status"] == FAILED and task.get("continue_on_failure"):
                    record["tolerated"] = True
                self._settle(tid, record)
            future.set_result("done")
        except BaseException:
            if not future.done():
                future.set_result("suspended")
            raise

    # -- one task ------------------------------------------------------------------------------
    async def _task(self, task: dict[str, Any], label: str, scope: dict[str, Any], tid: str) -> dict[str, Any]:
        """Run one task (``when`` first) and describe how it ended; a failure is a record, not raised."""
        token = task_tag.set(tid)
        try:
            when = task.get("when")
            if when is not None and not (when if isinstance(when, bool) else parse_condition(when).evaluate(scope)):
                return {"status": SKIPPED, "reason": "when", "message": f"when {when!r} is false"}
            record = await self._body(task, label, scope, tid)
        except ExpressionError as exc:
            record = {"status": FAILED, "error": {"type": "ExpressionError", "message": str(exc)}}
            await self._failed_before_its_step(label, record["error"])
        except StepFailed as exc:
            record = {"status": FAILED, "error": exc.error}
            match = _EXIT.search(str(exc.error.get("message", "")))
            if match is not None:
                record["exit_code"] = int(match.group(1))
        except Exception as exc:  # WaitTimeout, a TaskError, a value of the wrong shape: this task failed
            record = {"status": FAILED, "error": {"type": type(exc).__name__, "message": str(exc)}}
            if not isinstance(exc, WaitTimeout):  # a timed-out wait has its own events already
                await self._failed_before_its_step(label, record["error"])
        finally:
            task_tag.reset(token)
        if record["status"] == FAILED and isinstance(task.get("on_failure"), dict):
            handler = task["on_failure"]
            await self._nested(handler, f"{label} › on failure", {**scope, "error": record.get("error")},
                               handler.get("id") or tid)
        return record

    async def _failed_before_its_step(self, label: str, error: dict[str, Any]) -> None:
        """A task that failed before a step of its own ran (an expression that does not evaluate, a python
        ``function`` that does not import, loop items that are not a list, an unknown workflow) still
        fails as a recorded step, so its ``step.started`` / ``step.failed`` events (with the task id) tell
        the live view, the console and every client why; otherwise only the run's output would."""
        with contextlib.suppress(StepFailed):
            await self.run.step(label, _refuse, f"{error['type']}: {error['message']}", retry=NO_RETRY)

    async def _nested(self, task: dict[str, Any], label: str, scope: dict[str, Any], tid: str) -> dict[str, Any]:
        record = await self._task(task, label, scope, tid)
        if isinstance(task.get("id"), str):
            self._settle(task["id"], record)
        return record

    async def _body(self, task: dict[str, Any], label: str, scope: dict[str, Any], tid: str) -> dict[str, Any]:
        kind = task["type"]
        handler: Callable[..., Coroutine[Any, Any, dict[str, Any]]] = getattr(self, f"_t_{kind}")
        return await handler(task, label, scope, tid)

    def _step(self, label: str, task: dict[str, Any], fn: Callable[..., Any], *args: Any,
              timeout: float | str | None = None) -> Any:
        return self.run.step(label, fn, *args, retry=_retry(task.get("retry")), timeout=timeout)

    @staticmethod
    async def _streamed(task: dict[str, Any], step: Any) -> Any:
        """Await a process task's step with its output streamed as ``step.output`` events while it runs
        (``live_output``, default true)."""
        token = live_output.set(task.get("live_output", True) is not False)
        try:
            return await step
        finally:
            live_output.reset(token)

    # -- types ---------------------------------------------------------------------------------
    async def _t_shell(self, task: dict[str, Any], label: str, scope: dict[str, Any], tid: str) -> dict[str, Any]:
        spec = {"command": _string(render_value(task["command"], scope), "command"),
                "cwd": render_value(task.get("cwd"), scope), "environment": render_value(task.get("environment")
                                                                                            or {}, scope),
                "timeout": _timeout(task), "live_output": task.get("live_output", True)}
        result = await self._streamed(task, self._step(label, task, _local("shell"), spec))
        return {"status": COMPLETED, "result": result.get("stdout", "").rstrip("\n"), **result}

    async def _t_docker(self, task: dict[str, Any], label: str, scope: dict[str, Any], tid: str) -> dict[str, Any]:
        spec = {key: render_value(task.get(key), scope) for key in
                ("action", "image", "context", "dockerfile", "command", "environment", "volumes", "cwd")}
        spec["timeout"] = _timeout(task)
        result = await self._streamed(task, self._step(label, task, _local("docker"), spec))
        return {"status": COMPLETED, "result": result.get("stdout", "").rstrip("\n"), **result}

    async def _t_data_processor(self, task: dict[str, Any], label: str, scope: dict[str, Any],
                                tid: str) -> dict[str, Any]:
        spec = {key: render_value(task[key], scope) for key in ("input", "processor", "output")}
        result = await self._step(label, task, _local("data_processor"), spec, timeout=_timeout(task))
        return {"status": COMPLETED, "result": result}

    async def _t_http(self, task: dict[str, Any], label: str, scope: dict[str, Any], tid: str) -> dict[str, Any]:
        body = render_value(task.get("body"), scope)
        headers = {str(k): _text(v) for k, v in (render_value(task.get("headers") or {}, scope)).items()}
        if body is not None and not isinstance(body, str):
            body = _json_text(body)
            headers.setdefault("content-type", "application/json")
        request = {"method": str(task.get("method", "GET")).upper(), "url": _string(render_value(task["url"], scope),
                                                                                    "url"),
                   "headers": headers, "body": body, "timeout": _timeout(task)}
        expected = task.get("expected_status")
        result = await self._step(label, task, _http_call, request, expected, task.get("response", "auto"))
        return {"status": COMPLETED, "result": result["body"], "status_code": result["status"]}

    async def _t_python(self, task: dict[str, Any], label: str, scope: dict[str, Any], tid: str) -> dict[str, Any]:
        fn = _function(task["function"])
        inputs = render_value(task.get("inputs"), scope)
        timeout = _timeout(task)
        if isinstance(inputs, dict):
            result = await self.run.step(label, fn, retry=_retry(task.get("retry")), timeout=timeout, **inputs)
        elif inputs is None:
            result = await self.run.step(label, fn, retry=_retry(task.get("retry")), timeout=timeout)
        else:
            result = await self.run.step(label, fn, inputs, retry=_retry(task.get("retry")), timeout=timeout)
        return {"status": COMPLETED, "result": result}

    async def _t_sleep(self, task: dict[str, Any], label: str, scope: dict[str, Any], tid: str) -> dict[str, Any]:
        duration = render_value(task["duration"], scope)
        await self.run.sleep(label, duration)
        return {"status": COMPLETED, "result": None}

    async def _t_wait_event(self, task: dict[str, Any], label: str, scope: dict[str, Any],
                            tid: str) -> dict[str, Any]:
        event = _string(render_value(task["event"], scope), "event")
        payload = await self.run.wait_for_event(label, type=event, timeout=_timeout(task))
        return {"status": COMPLETED, "result": payload}

    async def _t_input(self, task: dict[str, Any], label: str, scope: dict[str, Any], tid: str) -> dict[str, Any]:
        prompt = _text(render_value(task["prompt"], scope))
        answer = await self.run.ask(prompt, schema=task.get("schema"), name=label,
                                    timeout=_timeout(task))
        return {"status": COMPLETED, "result": answer}

    async def _t_conditional(self, task: dict[str, Any], label: str, scope: dict[str, Any],
                             tid: str) -> dict[str, Any]:
        condition = task["condition"]
        chosen = "then" if (condition if isinstance(condition, bool)
                            else parse_condition(condition).evaluate(scope)) else "else"
        body = task.get(chosen)
        if not isinstance(body, dict):
            return {"status": COMPLETED, "result": None, "branch": None}
        record = await self._nested(body, f"{label} › {_label(body, chosen)}", scope, body.get("id") or tid)
        return {**record, "branch": chosen}

    async def _t_parallel(self, task: dict[str, Any], label: str, scope: dict[str, Any], tid: str) -> dict[str, Any]:
        subtasks: list[dict[str, Any]] = task["tasks"]

        async def one(sub: dict[str, Any]) -> dict[str, Any]:
            return await self._nested(sub, _label(sub, sub["id"]), scope, sub["id"])

        records = await self.run.parallel(*[one(sub) for sub in subtasks])
        ok = [r["status"] != FAILED or sub.get("continue_on_failure") for r, sub in zip(records, subtasks,
                                                                                        strict=True)]
        success = any(ok) if task.get("wait_for", "all") == "any" else all(ok)
        result = {sub["id"]: r.get("result") for r, sub in zip(records, subtasks, strict=True)}
        if success:
            return {"status": COMPLETED, "result": result}
        failed = [sub["id"] for r, sub in zip(records, subtasks, strict=True) if r["status"] == FAILED]
        return {"status": FAILED, "result": result,
                "error": {"type": "TaskFailed", "message": f"failed: {', '.join(failed)}"}}

    async def _t_loop(self, task: dict[str, Any], label: str, scope: dict[str, Any], tid: str) -> dict[str, Any]:
        items = render_value(task["items"], scope)
        if isinstance(items, str):
            items = [part.strip() for part in items.split(",") if part.strip()]
        if not isinstance(items, list):
            raise TaskError(f"loop items must be a list, got {type(items).__name__}")
        var = task.get("item", "item")
        body: dict[str, Any] = task["then"]

        def scope_of(index: int, item: Any) -> dict[str, Any]:
            return {**scope, var: item, "item": item, "index": index}

        if task.get("parallel"):
            async def one(index: int, item: Any) -> dict[str, Any]:
                return await self._task(body, f"{label}: {_item_text(item)}", scope_of(index, item), tid)

            records = await self.run.parallel(*[one(i, item) for i, item in enumerate(items)])
        else:
            records = []
            for index, item in enumerate(items):
                if task.get("stop_on_failure") and records and records[-1]["status"] == FAILED:
                    records.append({"status": SKIPPED, "reason": "stop_on_failure"})
                    continue
                records.append(await self._task(body, f"{label}: {_item_text(item)}", scope_of(index, item), tid))
        failed = [_item_text(items[i]) for i, r in enumerate(records) if r["status"] == FAILED]
        result = [r.get("result") for r in records]
        record: dict[str, Any] = {"status": FAILED if failed else COMPLETED, "result": result,
                                  "items": [r["status"] for r in records]}
        if failed:
            record["error"] = {"type": "TaskFailed", "message": f"failed for: {', '.join(failed)}"}
        return record

    async def _t_workflow(self, task: dict[str, Any], label: str, scope: dict[str, Any], tid: str) -> dict[str, Any]:
        name = _string(render_value(task["workflow"], scope), "workflow")
        defn: WorkflowDef = self.registry.get(name)
        value = render_value(task.get("input"), scope)
        if graph_of(defn) is not None and self.overrides and (value is None or isinstance(value, dict)):
            value = {**(value or {}), ENV_KEY: self.overrides}  # a graph child sees this run's --env too

        async def inline() -> Any:
            _inline.set(True)  # this branch's own context: the child knows it is not the run's own graph
            if defn.takes_input and not (value is None and not defn.input_required):
                return await defn.fn(self.run, value)
            return await defn.fn(self.run)

        try:
            (output,) = await self.run.parallel(inline())  # its own key scope
        except Exception as exc:
            error = exc.error if isinstance(exc, StepFailed) else {"type": type(exc).__name__, "message": str(exc)}
            return {"status": FAILED, "error": error}
        return {"status": COMPLETED, "result": output}

    async def _t_database(self, task: dict[str, Any], label: str, scope: dict[str, Any], tid: str) -> dict[str, Any]:
        request: dict[str, Any] = {"connection": render_value(task.get("connection"), scope),
                                   "binding": render_value(task.get("binding"), scope) or "DB"}
        if "query" in task:
            request.update(op="query", sql=render_value(task["query"], scope),
                           params=render_value(task.get("params") or [], scope))
        elif "transaction" in task:
            statements = []
            for item in task["transaction"]:
                if isinstance(item, str):
                    statements.append({"sql": render_value(item, scope), "params": []})
                else:
                    statements.append({"sql": render_value(item.get("query", ""), scope),
                                       "params": render_value(item.get("params") or [], scope)})
            request.update(op="transaction", statements=statements)
        else:
            folder = str(task["migration"])
            request.update(op="migration", folder=folder, files=self.graph.files.get(folder))
        result = await self._step(label, task, _database_call, request, timeout=_timeout(task))
        return {"status": COMPLETED, "result": result}


def _refuse(message: str) -> None:
    """The step of a task that could not start: it fails with why (`_GraphRun._failed_before_its_step`)."""
    raise TaskError(message)


def _ids(tasks: Any) -> list[str]:
    """Every task id in ``tasks`` and the tasks nested in them, depth first, in definition order."""
    out: list[str] = []
    for task in tasks if isinstance(tasks, list) else []:
        if not isinstance(task, dict):
            continue
        if isinstance(task.get("id"), str):
            out.append(task["id"])
        out += _ids(task.get("tasks"))
        out += _ids([task[k] for k in ("then", "else", "on_failure") if isinstance(task.get(k), dict)])
    return out


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    return str(value) if isinstance(value, (int, float)) else _json_text(value)


def _json_text(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def _string(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise TaskError(f"{what} must be a non-empty string, got {value!r}")
    return value


def _local(kind: str) -> Callable[[dict[str, Any]], Any]:
    runner = current().local.get(kind)
    if runner is None:
        raise TaskError(f"{kind} tasks run only on the local runtime (this host: {current().host})")
    return runner


def _function(spec: str) -> Callable[..., Any]:
    module_name, _, attr = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise TaskError(f"python task: cannot import {module_name} ({type(exc).__name__}: {exc})") from None
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise TaskError(f"python task: {module_name} has no function {attr}")
    return fn  # type: ignore[no-any-return]


async def _http_call(request: dict[str, Any], expected: Any, mode: str) -> dict[str, Any]:
    port = current().http
    if port is None:
        raise TaskError(f"http tasks need an HTTP port, which this host ({current().host}) lacks")
    response = await port(request)
    status = int(response["status"])
    wanted = expected if isinstance(expected, list) else [expected] if expected is not None else None
    if (wanted is not None and status not in wanted) or (wanted is None and not 200 <= status < 300):
        detail = str(response.get("text", ""))[:200]
        raise FlareflowError(f"{request['method']} {request['url']} answered {status}"
                             + (f" (expected {', '.join(map(str, wanted))})" if wanted else "")
                             + (f": {detail}" if detail else ""))
    text = str(response.get("text", ""))
    body: Any = text
    ctype = str({k.lower(): v for k, v in (response.get("headers") or {}).items()}.get("content-type", ""))
    if mode == "json" or (mode == "auto" and "json" in ctype):
        try:
            body = json.loads(text) if text else None
        except ValueError:
            if mode == "json":
                raise FlareflowError(f"{request['url']} did not answer JSON: {text[:80]}") from None
    return {"status": status, "body": body}


async def _database_call(request: dict[str, Any]) -> Any:
    port = current().database
    if port is None:
        raise TaskError(f"database tasks need a database port, which this host ({current().host}) lacks")
    return await port(request)


def register_graph(registry: Registry, graph: Graph) -> WorkflowDef:
    """Register ``graph`` (already valid: `flareflow.graphs.validate.validate_graph`) as a workflow."""
    d = graph.definition

    async def graph_workflow(run: Run, input: Any = None) -> Any:
        return await _GraphRun(graph, registry, run, input).execute()

    graph_workflow.__qualname__ = f"graph:{graph.source}"
    graph_workflow.__module__ = "flareflow.graphs"
    trigger = d.get("trigger") or {}
    schedule = trigger.get("cron", trigger.get("schedule")) if trigger.get("type") == "schedule" else None
    metadata = {"source": graph.source, "graph": True, "tasks": [t["id"] for t in d["tasks"]]}
    if d.get("version"):
        metadata["version"] = d["version"]
    tz = trigger.get("timezone") if schedule is not None else None  # the zone the schedule is read in
    defn = registry.register(graph_workflow, d["name"], schedule=schedule, tz=tz,
                             description=d.get("description", ""), metadata=metadata)
    graph_workflow.__flareflow_graph__ = graph  # type: ignore[attr-defined]
    return defn


def graph_of(defn: WorkflowDef) -> Graph | None:
    """The graph a registered workflow was compiled from, or None for a Python workflow."""
    graph = getattr(defn.fn, "__flareflow_graph__", None)
    return graph if isinstance(graph, Graph) else None


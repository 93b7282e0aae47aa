"""Checking a task-graph definition: every problem as one located line, never an exception.

`validate_graph` walks a definition and answers a list of `GraphError` (``file:line path: message``):
unknown fields and task types (with a "did you mean"), missing required fields, wrong value types,
duplicate ids, ``depends_on`` naming an unknown task, cycles (printed ``build → tests → build``),
expressions that do not parse, and references to tasks that are not upstream of where they are used
(only a task that has finished before can be read). `cloudflare_errors` adds the local-only task types
a Cloudflare build refuses. Whatever JSON value it is given, the validator answers; it does not raise
(the fuzz tests hold it to that). Standard library only.
"""

from __future__ import annotations

import re
from typing import Any

from ..engine.durations import DurationError, parse_duration
from ..engine.errors import did_you_mean
from ..engine.schedules import ScheduleError, compile_schedule, utc_offset_minutes
from ..engine.schema import SchemaError, check_schema
from .expressions import ExpressionError, parse_condition, parse_template
from .model import (
    COMMON_FIELDS,
    GRAPH_FIELDS,
    REF_FIELDS,
    ROOTS,
    TASK_FIELDS,
    TRIGGER_TYPES,
    TYPE_REF_FIELDS,
    Graph,
    GraphError,
    child,
    is_local_only,
    kind_of,
    timeout_seconds,
)

__all__ = ["cloudflare_errors", "env_names", "find_cycle", "top_level_ids", "validate_graph"]

ID = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]*$")
FUNCTION = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*:[A-Za-z_][A-Za-z0-9_]*$")
BACKOFFS = ("constant", "linear", "exponential")
#: Fields whose strings are conditions (not templates).
CONDITION_FIELDS = ("when", "condition")
#: The trigger fields each trigger type uses (besides "type"); any other is refused, not ignored.
TRIGGER_FIELDS: dict[str, tuple[str, ...]] = {"manual": (), "schedule": ("cron", "schedule", "timezone"),
                                              "event": ("event",), "webhook": ()}
#: Fields holding nested task bodies (not interpolated as values).
NESTED = ("then", "else", "tasks", "on_failure")
_kind = kind_of


def top_level_ids(definition: Any) -> list[str]:
    tasks = definition.get("tasks") if isinstance(definition, dict) else None
    if not isinstance(tasks, list):
        return []
    return [t["id"] for t in tasks if isinstance(t, dict) and isinstance(t.get("id"), str)]


def find_cycle(deps: dict[str, list[str]]) -> list[str] | None:
    """A dependency cycle as ``[a, b, a]``, or None (the first found, in definition order)."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for dep in deps.get(node, []):
            if dep not in deps:
                continue
            if state.get(dep) == 1:
                return [*stack[stack.index(dep):], dep]
            if dep not in state and (found := visit(dep)) is not None:
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in deps:
        if node not in state and (found := visit(node)) is not None:
            return found
    return None


class _Checker:
    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self.errors: list[GraphError] = []
        self.ids: dict[str, str] = {}  # every task id -> its path
        self.bodies: dict[str, dict[str, Any]] = {}  # every task id -> the task (what its reference offers)
        self.inside: dict[str, set[str]] = {}  # top-level id -> itself and the ids nested in it
        self.deps: dict[str, list[str]] = {}
        self.ancestors: dict[str, set[str]] = {}
        self.top_ids: set[str] = set()

    def err(self, path: str, message: str) -> None:
        self.errors.append(GraphError(self.graph.where(path), path, message))

    # -- the whole definition --------------------------------------------------------------
    def run(self) -> list[GraphError]:
        d = self.graph.definition
        if not isinstance(d, dict):
            self.err("", f"a workflow definition is a JSON object, got {_kind(d)}")
            return self.errors
        for key in d:
            if key not in GRAPH_FIELDS:
                self.err(child("", str(key)), f"unknown field{did_you_mean(str(key), GRAPH_FIELDS)}")
        name = d.get("name")
        if name is None:
            self.err("", 'missing required field "name"')
        elif not isinstance(name, str) or not NAME.match(name):
            self.err("name", "the workflow name must be a string of letters, digits and . _ : - "
                     f"(starting with a letter or digit), got {_kind(name)}")
        for key in ("version", "description"):
            if key in d and not isinstance(d[key], str):
                self.err(key, f"must be a string, got {_kind(d[key])}")
        if "local_only" in d and not isinstance(d["local_only"], bool):
            self.err("local_only", f"must be true or false, got {_kind(d['local_only'])}")
        self.trigger(d.get("trigger"))
        if "inputs" in d:
            try:
                check_schema(d["inputs"])
            except SchemaError as exc:
                self.err("inputs", f"not a supported JSON schema: {exc}")
        env = d.get("env")
        if env is not None:
            if not isinstance(env, dict):
                self.err("env", f"must be an object of names to values, got {_kind(env)}")
            else:
                for key, value in env.items():
                    if not isinstance(value, (str, int, float, bool)):
                        self.err(child("env", str(key)), f"an env value is a string, number or boolean, "
                                 f"got {_kind(value)}")
        tasks = d.get("tasks")
        if tasks is None:
            self.err("", 'missing required field "tasks"')
            return self.errors
        if not isinstance(tasks, list) or not tasks:
            self.err("tasks", f"must be a non-empty list of tasks, got {_kind(tasks)}"
                     if not isinstance(tasks, list) else "must list at least one task")
            return self.errors
        self.top_ids = set(top_level_ids(d))
        self.collect_ids(tasks, "tasks")
        for index, task in enumerate(tasks):
            if isinstance(task, dict) and isinstance(task.get("id"), str):
                self.deps[task["id"]] = self.depends_on(task, child("tasks", index))
        cycle = find_cycle(self.deps)
        if cycle is not None:
            first = next(i for i, t in enumerate(tasks) if isinstance(t, dict) and t.get("id") == cycle[0])
            self.err(child(child("tasks", first), "depends_on"), "dependency cycle: " + " → ".join(cycle))
        acyclic = cycle is None
        for index, task in enumerate(tasks):
            tid = task.get("id") if isinstance(task, dict) else None
            # a task may read what ran before it: its upstream tasks and the tasks inside them (computed
            # when a reference asks, memoised: a long chain stays linear to check)
            allowed: Any = _Upstream(self, tid) if isinstance(tid, str) and acyclic else set()
            self.task(task, child("tasks", index), allowed, frozenset(), top=True)
        on_failure = d.get("on_failure")
        if on_failure is not None:
            if not isinstance(on_failure, list):
                self.err("on_failure", f"must be a list of tasks, got {_kind(on_failure)}")
            else:
                every = set(self.ids)
                for index, task in enumerate(on_failure):
                    self.task(task, child("on_failure", index), every, frozenset(), top=False)
        return self.errors

    def trigger(self, trigger: Any) -> None:
        if trigger is None:
            return
        if not isinstance(trigger, dict):
            self.err("trigger", f"must be an object such as {{\"type\": \"manual\"}}, got {_kind(trigger)}")
            return
        kind = trigger.get("type")
        if kind not in TRIGGER_TYPES:
            shown = f'"{kind}"' if isinstance(kind, str) else _kind(kind)
            hint = did_you_mean(kind, TRIGGER_TYPES) if isinstance(kind, str) else ""
            self.err("trigger.type", f"unknown trigger type {shown}{hint}; one of {', '.join(TRIGGER_TYPES)}")
        allowed = ("type", *dict.fromkeys(f for fields in TRIGGER_FIELDS.values() for f in fields))
        for key in trigger:
            if key not in allowed:
                hint = ' (did you mean "timezone"?)' if key == "tz" else did_you_mean(str(key), allowed)
                self.err(child("trigger", str(key)), f"unknown field{hint}")
            elif kind in TRIGGER_TYPES and key != "type" and key not in TRIGGER_FIELDS[kind]:
                # it would be silently ignored: a manual trigger's cron schedules nothing
                owner = next(t for t, fields in TRIGGER_FIELDS.items() if key in fields)
                self.err(child("trigger", key), f'a {kind} trigger does not use "{key}", it would be ignored '
                         f"({'an' if owner[0] in 'aeiou' else 'a'} {owner} trigger does: type: {owner})")
        if kind == "schedule" and "cron" in trigger and "schedule" in trigger:
            self.err(child("trigger", "schedule"), 'give "cron" or "schedule", not both (only one is used)')
        if kind == "schedule":
            key = "cron" if "cron" in trigger else "schedule"
            spec, zone = trigger.get(key), trigger.get("timezone")
            if not isinstance(spec, str) or not spec.strip():
                self.err("trigger", 'a schedule trigger needs "cron" (or "schedule"): a cron expression')
            elif zone is None or isinstance(zone, str):
                # what registering it would refuse, said here at its own line (not at the compiler's)
                try:
                    utc_offset_minutes(zone)
                except ScheduleError as exc:
                    self.err(child("trigger", "timezone"), str(exc))
                else:
                    try:
                        compile_schedule(spec, zone)
                    except ScheduleError as exc:
                        self.err(child("trigger", key), str(exc))
        for key in ("cron", "schedule", "event", "timezone"):
            if key in trigger and not isinstance(trigger[key], str):
                self.err(child("trigger", key), f"must be a string, got {_kind(trigger[key])}")

    # -- ids and dependencies --------------------------------------------------------------
    def collect_ids(self, tasks: list[Any], path: str) -> None:
        for index, task in enumerate(tasks):
            here = child(path, index)
            if not isinstance(task, dict):
                continue
            tid = task.get("id")
            if tid is None:
                self.err(here, 'missing required field "id"')
            elif not isinstance(tid, str) or not ID.match(tid):
                self.err(child(here, "id"), "a task id is a string of letters, digits, _ and - (starting with "
                         f"a letter or _), got {_kind(tid) if not isinstance(tid, str) else repr(tid)}")
            elif tid in self.ids:
                self.err(child(here, "id"), f'duplicate task id "{tid}" (also at {self.ids[tid]})')
            else:
                self.ids[tid] = here
                self.bodies[tid] = task
            before = set(self.ids)
            self.collect_nested_ids(task, here)
            if path == "tasks" and isinstance(tid, str):
                self.inside[tid] = {tid} | (set(self.ids) - before)

    def collect_nested_ids(self, task: dict[str, Any], here: str) -> None:
        """Ids inside a task: a parallel group's tasks need them; nested bodies may have them."""
        if task.get("type") == "parallel" and isinstance(task.get("tasks"), list):
            self.collect_ids(task["tasks"], child(here, "tasks"))
        for key in ("then", "else", "on_failure"):
            body = task.get(key)
            if isinstance(body, dict):
                nested_id = body.get("id")
                if isinstance(nested_id, str) and ID.match(nested_id):
                    if nested_id in self.ids:
                        self.err(child(child(here, key), "id"),
                                 f'duplicate task id "{nested_id}" (also at {self.ids[nested_id]})')
                    else:
                        self.ids[nested_id] = child(here, key)
                        self.bodies[nested_id] = body
                self.collect_nested_ids(body, child(here, key))

    def depends_on(self, task: dict[str, Any], here: str) -> list[str]:
        deps = task.get("depends_on")
        if deps is None:
            return []
        if isinstance(deps, str):
            deps = [deps]
        if not isinstance(deps, list):
            self.err(child(here, "depends_on"), f"must be a list of task ids, got {_kind(deps)}")
            return []
        top = self.top_ids
        out: list[str] = []
        for index, dep in enumerate(deps):
            at = child(child(here, "depends_on"), index)
            if not isinstance(dep, str):
                self.err(at, f"a task id is a string, got {_kind(dep)}")
            elif dep == task.get("id"):
                self.err(at, f'task "{dep}" depends on itself')
            elif dep not in top:
                nested = " (a nested task: depend on the task that holds it)" if dep in self.ids else ""
                self.err(at, f'unknown task "{dep}"{nested or did_you_mean(dep, top_level_ids(self.graph.definition))}')
            else:
                out.append(dep)
        return out

    def upstream(self, tid: str) -> set[str]:
        """Every task id ``tid`` may read: its dependencies, theirs, and the tasks nested in them."""
        known = self.ancestors.get(tid)
        if known is not None:
            return known
        order: list[str] = []
        todo = [tid]
        while todo:  # dependencies first, without recursion (a chain may be thousands long)
            node = todo.pop()
            if node in self.ancestors or node in order:
                continue
            order.append(node)
            todo.extend(dep for dep in self.deps.get(node, []) if dep not in self.ancestors)
        for node in reversed(order):
            result: set[str] = set()
            for dep in self.deps.get(node, []):
                result |= self.ancestors.get(dep, set())
                result |= self.inside.get(dep, {dep})
            self.ancestors[node] = result
        return self.ancestors[tid]

    # -- one task --------------------------------------------------------------------------
    def task(self, task: Any, here: str, upstream: set[str], loop_vars: frozenset[str], *, top: bool,
             nested_body: bool = False) -> None:
        if not isinstance(task, dict):
            self.err(here, f"a task is an object, got {_kind(task)}")
            return
        kind = task.get("type")
        if kind is None:
            self.err(here, 'missing required field "type"')
            return
        if not isinstance(kind, str) or kind not in TASK_FIELDS:
            shown = f'"{kind}"' if isinstance(kind, str) else _kind(kind)
            hint = did_you_mean(kind, list(TASK_FIELDS)) if isinstance(kind, str) else ""
            self.err(child(here, "type"), f"unknown task type {shown}{hint}")
            return
        required, optional = TASK_FIELDS[kind]
        allowed = (*COMMON_FIELDS, *required, *optional)
        for key in task:
            if key not in allowed:
                self.err(child(here, str(key)), f"unknown field for a {kind} task{did_you_mean(str(key), allowed)}")
        for key in required:
            if key not in task:
                self.err(here, f'missing required field "{key}" (a {kind} task needs it)')
        if not top and "depends_on" in task:
            self.err(child(here, "depends_on"), "only top-level tasks depend on others (nested tasks run "
                     "where their parent puts them)")
        for key in ("name", "description"):
            if key in task and not isinstance(task[key], str):
                self.err(child(here, key), f"must be a string, got {_kind(task[key])}")
        if "continue_on_failure" in task and not isinstance(task["continue_on_failure"], bool):
            self.err(child(here, "continue_on_failure"),
                     f"must be true or false, got {_kind(task['continue_on_failure'])}")
        self.retry(task.get("retry"), child(here, "retry"))
        self.timeout(task, kind, here)
        # expressions: conditions and every string value (nested bodies are checked as tasks)
        scope_vars = loop_vars
        for key in CONDITION_FIELDS:
            if key in task:
                self.condition(task[key], child(here, key), upstream, scope_vars)
        for key, value in task.items():
            if key in CONDITION_FIELDS or key in NESTED or key in ("id", "type", "depends_on"):
                continue
            if kind == "loop" and key == "item":
                continue
            self.templates(value, child(here, key), upstream, scope_vars)
        check = getattr(self, f"t_{kind}")
        check(task, here, upstream, scope_vars)
        if "on_failure" in task:
            self.task(task["on_failure"], child(here, "on_failure"), upstream | {task.get("id", "")},
                      scope_vars | {"error"},
                      top=False, nested_body=True)

    def retry(self, retry: Any, here: str) -> None:
        if retry is None:
            return
        if not isinstance(retry, dict):
            self.err(here, f"must be an object like {{\"attempts\": 3, \"delay\": 1000}}, got {_kind(retry)}")
            return
        fields = ("attempts", "delay", "backoff", "max_delay")
        for key in retry:
            if key not in fields:
                self.err(child(here, str(key)), f"unknown field{did_you_mean(str(key), fields)}")
        attempts = retry.get("attempts", 1)
        if isinstance(attempts, bool) or not isinstance(attempts, int):
            self.err(child(here, "attempts"), f"must be an integer >= 1, got {_kind(attempts)}")
        elif not 1 <= attempts <= 1000:
            self.err(child(here, "attempts"), f"must be between 1 and 1000, got {attempts}")
        for key in ("delay", "max_delay"):
            value = retry.get(key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0
                                      or value != value or value > 1e12):
                self.err(child(here, key), f"milliseconds, a number >= 0, got {_kind(value)}")
        backoff = retry.get("backoff")
        if backoff is not None and backoff not in BACKOFFS:
            hint = did_you_mean(backoff, BACKOFFS) if isinstance(backoff, str) else ""
            self.err(child(here, "backoff"), f"one of {', '.join(BACKOFFS)}{hint}")

    def timeout(self, task: dict[str, Any], kind: str, here: str) -> None:
        """A number in the type's unit (`timeout_seconds`), or a duration with its unit (``"10s"``); the
        compiler reads it with the same function, so what passes here runs."""
        if "timeout" not in task:
            return
        try:
            timeout_seconds(task["timeout"], kind)
        except ValueError as exc:
            self.err(child(here, "timeout"), str(exc))

    # -- expressions -----------------------------------------------------------------------
    def condition(self, text: Any, here: str, upstream: set[str], loop_vars: frozenset[str]) -> None:
        if isinstance(text, bool):
            return
        if not isinstance(text, str):
            self.err(here, f"a condition is a string (or true/false), got {_kind(text)}")
            return
        try:
            refs = parse_condition(text).refs()
        except ExpressionError as exc:
            self.err(here, f"invalid condition: {exc}")
            return
        self.references(refs, here, upstream, loop_vars)

    def templates(self, value: Any, here: str, upstream: set[str], loop_vars: frozenset[str]) -> None:
        if isinstance(value, str):
            if "${" not in value:
                return
            try:
                refs = parse_template(value).refs()
            except ExpressionError as exc:
                self.err(here, f"invalid expression: {exc}")
                return
            self.references(refs, here, upstream, loop_vars)
        elif isinstance(value, list):
            for index, item in enumerate(value):
                self.templates(item, child(here, index), upstream, loop_vars)
        elif isinstance(value, dict):
            for key, item in value.items():
                self.templates(item, child(here, str(key)), upstream, loop_vars)

    def references(self, refs: list[tuple[str | int, ...]], here: str, upstream: set[str],
                   loop_vars: frozenset[str]) -> None:
        for ref in refs:
            root = ref[0]
            shown = ".".join(str(p) for p in ref)
            if root in loop_vars:
                continue
            if root not in ROOTS:
                known = [*ROOTS, *sorted(loop_vars)]
                self.err(here, f'unknown reference "{shown}"{did_you_mean(str(root), known)}; references start with '
                         + ", ".join(known))
                continue
            if root == "tasks":
                if len(ref) < 2 or not isinstance(ref[1], str):
                    self.err(here, f'"{shown}": name a task, as in tasks.ID.result')
                    continue
                tid = ref[1]
                if tid not in self.ids:
                    self.err(here, f'unknown task "{tid}" in "{shown}"{did_you_mean(tid, list(self.ids))}')
                elif tid not in upstream:
                    holder = next((top for top, inner in self.inside.items()  # a nested task: its top-level one
                                   if top != tid and top in self.top_ids and tid in inner), tid)
                    self.err(here, f'"{shown}" reads task "{tid}", which is not upstream of this task '
                             f'(add "{holder}" to depends_on)')
                elif len(ref) > 2:
                    self.task_field(ref[2], tid, shown, here)
            elif root == "input" and len(ref) > 1 and isinstance(ref[1], str):
                declared = self.declared_inputs()
                if declared is not None and ref[1] not in declared:
                    listed = ", ".join(declared) if declared else "none"
                    self.err(here, f'unknown field "{ref[1]}" in "{shown}"{did_you_mean(ref[1], declared)}; '
                             f"the inputs declare {listed}")

    def task_field(self, field: str | int, tid: str, shown: str, here: str) -> None:
        """``${tasks.ID.FIELD}``: FIELD must be one the task's record has, or the value is always null (a
        typo such as ``exitcode`` would silently change what runs)."""
        offered = ref_fields(self.bodies.get(tid))
        if isinstance(field, str) and field in offered:
            return
        shown_field = f'"{field}"' if isinstance(field, str) else f"[{field}]"
        hint = did_you_mean(field, offered) if isinstance(field, str) else ""
        kind = self.bodies.get(tid, {}).get("type")
        self.err(here, f'unknown field {shown_field} in "{shown}"{hint}; a {kind} task gives '
                 + ", ".join(offered))

    def declared_inputs(self) -> list[str] | None:
        """The input's properties when the graph's ``inputs`` schema allows no others (``${input.X}`` for
        any other X would always be null); None when any name may come."""
        schema = self.graph.definition.get("inputs")
        if not isinstance(schema, dict) or schema.get("additionalProperties") is not False:
            return None
        props = schema.get("properties")
        return [str(k) for k in props] if isinstance(props, dict) else None

    # -- per type --------------------------------------------------------------------------
    def _string(self, task: dict[str, Any], key: str, here: str, *, required: bool = False) -> None:
        if key in task and not isinstance(task[key], str):
            self.err(child(here, key), f"must be a string, got {_kind(task[key])}")
        elif required and key in task and not task[key].strip():
            self.err(child(here, key), "must not be empty")

    def _str_map(self, task: dict[str, Any], key: str, here: str) -> None:
        value = task.get(key)
        if value is None:
            return
        if not isinstance(value, dict):
            self.err(child(here, key), f"must be an object of names to strings, got {_kind(value)}")
            return
        for name, item in value.items():
            if not isinstance(item, (str, int, float, bool)):
                self.err(child(child(here, key), str(name)), f"must be a string, got {_kind(item)}")

    def t_shell(self, task: dict[str, Any], here: str, upstream: set[str], loop_vars: frozenset[str]) -> None:
        self._string(task, "command", here, required=True)
        self._string(task, "cwd", here)
        self._str_map(task, "environment", here)
        if "live_output" in task and not isinstance(task["live_output"], bool):
            self.err(child(here, "live_output"), "must be true or false")

    def t_http(self, task: dict[str, Any], here: str, upstream: set[str], loop_vars: frozenset[str]) -> None:
        self._string(task, "url", here, required=True)
        method = task.get("method", "GET")
        if not isinstance(method, str) or method.upper() not in ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD",
                                                                 "OPTIONS"):
            self.err(child(here, "method"), "one of GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS")
        self._str_map(task, "headers", here)
        expected = task.get("expected_status")
        if expected is not None:
            codes = expected if isinstance(expected, list) else [expected]
            if not codes or not all(isinstance(c, int) and not isinstance(c, bool) and 100 <= c <= 599 for c in codes):
                self.err(child(here, "expected_status"), "an HTTP status (100-599) or a list of them")
        if task.get("response", "auto") not in ("auto", "json", "text"):
            self.err(child(here, "response"), "one of auto, json, text")

    def t_python(self, task: dict[str, Any], here: str, upstream: set[str], loop_vars: frozenset[str]) -> None:
        fn = task.get("function")
        if fn is not None and (not isinstance(fn, str) or not FUNCTION.match(fn)):
            self.err(child(here, "function"), 'a "module:function" of the project, such as "workflows.steps:build"')

    def t_sleep(self, task: dict[str, Any], here: str, upstream: set[str], loop_vars: frozenset[str]) -> None:
        self._duration(task.get("duration"), child(here, "duration"), required=True)

    def _duration(self, value: Any, here: str, *, required: bool = False) -> None:
        if value is None:
            return
        if isinstance(value, str) and "${" in value:
            return
        try:
            if isinstance(value, bool):
                raise DurationError("a duration is a number of seconds or a string like '5s'")
            parse_duration(value)
        except (DurationError, ValueError, TypeError) as exc:
            self.err(here, f"not a duration ({exc})")

    def t_wait_event(self, task: dict[str, Any], here: str, upstream: set[str], loop_vars: frozenset[str]) -> None:
        self._string(task, "event", here, required=True)

    def t_input(self, task: dict[str, Any], here: str, upstream: set[str], loop_vars: frozenset[str]) -> None:
        self._string(task, "prompt", here, required=True)
        if "schema" in task:
            try:
                check_schema(task["schema"])
            except SchemaError as exc:
                self.err(child(here, "schema"), f"not a supported JSON schema: {exc}")

    def t_conditional(self, task: dict[str, Any], here: str, upstream: set[str], loop_vars: frozenset[str]) -> None:
        for key in ("then", "else"):
            if key in task:
                self.task(task[key], child(here, key), upstream, loop_vars, top=False, nested_body=True)

    def t_parallel(self, task: dict[str, Any], here: str, upstream: set[str], loop_vars: frozenset[str]) -> None:
        if task.get("wait_for", "all") not in ("all", "any"):
            self.err(child(here, "wait_for"), "one of all, any")
        subtasks = task.get("tasks")
        if subtasks is None:
            return
        if not isinstance(subtasks, list) or not subtasks:
            self.err(child(here, "tasks"), "must be a non-empty list of tasks")
            return
        for index, sub in enumerate(subtasks):
            self.task(sub, child(child(here, "tasks"), index), upstream, loop_vars, top=False)

    def t_loop(self, task: dict[str, Any], here: str, upstream: set[str], loop_vars: frozenset[str]) -> None:
        items = task.get("items")
        if items is not None and not isinstance(items, (list, str)):
            self.err(child(here, "items"), f"a list, or an expression giving one, got {_kind(items)}")
        var = task.get("item", "item")
        if not isinstance(var, str) or not ID.match(var) or var in ROOTS:
            self.err(child(here, "item"), "the loop variable's name: letters, digits and _ (not "
                     + ", ".join(ROOTS) + ")")
            var = "item"
        for key in ("parallel", "stop_on_failure"):
            if key in task and not isinstance(task[key], bool):
                self.err(child(here, key), "must be true or false")
        if "then" in task:
            self.task(task["then"], child(here, "then"), upstream, loop_vars | {var, "item", "index"}, top=False,
                      nested_body=True)

    def t_workflow(self, task: dict[str, Any], here: str, upstream: set[str], loop_vars: frozenset[str]) -> None:
        self._string(task, "workflow", here, required=True)

    def t_database(self, task: dict[str, Any], here: str, upstream: set[str], loop_vars: frozenset[str]) -> None:
        given = [key for key in ("query", "migration", "transaction") if key in task]
        if len(given) != 1:
            self.err(here, 'a database task needs exactly one of "query", "migration" (a folder of .sql files) '
                     'or "transaction" (a list of statements)' + (f", got {', '.join(given)}" if given else ""))
        self._string(task, "query", here, required=True)
        self._string(task, "migration", here, required=True)
        self._string(task, "connection", here, required=True)
        self._string(task, "binding", here, required=True)
        if "transaction" in task:
            statements = task["transaction"]
            if not isinstance(statements, list) or not statements or not all(
                    isinstance(s, (str, dict)) for s in statements):
                self.err(child(here, "transaction"), "a non-empty list of SQL statements (strings, or "
                         '{"query", "params"} objects)')
        if "params" in task and not isinstance(task["params"], (list, str)):
            self.err(child(here, "params"), f"a list of values, got {_kind(task['params'])}")
        if "connection" in task and "binding" in task:
            self.err(here, 'give "connection" (a SQLite file, local only) or "binding" (a D1 binding), not both')

    def t_docker(self, task: dict[str, Any], here: str, upstream: set[str], loop_vars: frozenset[str]) -> None:
        if task.get("action", "run") not in ("build", "run"):
            self.err(child(here, "action"), "one of build, run")
        self._string(task, "image", here, required=True)
        for key in ("context", "dockerfile", "cwd"):
            self._string(task, key, here)
        command = task.get("command")
        if command is not None and not isinstance(command, (str, list)):
            self.err(child(here, "command"), "a string or a list of arguments")
        self._str_map(task, "environment", here)
        volumes = task.get("volumes")
        if volumes is not None and not (isinstance(volumes, list) and all(isinstance(v, str) for v in volumes)):
            self.err(child(here, "volumes"), 'a list of "HOST:CONTAINER" strings')

    def t_data_processor(self, task: dict[str, Any], here: str, upstream: set[str],
                         loop_vars: frozenset[str]) -> None:
        self._string(task, "input", here, required=True)
        self._string(task, "output", here, required=True)
        fn = task.get("processor")
        if fn is not None and (not isinstance(fn, str) or not FUNCTION.match(fn)):
            self.err(child(here, "processor"), 'a "module:function" of the project, such as "workflows.steps:clean"')


def ref_fields(task: Any) -> list[str]:
    """The fields ``${tasks.ID.FIELD}`` may read for ``task`` (`REF_FIELDS`, and its type's): a conditional's
    record is its chosen branch's, so it has the fields of either branch too."""
    if not isinstance(task, dict):
        return list(REF_FIELDS)
    kind = task.get("type")
    fields = [*REF_FIELDS, *(TYPE_REF_FIELDS.get(kind, ()) if isinstance(kind, str) else ())]
    if kind == "conditional":
        for key in ("then", "else"):
            fields += [f for f in ref_fields(task.get(key)) if f not in fields]
    return fields


class _Upstream:
    """The tasks a task may read, computed on the first ``in`` (most tasks never ask)."""

    def __init__(self, checker: _Checker, tid: str) -> None:
        self.checker = checker
        self.tid = tid

    def __contains__(self, other: object) -> bool:
        return other in self.checker.upstream(self.tid)

    def __or__(self, extra: set[str]) -> set[str]:
        return self.checker.upstream(self.tid) | extra


def env_names(definition: Any) -> set[str]:
    """Every ``X`` the definition reads as ``${env.X}`` (in any string, condition or template), and the names
    its ``env`` defaults give: what a run's ``--env`` may set. An expression that does not parse reads
    nothing (the validator reports it)."""
    names: set[str] = set()

    def walk(value: Any, condition: bool) -> None:
        if isinstance(value, str):
            if not condition and "${" not in value:
                return
            try:
                refs = parse_condition(value).refs() if condition else parse_template(value).refs()
            except ExpressionError:
                return
            names.update(str(ref[1]) for ref in refs if ref[0] == "env" and len(ref) > 1)
        elif isinstance(value, list):
            for item in value:
                walk(item, False)
        elif isinstance(value, dict):
            for key, item in value.items():
                walk(item, key in CONDITION_FIELDS and isinstance(item, str))

    if isinstance(definition, dict):
        walk(definition.get("tasks"), False)
        walk(definition.get("on_failure"), False)
        if isinstance(definition.get("env"), dict):
            names.update(str(k) for k in definition["env"])
    return names


def is_local_graph(graph: Graph) -> bool:
    """Whether the graph says ``"local_only": true``: it runs on the local runtime and is never built for Cloudflare."""
    return isinstance(graph.definition, dict) and graph.definition.get("local_only") is True


def validate_graph(graph: Graph) -> list[GraphError]:
    """Every problem of ``graph``, in definition order (empty: it is valid). Never raises."""
    try:
        return _Checker(graph).run()
    except RecursionError:
        return [GraphError(graph.source, "", "the definition is nested too deeply")]


def _walk_local(task: Any, here: str, owner: str | None, out: list[tuple[str, str | None, dict[str, Any]]]) -> None:
    if not isinstance(task, dict):
        return
    if isinstance(task.get("id"), str):
        owner = task["id"]
    if is_local_only(task):
        out.append((here, owner, task))
    for key in ("then", "else", "on_failure"):
        if isinstance(task.get(key), dict):
            _walk_local(task[key], child(here, key), owner, out)
    if isinstance(task.get("tasks"), list):
        for index, sub in enumerate(task["tasks"]):
            _walk_local(sub, child(child(here, "tasks"), index), owner, out)


#: Said once after the errors `cloudflare_errors` found, by ``flareflow validate`` and the build.
LOCAL_ONLY_HINT = ('a graph meant for this machine only can say "local_only": true (the Cloudflare build leaves '
                   "it out); flareflow validate --local checks the project for the local runtime alone")


def cloudflare_errors(graph: Graph) -> list[GraphError]:
    """One error per task a Cloudflare Worker cannot run (`is_local_only`), naming the task; none for a graph
    marked ``"local_only": true``, which the build leaves out of the Worker."""
    found: list[tuple[str, str | None, dict[str, Any]]] = []
    d = graph.definition
    if is_local_graph(graph):
        return []
    for key in ("tasks", "on_failure"):
        tasks = d.get(key) if isinstance(d, dict) else None
        if isinstance(tasks, list):
            for index, task in enumerate(tasks):
                _walk_local(task, child(key, index), None, found)
    errors = []
    for here, owner, task in found:
        if isinstance(task.get("id"), str):
            label = f'task "{task["id"]}"'
        else:
            label = f'the {here.rsplit(".", 1)[-1]} of task "{owner}"' if owner else "this task"
        kind = task.get("type")
        why = ('has a "connection" (a local SQLite file); on Cloudflare use "binding" (a D1 binding)'
               if kind == "database" else f"is a {kind} task, which runs only on the local runtime")
        errors.append(GraphError(graph.where(here), here, f"{label} {why}: it cannot be built for Cloudflare"))
    return errors

"""DAG semantics as specs, through ``flareflow run --json``: parallelism, failure propagation,
``continue_on_failure``, ``when``, ``wait_for: any``, loops with ``stop_on_failure``, conditions on
``exit_code``, interpolation keeping JSON types, and the task id on every step event."""

from __future__ import annotations

import json
import time
from datetime import datetime
from pathlib import Path

from tests.cli.helpers import describe, ff

from .helpers import failure_of, graph, make_project, output_of, run_json


def sh(tid: str, command: str, **extra: object) -> dict[str, object]:
    return {"id": tid, "type": "shell", "command": command, **extra}


def test_independent_tasks_run_at_once_and_dependents_wait(tmp_path: Path) -> None:
    root = make_project(tmp_path, {"workflows/par.json": graph(
        "par",
        sh("a", "sleep 0.6; date +%s.%N"), sh("b", "sleep 0.6; date +%s.%N"), sh("c", "sleep 0.6; date +%s.%N"),
        sh("last", "date +%s.%N", depends_on=["a", "b", "c"]))})
    started = time.monotonic()
    result, events = run_json(root, "par")
    elapsed = time.monotonic() - started
    out = output_of(events)
    assert result.returncode == 0, describe(result)
    ends = [float(out["tasks"][t]["result"]) for t in ("a", "b", "c")]
    assert float(out["tasks"]["last"]["result"]) >= max(ends)
    assert max(ends) - min(ends) < 0.5, ends  # the three sleeps overlapped
    assert elapsed < 1.6 + 3.0  # three in a row would be 1.8 s of sleeping alone (plus process start)
    steps = [e for e in events if e["type"] == "step.completed"]
    assert {e["task"] for e in steps} == {"a", "b", "c", "last"}
    assert all(e["name"] == e["task"] for e in steps)  # a task without a name shows its id


def test_a_failure_skips_its_dependents_and_fails_the_run_naming_them(tmp_path: Path) -> None:
    root = make_project(tmp_path, {"workflows/fail.json": graph(
        "fail",
        sh("build", "echo compiling; exit 3"), sh("other", "echo independent"),
        sh("tests", "echo never", depends_on=["build"]), sh("deploy", "echo never", depends_on=["tests"]))})
    result, events = run_json(root, "fail")
    assert result.returncode == 1
    message = failure_of(events)
    assert message.startswith("1 task(s) failed: build (exit code 3)"), message
    assert message.endswith("skipped: tests, deploy"), message
    ran = {e["task"] for e in events if e["type"] == "step.completed"}
    assert ran == {"other"}
    failed = [e for e in events if e["type"] == "step.failed"]
    assert [e["task"] for e in failed] == ["build"]
    assert "exited with code 3" in failed[0]["error"]["message"]
    assert any(entry["text"] == "compiling" for entry in failed[0]["logs"])  # its output, captured


def test_continue_on_failure_lets_dependents_run_and_the_run_complete(tmp_path: Path) -> None:
    root = make_project(tmp_path, {"workflows/tolerant.json": graph(
        "tolerant",
        sh("lint", "exit 1", continue_on_failure=True),
        sh("report", "echo lint=${tasks.lint.status} code=${tasks.lint.exit_code}", depends_on=["lint"]))})
    result, events = run_json(root, "tolerant")
    out = output_of(events)
    assert out["failed"] == ["lint"] and out["tasks"]["report"]["result"] == "lint=failed code=1"
    assert result.returncode == 0


def test_when_false_skips_a_task_but_not_its_dependents(tmp_path: Path) -> None:
    root = make_project(tmp_path, {"workflows/when.yaml": """\
name: when
env: {MODE: fast}
tasks:
  - {id: slow, type: shell, command: echo slow, when: "${env.MODE} == 'slow'"}
  - {id: fast, type: shell, command: echo fast, when: "env.MODE in ['fast', 'faster'] && !(env.MODE == 'slow')"}
  - {id: after, type: shell, command: "echo ${tasks.slow.status}/${tasks.fast.status}", depends_on: [slow, fast]}
"""})
    _, events = run_json(root, "when")
    out = output_of(events)
    assert out["skipped"] == ["slow"]
    assert out["tasks"]["after"]["result"] == "skipped/completed"
    _, events = run_json(root, "when", "--env", "MODE=slow")  # --env overrides the graph's default
    assert output_of(events)["tasks"]["after"]["result"] == "completed/skipped"


def test_parallel_wait_for_any_succeeds_when_one_branch_does(tmp_path: Path) -> None:
    group = {"id": "mirrors", "type": "parallel", "wait_for": "any",
             "tasks": [sh("m1", "exit 7"), sh("m2", "echo got it"), sh("m3", "exit 9")]}
    root = make_project(tmp_path, {
        "workflows/any.json": graph("any", group, sh("use", "echo ${tasks.m2.result}", depends_on=["mirrors"])),
        "workflows/all.json": graph("all", {**group, "id": "g", "wait_for": "all"},
                                    sh("use", "echo never", depends_on=["g"]))})
    result, events = run_json(root, "any")
    out = output_of(events)
    assert out["tasks"]["mirrors"]["status"] == "completed"
    assert out["tasks"]["use"]["result"] == "got it"
    assert sorted(out["failed"]) == ["m1", "m3"]
    result, events = run_json(root, "all")
    assert result.returncode == 1
    assert "g:" in failure_of(events) and "skipped: use" in failure_of(events)


def test_a_sequential_loop_stops_on_failure_and_a_parallel_one_runs_every_item(tmp_path: Path) -> None:
    body = sh("deploy-one", "test ${target} != bad && echo deployed ${target}")
    root = make_project(tmp_path, {
        "workflows/stop.json": graph("stop", {"id": "envs", "type": "loop", "items": ["a", "bad", "c"],
                                              "item": "target", "stop_on_failure": True, "then": body}),
        "workflows/all-items.json": graph("all-items", {"id": "envs", "type": "loop", "items": "${input.targets}",
                                                        "item": "target", "parallel": True, "then": body})})
    result, events = run_json(root, "stop")
    assert result.returncode == 1
    names = [e["name"] for e in events if e["type"] in ("step.completed", "step.failed")]
    assert names == ["envs: a", "envs: bad"]  # c never ran
    assert "failed for: bad" in failure_of(events)
    result, events = run_json(root, "all-items", "--input", '{"targets": ["x", "bad", "y"]}')
    names = sorted(e["name"] for e in events if e["type"] in ("step.completed", "step.failed"))
    assert names == ["envs: bad", "envs: x", "envs: y"]


def test_conditions_on_exit_codes_choose_a_branch(tmp_path: Path) -> None:
    root = make_project(tmp_path, {"workflows/cond.yaml": """\
name: cond
tasks:
  - {id: probe, type: shell, command: "exit 0"}
  - id: decide
    type: conditional
    depends_on: [probe]
    condition: "${tasks.probe.exit_code} == 0 && ${env.DEPLOY_ENABLED} == 'true'"
    then: {type: shell, command: "echo deploying"}
    else: {type: shell, command: "echo 'Deployment skipped'"}
"""})
    _, events = run_json(root, "cond")
    assert output_of(events)["tasks"]["decide"]["result"] == "Deployment skipped"
    _, events = run_json(root, "cond", "--env", "DEPLOY_ENABLED=true")
    decide = output_of(events)["tasks"]["decide"]
    assert decide["result"] == "deploying" and decide["branch"] == "then"


def test_whole_value_expressions_keep_json_types(tmp_path: Path) -> None:
    (tmp_path / "steps.py").write_text(
        "def describe(value, count, flag):\n"
        "    return {'type': type(value).__name__, 'count': count + 1, 'flag': flag}\n")
    root = make_project(tmp_path, {"workflows/types.json": graph(
        "types",
        {"id": "shape", "type": "python", "function": "steps:describe",
         "inputs": {"value": "${input.items}", "count": "${input.n}", "flag": "${input.n > 2}"}},
        {"id": "text", "type": "python", "function": "steps:describe", "depends_on": ["shape"],
         "inputs": {"value": "n=${input.n} ${tasks.shape.result.type}", "count": "${tasks.shape.result.count}",
                    "flag": "${tasks.shape.result.flag}"}},
    )})
    _, events = run_json(root, "types", "--input", '{"items": [1, 2], "n": 3}')
    out = output_of(events)
    assert out["tasks"]["shape"]["result"] == {"type": "list", "count": 4, "flag": True}
    assert out["tasks"]["text"]["result"] == {"type": "str", "count": 5, "flag": True}


def test_inputs_are_validated_against_the_graphs_schema(tmp_path: Path) -> None:
    root = make_project(tmp_path, {"workflows/typed.json": graph(
        "typed", {"id": "hi", "type": "shell", "command": "echo hi ${input.user}"},
        inputs={"type": "object", "required": ["user"], "properties": {"user": {"type": "string"}}})})
    result, events = run_json(root, "typed", "--input", '{"user": 5}')
    assert result.returncode == 1 and "user" in failure_of(events)
    _, events = run_json(root, "typed", "-i", "user=ada")
    assert output_of(events)["tasks"]["hi"]["result"] == "hi ada"


def test_retry_attempts_and_delay_in_milliseconds(tmp_path: Path) -> None:
    counter = tmp_path / "count"
    root = make_project(tmp_path, {"workflows/flaky.json": graph(
        "flaky", sh("flaky", f"echo x >> {counter}; test $(wc -l < {counter}) -ge 3",
                    retry={"attempts": 3, "delay": 100}))})
    _, events = run_json(root, "flaky")
    retrying = [e for e in events if e["type"] == "step.retrying"]
    assert [e["delay"] for e in retrying] == [0.1, 0.1]  # constant backoff unless told otherwise
    assert output_of(events)["tasks"]["flaky"]["status"] == "completed"


def test_a_tasks_on_failure_runs_with_its_error_and_another_graph_runs_as_a_task(tmp_path: Path) -> None:
    root = make_project(tmp_path, {
        "workflows/child.yaml": "name: child\ninputs: {type: object, properties: {n: {type: integer}}}\n"
                                "tasks:\n  - {id: twice, type: shell,\n"
                                "     command: 'echo $(( ${input.n} * ${env.FACTOR} ))'}\n",
        "workflows/parent.json": graph(
            "parent",
            {"id": "sub", "type": "workflow", "workflow": "child", "input": {"n": "${input.n}"}},
            sh("use", "echo child said ${tasks.sub.result.tasks.twice.result}", depends_on=["sub"]),
            sh("boom", "echo oops >&2; exit 4", continue_on_failure=True,
               on_failure={"type": "shell", "command": "echo handled: ${error.message}"}))})
    _, events = run_json(root, "parent", "--input", '{"n": 21}', "--env", "FACTOR=2")  # the child sees --env
    out = output_of(events)
    assert out["tasks"]["use"]["result"] == "child said 42"
    shown = ff("runs", "show", events[0]["run_id"], "--json", cwd=root)
    assert json.loads(shown.stdout)["state"] == {"tasks": {"sub": "completed", "use": "completed",
                                                           "boom": "failed"}}  # the child's are its own
    handled = [e for e in events if e["type"] == "step.completed" and e["name"] == "boom › on failure"]
    assert handled and handled[0]["result"]["stdout"] == "handled: command exited with code 4: oops\n"
    assert out["failed"] == ["boom"]


def test_in_and_indexes_in_conditions(tmp_path: Path) -> None:
    root = make_project(tmp_path, {"workflows/lists.yaml": """\
name: lists
tasks:
  - {id: pick, type: python, function: "json:loads", inputs: {s: '["red", "green"]'}}
  - id: has
    type: shell
    depends_on: [pick]
    when: "'green' in tasks.pick.result && !('blue' in ${tasks.pick.result}) && tasks.pick.result[0] == 'red'"
    command: echo ${tasks.pick.result}
"""})
    _, events = run_json(root, "lists")
    assert output_of(events)["tasks"]["has"]["result"] == "[red,green]"  # the JSON text, as the shell reads it


def test_shell_output_streams_live_as_step_output_events_and_is_captured(tmp_path: Path) -> None:
    root = make_project(tmp_path, {"workflows/live.json": graph(
        "live", sh("slow", "for i in 1 2 3; do echo line $i; sleep 0.4; done; echo done >&2"),
        sh("quiet", "echo hidden", live_output=False))})
    _, events = run_json(root, "live")
    outputs = [e for e in events if e["type"] == "step.output"]
    completed = next(e for e in events if e["type"] == "step.completed" and e["task"] == "slow")
    assert {e["task"] for e in outputs} == {"slow"}  # live_output: false streams nothing
    streamed = [line for e in outputs for line in e["lines"]]
    assert [(line["stream"], line["text"]) for line in streamed] == [
        ("stdout", "line 1"), ("stdout", "line 2"), ("stdout", "line 3"), ("stderr", "done")]
    assert streamed == completed["logs"]  # captured as well: the step's logs hold the same lines
    first = datetime.fromisoformat(outputs[0]["at"].replace("Z", "+00:00"))
    end = datetime.fromisoformat(completed["at"].replace("Z", "+00:00"))
    assert (end - first).total_seconds() > 0.5  # the first line went out while the command still ran
    assert events.index(outputs[-1]) < events.index(completed)

"""Validation with located errors: ``flareflow validate`` lists every problem of every graph file, one
line each (``file:line path: message``), and exits non-zero; the Cloudflare build refuses local-only
tasks by name; a name clash with a Python workflow names both files."""

from __future__ import annotations

import ast
import json
from pathlib import Path

from flareflow.graphs.validate import LOCAL_ONLY_HINT
from tests.cli.helpers import assert_no_traceback, describe, ff

from .helpers import make_project, output_of, run_json

BROKEN = """\
name: ci-cd
tasks:
  - id: build
    type: shell
    command: npm run build
  - id: tests
    type: shell
    command: npm test
    depends_on: [build]
  - id: lint
    type: shel
  - id: deploy
    type: shell
    command: echo ${tasks.lint.result
    depends_on: [bild]
  - id: a
    type: sleep
    duration: 1s
    depends_on: [b]
  - id: b
    type: http
    depends_on: [a]
  - id: tests
    type: workflow
    workflow: other
    comand: x
  - id: late
    type: shell
    command: echo ${tasks.deploy.result} ${nope.x}
"""


def test_validate_lists_every_error_located_with_file_and_line(tmp_path: Path) -> None:
    root = make_project(tmp_path, {"workflows/ci-cd.yaml": BROKEN})
    result = ff("validate", "--local", cwd=root)
    assert result.returncode == 1, describe(result)
    assert_no_traceback(result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    expected = [
        'error: workflows/ci-cd.yaml:23 tasks[6].id: duplicate task id "tests" (also at tasks[1])',
        'error: workflows/ci-cd.yaml:15 tasks[3].depends_on[0]: unknown task "bild" (did you mean "build"?)',
        "error: workflows/ci-cd.yaml:19 tasks[4].depends_on: dependency cycle: a → b → a",
        'error: workflows/ci-cd.yaml:11 tasks[2].type: unknown task type "shel" (did you mean "shell"?)',
        "error: workflows/ci-cd.yaml:14 tasks[3].command: invalid expression: unclosed ${ at column 6",
        'error: workflows/ci-cd.yaml:20 tasks[5]: missing required field "url" (a http task needs it)',
        "error: workflows/ci-cd.yaml:26 tasks[6].comand: unknown field for a workflow task",
        'error: workflows/ci-cd.yaml:29 tasks[7].command: "tasks.deploy.result" reads task "deploy", which is not '
        'upstream of this task (add "deploy" to depends_on)',
        'error: workflows/ci-cd.yaml:29 tasks[7].command: unknown reference "nope.x"; references start with env, '
        "input, tasks, trigger, run",
    ]
    for line in expected:
        assert line in lines, f"{line!r} not in:\n{result.stderr}"
    assert len(lines) == len(expected), result.stderr


def test_a_cloudflare_check_names_each_local_only_task(tmp_path: Path) -> None:
    root = make_project(tmp_path, {"workflows/ops.json": {"name": "ops", "tasks": [
        {"id": "build", "type": "shell", "command": "make"},
        {"id": "db", "type": "database", "connection": "data/app.db", "query": "SELECT 1"},
        {"id": "ok", "type": "database", "binding": "INDEX", "query": "SELECT 1"},
        {"id": "each", "type": "loop", "items": [1], "then": {"type": "docker", "image": "alpine"}}]}})
    assert ff("validate", "--local", cwd=root).returncode == 0
    result = ff("validate", cwd=root)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        'error: workflows/ops.json:4 tasks[0]: task "build" is a shell task, which runs only on the local runtime: '
        "it cannot be built for Cloudflare",
        'error: workflows/ops.json:9 tasks[1]: task "db" has a "connection" (a local SQLite file); on Cloudflare use '
        '"binding" (a D1 binding): it cannot be built for Cloudflare',
        'error: workflows/ops.json:27 tasks[3].then: the then of task "each" is a docker task, which runs only on '
        "the local runtime: it cannot be built for Cloudflare",
        f"hint: {LOCAL_ONLY_HINT}",
    ], result.stderr
    build = ff("build", cwd=root)
    assert build.returncode == 1
    assert build.stderr.startswith('error: workflows/ops.json:4 tasks[0]: task "build" is a shell task'), build.stderr
    assert "(and 2 more; see: flareflow validate)" in build.stderr and '"local_only": true' in build.stderr
    assert not (root / ".flareflow" / "build" / "src").exists()


def test_a_local_only_graph_validates_and_stays_out_of_the_cloudflare_build(tmp_path: Path) -> None:
    """A CI graph of shell tasks beside a deployable one: marked "local_only", it validates as it is, the build
    succeeds and ships only the other graph, and it still runs on the local runtime."""
    root = make_project(tmp_path, {
        "workflows/ops.json": {"name": "ops", "local_only": True,
                               "tasks": [{"id": "build", "type": "shell", "command": "echo built"}]},
        "workflows/nap.json": {"name": "nap", "tasks": [{"id": "nap", "type": "sleep", "duration": "10ms"}]}})
    checked = ff("validate", cwd=root)
    assert checked.returncode == 0, describe(checked)
    assert checked.stdout.strip().endswith("2 workflow(s): nap, ops"), checked.stdout
    built = ff("build", cwd=root)
    assert built.returncode == 0, describe(built)
    shipped = (root / ".flareflow" / "build" / "src" / "flareflow_graphs.py").read_text(encoding="utf-8")
    literal = next(node.value for node in ast.walk(ast.parse(shipped))
                   if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.startswith("["))
    assert [graph["definition"]["name"] for graph in json.loads(literal)] == ["nap"]
    entry = (root / ".flareflow" / "build" / "src" / "entry.py").read_text(encoding="utf-8")
    assert "'nap': {" in entry and "'ops'" not in entry  # the Worker's manifest lists what it has
    assert "built 1 workflow(s)" in built.stdout, built.stdout
    _, events = run_json(root, "ops")
    assert output_of(events)["tasks"]["build"]["result"] == "built"
    wrong = make_project(tmp_path / "wrong", {"workflows/ops.json": {"name": "ops", "local_only": "yes",
                                                                        "tasks": []}})
    refused = ff("validate", cwd=wrong)
    assert refused.returncode == 1 and "local_only: must be true or false, got a string" in refused.stderr


def test_a_graph_named_like_a_python_workflow_is_an_error_naming_both(tmp_path: Path) -> None:
    root = make_project(tmp_path, {
        "workflows/hello.py": "from flareflow import workflow\n\n\n@workflow('hello')\nasync def hello(run):\n"
                              "    return 1\n",
        "workflows/hello.yaml": "name: hello\ntasks: [{id: a, type: sleep, duration: 1}]\n"})
    result = ff("workflows", cwd=root)
    assert result.returncode == 1
    assert "two workflows are named 'hello'" in result.stderr
    assert "workflows/hello.py:4" in result.stderr and "workflows/hello.yaml" in result.stderr
    assert_no_traceback(result.stderr)


def test_a_broken_file_is_one_located_line(tmp_path: Path) -> None:
    root = make_project(tmp_path, {"workflows/bad.yaml": "name: x\ntasks:\n  - id: a\n   type: [\n",
                                   "workflows/bad2.json": '{"name": "y", "tasks": [}'})
    result = ff("validate", cwd=root)
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert lines[0].startswith("error: workflows/bad.yaml:4: not valid YAML"), result.stderr
    assert lines[1].startswith("error: workflows/bad2.json:1: not valid JSON"), result.stderr
    run = ff("run", "x", cwd=root)  # the project's first broken graph stops commands that need the registry
    assert run.returncode == 1 and "workflows/bad.yaml:4" in run.stderr


def test_a_workflow_task_naming_no_workflow_is_a_located_error(tmp_path: Path) -> None:
    root = make_project(tmp_path, {
        "workflows/ci-cd.yaml": "name: ci-cd\ntasks: [{id: a, type: sleep, duration: 0}]\n",
        "workflows/release.yaml": "name: release\ntasks:\n  - id: b\n    type: conditional\n    condition: 'true'\n"
                                  "    then: {type: workflow, workflow: ci-cdd}\n"})
    result = ff("validate", "--local", cwd=root)
    assert result.returncode == 1
    assert result.stderr.strip() == ('error: workflows/release.yaml:6 tasks[0].then.workflow: unknown workflow '
                                     '"ci-cdd" (did you mean "ci-cd"?)'), result.stderr


def test_validate_checks_graph_files_alone_even_outside_a_project(tmp_path: Path) -> None:
    """``flareflow validate FILE...`` checks scratch files (what ``run FILE`` runs) without a project: one
    located line per error, a ✓ line per good file, exit 1 when any is wrong, 2 for a missing file."""
    (tmp_path / "bad.yaml").write_text("name: once\nlocal_only: true\ntasks:\n  - id: a\n    type: shell\n"
                                       "    command: echo hi\n  - id: b\n    type: sleep\n    duration: 1s\n"
                                       "    depends_on: [x]\n")
    (tmp_path / "ok.yaml").write_text("name: ok\ntasks:\n  - {id: a, type: sleep, duration: 1s}\n")
    both = ff("validate", "bad.yaml", "ok.yaml", cwd=tmp_path)
    assert both.returncode == 1, describe(both)
    assert both.stderr.splitlines() == ['error: bad.yaml:10 tasks[1].depends_on[0]: unknown task "x"'], both.stderr
    assert both.stdout.strip() == "✓ ok.yaml: workflow ok, 1 task(s)", both.stdout
    good = ff("validate", "ok.yaml", cwd=tmp_path)
    assert good.returncode == 0, describe(good)
    missing = ff("validate", "nope.yaml", cwd=tmp_path)
    assert missing.returncode == 2 and "nope.yaml: no such file" in missing.stderr, describe(missing)


def test_a_yaml_alias_bomb_is_one_error_line_not_exhausted_memory(tmp_path: Path) -> None:
    """Nine nested aliases of nine items expand to 43 million values ("billion laughs"): the file is refused
    with one line in well under the time a walk of it would take (it was a MemoryError traceback)."""
    levels = ['a: &a ["x","x","x","x","x","x","x","x","x"]']
    for prev, name in zip("abcdefg", "bcdefgh", strict=True):
        levels.append(f"{name}: &{name} [{', '.join([f'*{prev}'] * 9)}]")
    text = "name: bomb\n" + "\n".join(levels) + "\ntasks: [{id: t, type: sleep, duration: 1s, env: *h}]\n"
    root = make_project(tmp_path, {"workflows/bomb.yaml": text})
    for args in (("validate",), ("validate", "workflows/bomb.yaml"), ("run", "bomb")):
        result = ff(*args, cwd=root, timeout=60)
        assert result.returncode != 0, describe(result)
        assert "bomb.yaml: the definition holds more than 100,000 values (YAML aliases expanded)" in result.stderr
        assert_no_traceback(result.stdout, result.stderr)

"""What ``flareflow validate`` says of a reference that reads nothing, as one located line with a
did-you-mean: a field a task reference does not have (``${tasks.tests.exitcode}`` for ``exit_code``;
what is under ``result`` stays free), and ``${input.X}`` that the graph's ``inputs`` do not allow."""

from __future__ import annotations

from pathlib import Path

from tests.cli.helpers import assert_no_traceback, describe, ff

REFS = """\
name: refs
inputs:
  type: object
  additionalProperties: false
  properties:
    name: {type: string}
tasks:
  - id: tests
    type: shell
    command: npm test
  - id: a
    type: http
    url: https://example.com
  - id: pick
    type: conditional
    condition: "true"
    then: {type: shell, command: "echo yes"}
  - id: report
    type: shell
    depends_on: [tests, a, pick]
    command: echo ${tasks.tests.exitcode} ${tasks.a.reslt} ${input.nme}
    when: tasks.a.status_code == 200 && tasks.pick.branch == 'then' && tasks.pick.exit_code == 0
  - id: fine
    type: shell
    depends_on: [tests, a]
    command: "echo ${tasks.a.result.items[0].anything} ${tasks.tests.stderr} ${tasks.a.error.message} ${input.name}"
"""


def test_an_unknown_field_of_a_task_reference_or_an_input_is_a_located_error(tmp_path: Path) -> None:
    (tmp_path / "refs.yaml").write_text(REFS, encoding="utf-8")
    result = ff("validate", "--local", "refs.yaml", cwd=tmp_path)
    assert result.returncode == 1, describe(result)
    assert_no_traceback(result.stdout, result.stderr)
    assert result.stderr.splitlines() == [
        'error: refs.yaml:21 tasks[3].command: unknown field "exitcode" in "tasks.tests.exitcode" (did you mean '
        '"exit_code"?); a shell task gives status, result, error, reason, message, exit_code, stdout, stderr, '
        "duration_s",
        'error: refs.yaml:21 tasks[3].command: unknown field "reslt" in "tasks.a.reslt" (did you mean "result"?); '
        "a http task gives status, result, error, reason, message, status_code",
        'error: refs.yaml:21 tasks[3].command: unknown field "nme" in "input.nme" (did you mean "name"?); the inputs '
        "declare name",
    ], result.stderr


def test_inputs_that_allow_other_properties_leave_input_references_free(tmp_path: Path) -> None:
    """Without ``additionalProperties: false`` a run may pass any property, so ``${input.other}`` can be meant."""
    (tmp_path / "open.yaml").write_text(
        "name: open\ninputs: {type: object, properties: {name: {type: string}}}\n"
        "tasks:\n  - {id: a, type: shell, command: 'echo ${input.other}'}\n", encoding="utf-8")
    result = ff("validate", "--local", "open.yaml", cwd=tmp_path)
    assert result.returncode == 0, describe(result)

"""The expression language: templates keep JSON types when whole, conditions evaluate without eval, and
what does not parse says where."""

from __future__ import annotations

import pytest

from flareflow.graphs.expressions import ExpressionError, parse_condition, parse_template, render_value

SCOPE = {"env": {"DEPLOY": "true", "N": "3"}, "input": {"items": [1, 2], "user": {"name": "ada"}},
         "tasks": {"build": {"status": "completed", "exit_code": 0, "result": {"files": ["a", "b"]}}},
         "target": "staging"}


@pytest.mark.parametrize(("text", "value"), [
    ("${input.items}", [1, 2]),
    ("${tasks.build.exit_code}", 0),
    ("${input.user}", {"name": "ada"}),
    ("n=${input.items}", "n=[1,2]"),
    ("${tasks.build.result.files[1]}", "b"),
    ("${tasks.build.result.files.0}", "a"),
    ("deploy --env ${target}", "deploy --env staging"),
    ("${nothing.here}", None),
    ("[${nothing.here}]", "[]"),
    ("$${env.DEPLOY}", "${env.DEPLOY}"),
    ("${env.N > 2}", True),
    ("${'a' in ['a', 'b']}", True),
])
def test_templates(text: str, value: object) -> None:
    assert parse_template(text).render(SCOPE) == value


@pytest.mark.parametrize(("text", "expected"), [
    ("${env.DEPLOY} == 'true' && ${tasks.build.exit_code} == 0", True),
    ("env.DEPLOY == 'true' && !(tasks.build.status != 'completed')", True),
    ("env.N == 3 && env.N >= 2.5 && env.N < 10", True),  # a numeric string compares as a number
    ("'b' in tasks.build.result.files || false", True),
    ("'z' not in tasks.build.result.files", True),
    ("'ad' in input.user.name", True),
    ("'name' in input.user", True),
    ("tasks.missing.status == null", True),
    ("true && false || !true", False),
    ("${env.DEPLOY}", True),
    ("'false'", False),
    ("\"it's\" == 'it\\'s'", True),
])
def test_conditions(text: str, expected: bool) -> None:
    assert parse_condition(text).evaluate(SCOPE) is expected


@pytest.mark.parametrize(("text", "message"), [
    ("a ==", "expected a value at column 5, found the end of the expression"),
    ("(a == 1", "expected ')' at column 8, found the end"),
    ("a = 1", "unexpected character '=' at column 3"),
    ("a == 1 b", "unexpected 'b' at column 8"),
    ("a.", "expected a field name after '.' at column 3"),
])
def test_what_does_not_parse_says_where(text: str, message: str) -> None:
    with pytest.raises(ExpressionError) as caught:
        parse_condition(text)
    assert str(caught.value) == message


def test_template_errors_and_ordering_errors() -> None:
    with pytest.raises(ExpressionError, match=r"unclosed \$\{ at column 3"):
        parse_template("x ${a.b")
    with pytest.raises(ExpressionError, match="empty"):
        parse_template("${ }")
    with pytest.raises(ExpressionError, match="cannot order"):
        parse_condition("input.items > 1").evaluate(SCOPE)
    assert render_value({"k": ["${target}", 1]}, SCOPE) == {"k": ["staging", 1]}
    assert sorted(map(str, parse_condition("tasks.a.result && env.X in input.items").refs())) == [
        "('env', 'X')", "('input', 'items')", "('tasks', 'a', 'result')"]

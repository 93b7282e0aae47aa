"""Property-based fuzzing of definitions: whatever it is given, the validator answers -- it never raises --
and either accepts a definition (which then registers) or names a located problem; random text parses
or is one located error; conditions and templates parse or raise `ExpressionError`, never anything else."""

from __future__ import annotations

import json
import re
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flareflow.engine.registry import Registry
from flareflow.graphs.compiler import register_graph
from flareflow.graphs.expressions import ExpressionError, parse_condition, parse_template
from flareflow.graphs.files import GraphFileError, load_graph_text
from flareflow.graphs.model import COMMON_FIELDS, TASK_FIELDS, Graph
from flareflow.graphs.validate import cloudflare_errors, validate_graph

SOURCE = "fuzz.yaml"
LOCATED = re.compile(r"^fuzz\.yaml(:\d+)?( \S.*)?: .+")

scalars = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.floats(allow_nan=True),
                    st.sampled_from(["", "build", "${tasks.a.result}", "${env.X} == 'y'", "${", "}", "a:b",
                                     "1s", "${input.x.y[0]}", "${tasks.nope}", "!(", "staging"]))
json_values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)), max_leaves=12)
field_names = st.sampled_from(sorted({*COMMON_FIELDS, *(f for req, opt in TASK_FIELDS.values() for f in (*req, *opt)),
                                      "comand", "dependson"}))
ids = st.sampled_from(["a", "b", "c", "build", "bad id", ""])
tasks = st.fixed_dictionaries(
    {"id": ids, "type": st.sampled_from([*TASK_FIELDS, "shel", 3])},
    optional={"depends_on": st.lists(ids, max_size=3)}).flatmap(
    lambda base: st.dictionaries(field_names, json_values, max_size=4).map(lambda extra: {**extra, **base}))
definitions = st.one_of(
    json_values,
    st.fixed_dictionaries({"name": st.sampled_from(["ci", "", "bad name", 5]),
                           "tasks": st.one_of(st.lists(tasks, max_size=5), json_values)},
                          optional={"env": json_values, "inputs": json_values, "trigger": json_values,
                                    "on_failure": st.lists(tasks, max_size=2), "extra": json_values}))


def _check(definition: Any) -> None:
    graph = Graph(definition, SOURCE, {"": 1})  # not always a dict: the validator must say so
    errors = validate_graph(graph)
    assert isinstance(errors, list)
    for error in errors:
        assert LOCATED.match(str(error)), str(error)
    if not errors:
        cloudflare_errors(graph)
        register_graph(Registry(), graph)  # a valid definition compiles and registers


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(definitions)
def test_the_validator_answers_every_definition_with_located_errors(definition: Any) -> None:
    _check(definition)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=80))
def test_random_text_is_a_definition_or_one_located_error(text: str) -> None:
    for yaml_syntax in (True, False):
        try:
            graph = load_graph_text(text, SOURCE, yaml_syntax=yaml_syntax)
        except GraphFileError as exc:
            assert LOCATED.match(str(exc)), str(exc)
            continue
        _check(graph.definition)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="${}()[]!&|=<>'\". abtxin0123,-_", max_size=30))
def test_expressions_parse_or_say_why(text: str) -> None:
    for parse in (parse_condition, parse_template):
        try:
            parsed = parse(text)
        except ExpressionError:
            continue
        try:
            parsed.refs()
            value = parsed.evaluate({}) if hasattr(parsed, "evaluate") else parsed.render({})  # type: ignore[union-attr]
            json.dumps(value)
        except ExpressionError:
            pass

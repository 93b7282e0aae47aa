"""Validating human answers against a small JSON-schema subset."""

from __future__ import annotations

from typing import Any

import pytest

from flareflow.engine.schema import SchemaError, check_schema, validate

PERSON: dict[str, Any] = {
    "title": "Person",
    "type": "object",
    "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 10},
        "age": {"type": "integer", "minimum": 0, "maximum": 150},
        "role": {"enum": ["admin", "user"]},
        "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 2},
        "first name": {"type": "string"},
    },
    "required": ["name", "age"],
    "additionalProperties": False,
}


def error(value: Any, schema: dict[str, Any] | None) -> SchemaError:
    with pytest.raises(SchemaError) as info:
        validate(value, schema)
    return info.value


def test_valid_answer_passes() -> None:
    validate({"name": "Ada", "age": 36, "role": "admin", "tags": ["x"]}, PERSON)


def test_none_schema_accepts_anything() -> None:
    validate(object(), None)


@pytest.mark.parametrize(
    ("value", "path", "message"),
    [
        ({"name": "Ada", "age": "36"}, "$.age", "$.age: expected integer, got string"),
        ({"name": "Ada", "age": True}, "$.age", "$.age: expected integer, got boolean"),
        ({"name": "Ada", "age": 3.5}, "$.age", "$.age: expected integer, got number"),
        ({"name": "Ada", "age": -1}, "$.age", "$.age: must be >= 0, got -1"),
        ({"name": "Ada", "age": 200}, "$.age", "$.age: must be <= 150, got 200"),
        ({"age": 1}, "$.name", "$.name: required property is missing"),
        ({"name": "", "age": 1}, "$.name", "$.name: must be at least 1 character long, got 0"),
        ({"name": "x" * 11, "age": 1}, "$.name", "$.name: must be at most 10 characters long, got 11"),
        (
            {"name": "A", "age": 1, "role": "root"},
            "$.role",
            '$.role: expected one of "admin", "user", got "root"',
        ),
        ({"name": "A", "age": 1, "tags": ["a", 2]}, "$.tags[1]", "$.tags[1]: expected string, got integer"),
        (
            {"name": "A", "age": 1, "tags": ["a", "b", "c"]},
            "$.tags",
            "$.tags: must have at most 2 items, got 3",
        ),
        ({"name": "A", "age": 1, "extra": 1}, "$.extra", "$.extra: unexpected property"),
        (
            {"name": "A", "age": 1, "first name": 1},
            '$["first name"]',
            '$["first name"]: expected string, got integer',
        ),
        ([1], "$", "$: expected object, got array"),
    ],
)
def test_first_problem_is_reported_with_path(value: Any, path: str, message: str) -> None:
    err = error(value, PERSON)
    assert err.path == path
    assert str(err) == message


@pytest.mark.parametrize(
    ("value", "type_", "ok"),
    [
        ("s", "string", True),
        (1, "number", True),
        (1.5, "number", True),
        (True, "number", False),
        (3.0, "integer", True),
        (3, "integer", True),
        (False, "integer", False),
        (True, "boolean", True),
        (0, "boolean", False),
        ({}, "object", True),
        ([], "array", True),
        (None, "null", True),
        (0, "null", False),
        (None, ["string", "null"], True),
        (1, ["string", "null"], False),
        (float("nan"), "number", False),
    ],
)
def test_types(value: Any, type_: str | list[str], ok: bool) -> None:
    schema = {"type": type_}
    if ok:
        validate(value, schema)
    else:
        error(value, schema)


def test_type_list_message() -> None:
    assert str(error(1, {"type": ["string", "null"]})) == "$: expected string or null, got integer"


def test_const_and_enum_do_not_confuse_true_with_1() -> None:
    assert str(error(1, {"const": True})) == "$: expected true, got 1"
    error(True, {"enum": [1, 2]})
    validate(1.0, {"enum": [1, 2]})
    validate({"a": [1]}, {"const": {"a": [1]}})


def test_min_items_and_min_length_wording() -> None:
    assert str(error([], {"minItems": 1})) == "$: must have at least 1 item, got 0"
    assert str(error("a", {"minLength": 2})) == "$: must be at least 2 characters long, got 1"


def test_keywords_only_constrain_their_own_type() -> None:
    validate("abc", {"minimum": 10})
    validate(5, {"minLength": 10})


def test_nested_paths() -> None:
    schema = {"type": "array", "items": {"type": "object", "properties": {"n": {"type": "integer"}}}}
    err = error([{"n": 1}, {"n": "x"}], schema)
    assert err.path == "$[1].n"


def test_schema_error_is_value_error() -> None:
    assert issubclass(SchemaError, ValueError)


# --- check_schema ---


def test_good_schema_passes() -> None:
    check_schema(PERSON)
    check_schema({"description": "anything", "default": 1, "examples": [1]})


@pytest.mark.parametrize(
    ("schema", "path", "message"),
    [
        ([], "#", "schema must be an object, got array"),
        ({"type": "int"}, "#/type", 'unknown type "int": expected one of string, number, integer'),
        ({"type": ["string", "float"]}, "#/type", 'unknown type "float"'),
        ({"type": []}, "#/type", "type list must not be empty"),
        ({"required": "name"}, "#/required", "required must be an array of strings"),
        ({"required": [1]}, "#/required", "required must be an array of strings"),
        ({"requried": ["a"]}, "#", 'unsupported schema keyword "requried"'),
        ({"pattern": "^a"}, "#", 'unsupported schema keyword "pattern"'),
        ({"properties": {"a": {"type": "nope"}}}, "#/properties/a/type", "unknown type"),
        ({"properties": []}, "#/properties", "properties must be an object"),
        ({"items": {"minItems": -1}}, "#/items/minItems", "minItems must be a non-negative integer"),
        ({"additionalProperties": {}}, "#/additionalProperties", "must be true or false"),
        ({"minimum": "1"}, "#/minimum", "minimum must be a number"),
        ({"maxLength": 1.5}, "#/maxLength", "maxLength must be a non-negative integer"),
        ({"enum": []}, "#/enum", "enum must be a non-empty array"),
        ({"minimum": 5, "maximum": 1}, "#", "minimum is greater than maximum"),
    ],
)
def test_malformed_schema(schema: Any, path: str, message: str) -> None:
    with pytest.raises(SchemaError) as info:
        check_schema(schema)
    assert info.value.path == path
    assert message in str(info.value)


def test_validate_reports_malformed_schema_before_judging_value() -> None:
    err = error(1, {"type": "int"})
    assert err.path == "#/type"

"""A small JSON-schema subset for validating answers given by humans.

Steps that wait for a person (approvals, forms) declare the shape of the
answer they expect.  Full JSON Schema is far more than we need and pulling in
a dependency is not an option (standard library only, Pyodide), so this
module supports just the keywords that make sense for form-like answers.

Errors carry a ``path`` so a UI can point at the offending field:
``$.age`` for a value inside the answer, ``#/properties/age`` for a place
inside a malformed schema (the two roots keep "your answer is wrong" and
"the workflow author's schema is wrong" apart).  Only the first problem is
reported; answers are small and a person fixes one thing at a time.
"""

from __future__ import annotations

import json
import math
from typing import Any

__all__ = ["SchemaError", "check_schema", "validate"]

TYPE_NAMES = ("string", "number", "integer", "boolean", "object", "array", "null")

_ANNOTATIONS = frozenset({"title", "description", "default", "examples"})
_KEYWORDS = frozenset(
    {
        "type",
        "enum",
        "const",
        "properties",
        "required",
        "additionalProperties",
        "items",
        "minimum",
        "maximum",
        "minLength",
        "maxLength",
        "minItems",
        "maxItems",
    }
)


class SchemaError(ValueError):
    """A value does not match its schema, or a schema is malformed."""

    def __init__(self, path: str, problem: str) -> None:
        self.path = path
        self.problem = problem
        super().__init__(f"{path}: {problem}")


# --------------------------------------------------------------------------
# helpers


def _show(value: Any) -> str:
    """Render a value the way the person typed it (JSON), not as Python repr."""
    try:
        text = json.dumps(value, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _type_of(value: Any) -> str:
    """The JSON type name used in messages ("got string")."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number" if math.isfinite(value) else "non-finite number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    return type(value).__name__


def _is_number(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, float):
        return math.isfinite(value)
    return isinstance(value, int)


def _has_type(value: Any, name: str) -> bool:
    if name == "integer":
        # 3.0 counts: JSON does not distinguish 3 from 3.0, and answers that
        # went through a JavaScript front end often arrive as floats.
        return _is_number(value) and float(value).is_integer()
    if name == "number":
        return _is_number(value)
    if name == "string":
        return isinstance(value, str)
    if name == "boolean":
        return isinstance(value, bool)
    if name == "object":
        return isinstance(value, dict)
    if name == "array":
        return isinstance(value, list)
    return value is None  # "null"


def _equal(a: Any, b: Any) -> bool:
    """Equality for enum/const where ``True`` is not ``1``."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(map(_equal, a, b))
    if _is_number(a):
        return _is_number(b) and a == b
    return type(a) is type(b) and a == b


def _child(path: str, key: str) -> str:
    if key.isidentifier():
        return f"{path}.{key}"
    return f"{path}[{json.dumps(key, ensure_ascii=False)}]"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


# --------------------------------------------------------------------------
# check_schema


def check_schema(schema: Any) -> None:
    """Raise :class:`SchemaError` if ``schema`` uses anything we do not support.

    Unknown keywords are errors rather than ignored, because a misspelt
    ``"requried"`` would otherwise silently accept every answer.
    """
    _check(schema, "#")


def _check(schema: Any, path: str) -> None:
    if not isinstance(schema, dict):
        raise SchemaError(path, f"schema must be an object, got {_type_of(schema)}")
    for key in schema:
        if key not in _KEYWORDS and key not in _ANNOTATIONS:
            raise SchemaError(path, f"unsupported schema keyword {_show(key)}")

    if "type" in schema:
        _check_type(schema["type"], f"{path}/type")
    if "enum" in schema and (not isinstance(schema["enum"], list) or not schema["enum"]):
        raise SchemaError(f"{path}/enum", "enum must be a non-empty array")
    if "properties" in schema:
        props = schema["properties"]
        if not isinstance(props, dict):
            raise SchemaError(f"{path}/properties", "properties must be an object")
        for name, sub in props.items():
            _check(sub, f"{path}/properties/{_escape(name)}")
    if "required" in schema:
        req = schema["required"]
        if not isinstance(req, list) or not all(isinstance(r, str) for r in req):
            raise SchemaError(f"{path}/required", "required must be an array of strings")
    if "additionalProperties" in schema and not isinstance(schema["additionalProperties"], bool):
        raise SchemaError(f"{path}/additionalProperties", "additionalProperties must be true or false")
    if "items" in schema:
        _check(schema["items"], f"{path}/items")
    for key in ("minimum", "maximum"):
        if key in schema and not _is_number(schema[key]):
            raise SchemaError(f"{path}/{key}", f"{key} must be a number")
    for key in ("minLength", "maxLength", "minItems", "maxItems"):
        if key in schema:
            limit = schema[key]
            if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
                raise SchemaError(f"{path}/{key}", f"{key} must be a non-negative integer")
    for low, high in (("minimum", "maximum"), ("minLength", "maxLength"), ("minItems", "maxItems")):
        if low in schema and high in schema and schema[low] > schema[high]:
            raise SchemaError(path, f"{low} is greater than {high}, so nothing can match")


def _check_type(spec: Any, path: str) -> None:
    names = spec if isinstance(spec, list) else [spec]
    if not names:
        raise SchemaError(path, "type list must not be empty")
    for name in names:
        if name not in TYPE_NAMES:
            raise SchemaError(path, f"unknown type {_show(name)}: expected one of {', '.join(TYPE_NAMES)}")


def _escape(token: str) -> str:
    return str(token).replace("~", "~0").replace("/", "~1")


# --------------------------------------------------------------------------
# validate


def validate(value: Any, schema: dict[str, Any] | None) -> None:
    """Raise :class:`SchemaError` for the first way ``value`` breaks ``schema``.

    ``None`` means "no schema": anything is accepted.  The schema is checked
    first so that a broken schema is reported as such (with a ``#`` path)
    instead of surfacing as a confusing complaint about the answer.
    """
    if schema is None:
        return
    check_schema(schema)
    _validate(value, schema, "$")


def _validate(value: Any, schema: dict[str, Any], path: str) -> None:
    if "type" in schema:
        spec = schema["type"]
        names = spec if isinstance(spec, list) else [spec]
        if not any(_has_type(value, n) for n in names):
            raise SchemaError(path, f"expected {' or '.join(names)}, got {_type_of(value)}")

    if "const" in schema and not _equal(value, schema["const"]):
        raise SchemaError(path, f"expected {_show(schema['const'])}, got {_show(value)}")
    if "enum" in schema and not any(_equal(value, option) for option in schema["enum"]):
        options = ", ".join(_show(option) for option in schema["enum"])
        raise SchemaError(path, f"expected one of {options}, got {_show(value)}")

    # As in JSON Schema, the remaining keywords only constrain values of the
    # type they talk about: "minimum" says nothing about a string.
    if _is_number(value):
        if "minimum" in schema and value < schema["minimum"]:
            raise SchemaError(path, f"must be >= {_show(schema['minimum'])}, got {_show(value)}")
        if "maximum" in schema and value > schema["maximum"]:
            raise SchemaError(path, f"must be <= {_show(schema['maximum'])}, got {_show(value)}")
    elif isinstance(value, str):
        if "minLength" in schema and len(value) < schema["minLength"]:
            need = _plural(schema["minLength"], "character")
            raise SchemaError(path, f"must be at least {need} long, got {len(value)}")
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            need = _plural(schema["maxLength"], "character")
            raise SchemaError(path, f"must be at most {need} long, got {len(value)}")
    elif isinstance(value, list):
        if "minItems" in schema and len(value) < schema["minItems"]:
            need = _plural(schema["minItems"], "item")
            raise SchemaError(path, f"must have at least {need}, got {len(value)}")
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            need = _plural(schema["maxItems"], "item")
            raise SchemaError(path, f"must have at most {need}, got {len(value)}")
        if "items" in schema:
            for index, item in enumerate(value):
                _validate(item, schema["items"], f"{path}[{index}]")
    elif isinstance(value, dict):
        _validate_object(value, schema, path)


def _validate_object(value: dict[str, Any], schema: dict[str, Any], path: str) -> None:
    props: dict[str, Any] = schema.get("properties", {})
    for name in schema.get("required", []):
        if name not in value:
            raise SchemaError(_child(path, name), "required property is missing")
    if schema.get("additionalProperties") is False:
        for name in value:
            if name not in props:
                raise SchemaError(_child(path, str(name)), "unexpected property")
    for name, sub in props.items():
        if name in value:
            _validate(value[name], sub, _child(path, name))

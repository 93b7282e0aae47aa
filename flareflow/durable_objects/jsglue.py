"""Pyodide FFI glue both Cloudflare shells share (the Durable Object and the Worker entrypoint).

Imported only inside a Worker (it needs ``js`` and ``pyodide``). Values cross the boundary as the
raw JS APIs expect them: ``None`` as JS ``null`` (not ``undefined``), ``bool`` as an integer for SQL,
dicts as plain JS objects; JS ``null`` and proxies come back as Python values.
"""

from __future__ import annotations

import json
from typing import Any

import js
from pyodide.ffi import to_js
from workers import Response

try:
    from pyodide.ffi import jsnull
except ImportError:  # pragma: no cover - older Pyodide
    jsnull = None

JSON_HEADERS = {"content-type": "application/json"}


def js_param(value: Any) -> Any:
    """A Python value as a SQL / D1 parameter: None becomes JS null, a bool an integer."""
    if value is None:
        return jsnull
    if isinstance(value, bool):
        return int(value)
    return value


def py_value(value: Any) -> Any:
    """A scalar from JS (a SQL column): null is None, anything else as it came."""
    return None if value is jsnull else value


def to_python(value: Any) -> Any:
    """A value from JS as Python: null is None, a proxy (object, array) is converted."""
    if value is jsnull:
        return None
    if hasattr(value, "to_py"):
        return value.to_py()
    return value


def js_object(value: dict[str, Any]) -> Any:
    """A dict as a plain JS object (not a Map)."""
    return to_js(value, dict_converter=js.Object.fromEntries)


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Any:
    """A compact JSON `Response`; a ``bytes`` body (the console's UTF-8 files) goes as its text, with
    the content type its ``headers`` name."""
    if isinstance(body, bytes):
        return Response(body.decode("utf-8"), status=status, headers=headers or {})
    return Response(json.dumps(body, separators=(",", ":")), status=status,
                    headers={**JSON_HEADERS, **(headers or {})})


__all__ = ["JSON_HEADERS", "js_object", "js_param", "jsnull", "json_response", "py_value", "to_python"]

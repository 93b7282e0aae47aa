"""JSON as the API reads it from clients, once for every host: bounded depth, valid Unicode.

`loads_bounded` refuses documents nested so deep that ``json.loads`` / ``json.dumps`` would hit the
recursion limit; `lone_surrogate_field` finds text that is valid JSON but not valid Unicode (a lone
``\\uD800``-``\\uDFFF`` escape), which could be neither stored nor served back. The router uses them
for request bodies, `flareflow.engine.sockets` for WebSocket frames.
"""

from __future__ import annotations

import json
import re
from typing import Any

MAX_JSON_DEPTH = 256  # deeper bodies would overflow Python's recursion limit in json.loads / json.dumps


def too_deep(value: dict[str, Any] | list[Any], limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether a parsed JSON container nests deeper than ``limit`` (iterative: no recursion of its own)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        children = item.values() if isinstance(item, dict) else item
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


#: A ``\\uD800``-``\\uDFFF`` escape in JSON text: the only way a lone surrogate gets into a parsed value
#: (the bytes themselves must be valid UTF-8). An escaped backslash before ``uD8..`` matches too; it
#: only costs a walk of the parsed value.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_SURROGATE_ESCAPE_BYTES = re.compile(rb"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def lone_surrogate(value: Any, path: str) -> str | None:
    """Where (``input.a[0]``) the first string or key in ``value`` holds a lone surrogate, else None.
    Iterative, like `too_deep`."""
    stack: list[tuple[Any, str]] = [(value, path)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item):
                return where
        elif isinstance(item, dict):
            for key, child in item.items():
                if _SURROGATE.search(key):
                    return f"{where} (a key)"
                stack.append((child, f"{where}.{key}"))
        elif isinstance(item, list):
            stack.extend((child, f"{where}[{i}]") for i, child in enumerate(item))
    return None


def lone_surrogate_field(fields: dict[str, Any], raw: str | bytes, what: str = "body") -> tuple[str, str] | None:
    """``(field, message)`` for the top-level field whose value (or key) holds a lone surrogate, else
    None. Free for ordinary requests: the parsed value is only walked when ``raw`` has a surrogate
    escape at all."""
    found = (_SURROGATE_ESCAPE.search(raw) if isinstance(raw, str) else _SURROGATE_ESCAPE_BYTES.search(raw))
    if found is None:
        return None
    for name, value in fields.items():
        if _SURROGATE.search(name):
            return what, (f"a field name of the {what} holds a lone surrogate (\\uD800-\\uDFFF); "
                          "text must be valid Unicode")
        where = lone_surrogate(value, name)
        if where is not None:
            return name, (f"'{name}' holds a lone surrogate (\\uD800-\\uDFFF) at {where[:60]}; "
                          "text must be valid Unicode")
    return None


def loads_bounded(text: str | bytes) -> Any:
    """``json.loads`` that raises ValueError (not RecursionError) for absurdly nested documents."""
    try:
        value = json.loads(text)
    except RecursionError:
        raise ValueError(f"nested deeper than {MAX_JSON_DEPTH} levels") from None
    if isinstance(value, (dict, list)) and too_deep(value):
        raise ValueError(f"nested deeper than {MAX_JSON_DEPTH} levels")
    return value

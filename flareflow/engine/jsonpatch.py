"""RFC 6902 JSON Patch over plain JSON values.

Run state (step outputs, human answers) is stored as successive versions of a
JSON document.  Storing a patch between versions instead of every full copy
keeps history small, and a standard format means any client can replay it.
Only plain JSON values are handled (dict with str keys, list, str, int,
float, bool, None); that is what the store round-trips anyway.

Two Python pitfalls are handled on purpose:

* ``1 == True`` and ``0 == False`` in Python but not in JSON, so equality
  here is type-aware (see :func:`_equal`).
* :func:`apply` never mutates its input: callers keep the old version around
  and must be able to trust it.
"""

from __future__ import annotations

import copy
from typing import Any, TypeAlias

__all__ = ["JSON", "PatchError", "apply", "diff", "escape", "unescape"]

JSON: TypeAlias = dict[str, "JSON"] | list["JSON"] | str | int | float | bool | None


class PatchError(ValueError):
    """Raised when a patch is malformed or cannot be applied to a document."""


# --------------------------------------------------------------------------
# RFC 6901 pointers


def escape(token: str) -> str:
    """Escape one reference token: ``~`` -> ``~0`` then ``/`` -> ``~1``."""
    return token.replace("~", "~0").replace("/", "~1")


def unescape(token: str) -> str:
    """Undo :func:`escape`; the order matters so ``~01`` decodes to ``~1``."""
    return token.replace("~1", "/").replace("~0", "~")


def _pointer(tokens: list[str]) -> str:
    return "".join("/" + escape(t) for t in tokens)


def _split(path: object) -> list[str]:
    if not isinstance(path, str):
        raise PatchError(f"path must be a string, got {type(path).__name__}")
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchError(f"invalid JSON pointer {path!r}: must be empty or start with '/'")
    tokens = path[1:].split("/")
    for token in tokens:
        stripped = token.replace("~0", "").replace("~1", "")
        if "~" in stripped:
            raise PatchError(f"invalid JSON pointer {path!r}: bad escape in {token!r}")
    return [unescape(t) for t in tokens]


# --------------------------------------------------------------------------
# Type-aware equality


def _equal(a: Any, b: Any) -> bool:
    """JSON equality: like ``==`` but ``True`` is not ``1`` and ``1.0`` is ``1``."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return (
            isinstance(b, list) and len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b, strict=True))
        )
    if isinstance(a, (int, float)):
        return isinstance(b, (int, float)) and a == b
    return type(a) is type(b) and a == b


# --------------------------------------------------------------------------
# diff


def diff(old: JSON, new: JSON) -> list[dict[str, Any]]:
    """Return a patch that turns ``old`` into ``new`` (``[]`` if equal).

    Dict keys are visited in sorted order and list tails are removed from
    the end backwards, so the same inputs always give the same patch and
    every index in it is valid at the moment its operation runs.
    """
    ops: list[dict[str, Any]] = []
    _diff(old, new, [], ops)
    return ops


def _diff(old: Any, new: Any, path: list[str], ops: list[dict[str, Any]]) -> None:
    if _equal(old, new):
        return
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(old.keys() | new.keys()):
            sub = [*path, key]
            if key not in new:
                ops.append({"op": "remove", "path": _pointer(sub)})
            elif key not in old:
                ops.append({"op": "add", "path": _pointer(sub), "value": copy.deepcopy(new[key])})
            else:
                _diff(old[key], new[key], sub, ops)
        return
    if isinstance(old, list) and isinstance(new, list):
        common = min(len(old), len(new))
        for i in range(common):
            _diff(old[i], new[i], [*path, str(i)], ops)
        for i in range(len(old) - 1, common - 1, -1):
            ops.append({"op": "remove", "path": _pointer([*path, str(i)])})
        for i in range(common, len(new)):
            ops.append({"op": "add", "path": _pointer([*path, str(i)]), "value": copy.deepcopy(new[i])})
        return
    ops.append({"op": "replace", "path": _pointer(path), "value": copy.deepcopy(new)})


# --------------------------------------------------------------------------
# apply

_OPS = ("add", "remove", "replace", "move", "copy", "test")


def apply(doc: JSON, patch: list[dict[str, Any]]) -> JSON:
    """Return a new document with ``patch`` applied; ``doc`` is left untouched.

    Operations run in order on a private deep copy, so a failure part way
    through raises :class:`PatchError` without leaving a half-patched
    document visible to the caller.
    """
    if not isinstance(patch, list):
        raise PatchError(f"patch must be a list of operations, got {type(patch).__name__}")
    result: Any = copy.deepcopy(doc)
    for index, op in enumerate(patch):
        try:
            result = _apply_one(result, op)
        except PatchError as exc:
            raise PatchError(f"operation {index}: {exc}") from None
    return result  # type: ignore[no-any-return]


def _field(op: dict[str, Any], name: str) -> Any:
    if name not in op:
        raise PatchError(f"{op.get('op')!r} operation is missing {name!r}")
    return op[name]


def _apply_one(doc: Any, op: Any) -> Any:
    if not isinstance(op, dict):
        raise PatchError(f"operation must be an object, got {type(op).__name__}")
    kind = op.get("op")
    if kind not in _OPS:
        raise PatchError(f"unknown op {kind!r}: expected one of {', '.join(_OPS)}")
    path = _split(_field(op, "path"))

    if kind == "add":
        return _add(doc, path, copy.deepcopy(_field(op, "value")))
    if kind == "remove":
        doc, _ = _remove(doc, path)
        return doc
    if kind == "replace":
        return _replace(doc, path, copy.deepcopy(_field(op, "value")))
    if kind == "test":
        expected = _field(op, "value")
        actual = _get(doc, path)
        if not _equal(actual, expected):
            raise PatchError(f"test failed at {op['path']!r}: {actual!r} != {expected!r}")
        return doc

    from_path = _split(_field(op, "from"))
    if kind == "copy":
        return _add(doc, path, copy.deepcopy(_get(doc, from_path)))
    # move
    if len(from_path) < len(path) and path[: len(from_path)] == from_path:
        raise PatchError(f"cannot move {op['from']!r} into its own child {op['path']!r}")
    if from_path == path:
        _get(doc, path)
        return doc
    doc, value = _remove(doc, from_path)
    return _add(doc, path, value)


def _describe(tokens: list[str]) -> str:
    return repr(_pointer(tokens))


def _index(container: list[Any], token: str, tokens: list[str], *, allow_end: bool) -> int:
    # RFC 6901: decimal digits, no leading zeros (except "0" itself), no signs.
    if not token.isdigit() or not token.isascii() or (len(token) > 1 and token[0] == "0"):
        raise PatchError(f"invalid array index {token!r} in {_describe(tokens)}")
    index = int(token)
    limit = len(container) if allow_end else len(container) - 1
    if index > limit:
        raise PatchError(f"array index {index} out of range in {_describe(tokens)}")
    return index


def _get(doc: Any, tokens: list[str]) -> Any:
    node = doc
    for depth, token in enumerate(tokens):
        here = tokens[: depth + 1]
        if isinstance(node, dict):
            if token not in node:
                raise PatchError(f"path {_describe(here)} does not exist")
            node = node[token]
        elif isinstance(node, list):
            if token == "-":
                raise PatchError(f"path {_describe(here)} does not exist ('-' is past the end)")
            node = node[_index(node, token, here, allow_end=False)]
        else:
            raise PatchError(f"path {_describe(here)} does not exist (parent is not a container)")
    return node


def _add(doc: Any, tokens: list[str], value: Any) -> Any:
    if not tokens:
        return value
    parent = _get(doc, tokens[:-1])
    last = tokens[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        if last == "-":
            parent.append(value)
        else:
            parent.insert(_index(parent, last, tokens, allow_end=True), value)
    else:
        raise PatchError(f"cannot add at {_describe(tokens)}: parent is not an object or array")
    return doc


def _replace(doc: Any, tokens: list[str], value: Any) -> Any:
    # Assign in place rather than remove+add so a replaced key keeps its
    # position in the object, which keeps stored documents stable to read.
    if not tokens:
        return value
    parent = _get(doc, tokens[:-1])
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError(f"path {_describe(tokens)} does not exist")
        parent[last] = value
    elif isinstance(parent, list):
        if last == "-":
            raise PatchError(f"path {_describe(tokens)} does not exist ('-' is past the end)")
        parent[_index(parent, last, tokens, allow_end=False)] = value
    else:
        raise PatchError(f"path {_describe(tokens)} does not exist (parent is not a container)")
    return doc


def _remove(doc: Any, tokens: list[str]) -> tuple[Any, Any]:
    if not tokens:
        # Removing the whole document leaves nothing; JSON has no "absent"
        # value, so this is treated as an error rather than returning None.
        raise PatchError("cannot remove the document root")
    parent = _get(doc, tokens[:-1])
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError(f"path {_describe(tokens)} does not exist")
        return doc, parent.pop(last)
    if isinstance(parent, list):
        if last == "-":
            raise PatchError(f"path {_describe(tokens)} does not exist ('-' is past the end)")
        return doc, parent.pop(_index(parent, last, tokens, allow_end=False))
    raise PatchError(f"path {_describe(tokens)} does not exist (parent is not a container)")

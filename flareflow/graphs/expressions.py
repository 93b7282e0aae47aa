"""The expression language of task graphs: ``${...}`` interpolation and conditions, parsed, never eval'ed.

A *template* is any string value of a definition: text with ``${expr}`` parts. When the whole value
is one ``${expr}`` it keeps the JSON type of what ``expr`` gives (a list stays a list, ``0`` stays a
number); otherwise the parts are joined as text (strings as they are, ``null`` as nothing, anything
else as compact JSON).

A *condition* (``when``, ``condition``) is an expression: comparisons (``== != < <= > >=``),
``in`` / ``not in``, ``&&``, ``||``, ``!``, parentheses, string (``'a'`` or ``"a"``), number,
``true``/``false``/``null`` literals, list literals ``['a', 'b']`` and references. A reference is a
dotted path (``env.X``, ``input.user.name``, ``tasks.build.exit_code``, ``tasks.fetch.result.items[0]``,
``item``) written bare or inside ``${...}`` -- ``${env.X} == 'true'`` and ``env.X == 'true'`` are the
same condition. A path that leads nowhere gives ``null``.

Comparing a string with a number compares them as numbers when the string is one (environment
variables are always strings); ordering anything else of different types is an error of the task.
Truthiness is JSON's: ``false``, ``null``, ``0``, ``""``, ``[]``, ``{}`` -- and the string ``"false"`` --
are false. Standard library only: the Worker evaluates these too.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

__all__ = ["Condition", "ExpressionError", "Template", "lookup", "parse_condition", "parse_template", "render_value",
           "truthy"]


class ExpressionError(ValueError):
    """A template or condition does not parse (``offset``: where in the text), or cannot be evaluated."""

    def __init__(self, message: str, offset: int | None = None) -> None:
        super().__init__(message)
        self.offset = offset


# An AST node is a tuple: ("lit", value) | ("ref", path) | ("list", [nodes]) | ("not", node)
# | ("and", a, b) | ("or", a, b) | ("cmp", op, a, b). A path is a tuple of str keys and int indexes.
Node = tuple[Any, ...]

_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<num>-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)
  | (?P<str>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
  | (?P<op>==|!=|<=|>=|&&|\|\||\$\{|[<>!()\[\],.}])
  | (?P<name>[A-Za-z_][A-Za-z0-9_-]*)
""", re.VERBOSE)

_KEYWORDS = {"true": True, "false": False, "null": None}


def _tokens(text: str, start: int = 0) -> list[tuple[str, Any, int]]:
    out: list[tuple[str, Any, int]] = []
    pos = start
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            raise ExpressionError(f"unexpected character {text[pos]!r} at column {pos + 1}", pos)
        kind = match.lastgroup or ""
        value = match.group()
        if kind == "num":
            out.append(("lit", float(value) if any(c in value for c in ".eE") else int(value), pos))
        elif kind == "str":
            out.append(("lit", _unquote(value), pos))
        elif kind == "name":
            out.append(("name", value, pos))
        elif kind == "op":
            out.append(("op", value, pos))
        pos = match.end()
    out.append(("end", None, len(text)))
    return out


def _unquote(token: str) -> str:
    body = token[1:-1]
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), body)


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.toks = _tokens(text)
        self.i = 0

    def peek(self) -> tuple[str, Any, int]:
        return self.toks[self.i]

    def take(self) -> tuple[str, Any, int]:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def expect(self, value: str) -> None:
        kind, got, pos = self.take()
        if kind != "op" or got != value:
            shown = "the end" if kind == "end" else repr(got)
            raise ExpressionError(f"expected {value!r} at column {pos + 1}, found {shown}", pos)

    def parse(self) -> Node:
        node = self.or_()
        kind, value, pos = self.peek()
        if kind != "end":
            raise ExpressionError(f"unexpected {value!r} at column {pos + 1}", pos)
        return node

    def or_(self) -> Node:
        node = self.and_()
        while self.peek()[:2] == ("op", "||"):
            self.take()
            node = ("or", node, self.and_())
        return node

    def and_(self) -> Node:
        node = self.not_()
        while self.peek()[:2] == ("op", "&&"):
            self.take()
            node = ("and", node, self.not_())
        return node

    def not_(self) -> Node:
        if self.peek()[:2] == ("op", "!"):
            self.take()
            return ("not", self.not_())
        return self.comparison()

    def comparison(self) -> Node:
        left = self.primary()
        kind, value, _ = self.peek()
        op: str | None = None
        if kind == "op" and value in ("==", "!=", "<", "<=", ">", ">="):
            op = value
            self.take()
        elif kind == "name" and value == "in":
            op = "in"
            self.take()
        elif kind == "name" and value == "not" and self.toks[self.i + 1][:2] == ("name", "in"):
            op = "not in"
            self.i += 2
        if op is None:
            return left
        return ("cmp", op, left, self.primary())

    def primary(self) -> Node:
        kind, value, pos = self.take()
        if kind == "lit":
            return ("lit", value)
        if kind == "op" and value == "(":
            node = self.or_()
            self.expect(")")
            return node
        if kind == "op" and value == "${":
            node = self.or_()
            self.expect("}")
            return node
        if kind == "op" and value == "[":
            items: list[Node] = []
            if self.peek()[:2] != ("op", "]"):
                items.append(self.or_())
                while self.peek()[:2] == ("op", ","):
                    self.take()
                    items.append(self.or_())
            self.expect("]")
            return ("list", items)
        if kind == "name":
            if value in _KEYWORDS:
                return ("lit", _KEYWORDS[value])
            return self.path(value)
        shown = "the end of the expression" if kind == "end" else repr(value)
        raise ExpressionError(f"expected a value at column {pos + 1}, found {shown}", pos)

    def path(self, first: str) -> Node:
        parts: list[str | int] = [first]
        while True:
            kind, value, _ = self.peek()
            if kind == "op" and value == ".":
                self.take()
                nkind, name, npos = self.take()
                if nkind == "lit" and isinstance(name, int) and name >= 0:
                    parts.append(name)
                    continue
                if nkind != "name":
                    raise ExpressionError(f"expected a field name after '.' at column {npos + 1}", npos)
                parts.append(name)
            elif kind == "op" and value == "[":
                self.take()
                ikind, index, ipos = self.take()
                if ikind != "lit" or isinstance(index, (bool, float)) or index is None:
                    raise ExpressionError(f"expected an index or a quoted key in [...] at column {ipos + 1}", ipos)
                parts.append(index)
                self.expect("]")
            else:
                return ("ref", tuple(parts))


def _refs(node: Node, out: list[tuple[str | int, ...]]) -> None:
    tag = node[0]
    if tag == "ref":
        out.append(node[1])
    elif tag == "list":
        for item in node[1]:
            _refs(item, out)
    elif tag == "not":
        _refs(node[1], out)
    elif tag in ("and", "or"):
        _refs(node[1], out)
        _refs(node[2], out)
    elif tag == "cmp":
        _refs(node[2], out)
        _refs(node[3], out)


@dataclass(frozen=True)
class Condition:
    """A parsed condition; `evaluate` gives a bool, `value` what the expression gives."""

    text: str
    node: Node

    def refs(self) -> list[tuple[str | int, ...]]:
        out: list[tuple[str | int, ...]] = []
        _refs(self.node, out)
        return out

    def value(self, scope: dict[str, Any]) -> Any:
        return _eval(self.node, scope)

    def evaluate(self, scope: dict[str, Any]) -> bool:
        return truthy(_eval(self.node, scope))


def parse_condition(text: str) -> Condition:
    """Parse a condition; `ExpressionError` (with the column) when it is not one."""
    if not isinstance(text, str) or not text.strip():
        raise ExpressionError("a condition must be a non-empty string")
    return Condition(text, _Parser(text).parse())


@dataclass(frozen=True)
class Template:
    """A parsed string value: literal text and expressions (`render` gives the value)."""

    text: str
    parts: tuple[str | Condition, ...]

    @property
    def dynamic(self) -> bool:
        return any(isinstance(p, Condition) for p in self.parts)

    def refs(self) -> list[tuple[str | int, ...]]:
        return [ref for part in self.parts if isinstance(part, Condition) for ref in part.refs()]

    def render(self, scope: dict[str, Any]) -> Any:
        if len(self.parts) == 1 and isinstance(self.parts[0], Condition):
            return self.parts[0].value(scope)  # a whole-value expression keeps its JSON type
        out = []
        for part in self.parts:
            out.append(part if isinstance(part, str) else _as_text(part.value(scope)))
        return "".join(out)


def parse_template(text: str) -> Template:
    """Split ``text`` into literal text and ``${...}`` expressions (``$${`` is a literal ``${``)."""
    parts: list[str | Condition] = []
    literal: list[str] = []
    i = 0
    while i < len(text):
        if text.startswith("$${", i):
            literal.append("${")
            i += 3
            continue
        if text.startswith("${", i):
            end = _closing(text, i + 2)
            inner = text[i + 2:end]
            if not inner.strip():
                raise ExpressionError(f"empty ${{}} at column {i + 1}", i)
            try:
                node = _Parser(inner).parse()
            except ExpressionError as exc:
                raise ExpressionError(f"in ${{{inner}}}: {exc}", i + 2 + (exc.offset or 0)) from None
            if literal:
                parts.append("".join(literal))
                literal = []
            parts.append(Condition(inner, node))
            i = end + 1
            continue
        literal.append(text[i])
        i += 1
    if literal:
        parts.append("".join(literal))
    return Template(text, tuple(parts))


def _closing(text: str, start: int) -> int:
    """Index of the ``}`` closing a ``${`` whose body starts at ``start`` (quotes and nesting respected)."""
    depth = 0
    quote: str | None = None
    i = start
    while i < len(text):
        ch = text[i]
        if quote is not None:
            if ch == "\\":
                i += 2
                continue
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch == "{":
            depth += 1
        elif ch == "}":
            if depth == 0:
                return i
            depth -= 1
        i += 1
    raise ExpressionError(f"unclosed ${{ at column {start - 1}", start - 2)


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def truthy(value: Any) -> bool:
    """JSON truthiness, with the string ``"false"`` false too (environment flags are strings)."""
    if isinstance(value, str):
        return value not in ("", "false")
    return bool(value)


def lookup(scope: dict[str, Any], path: tuple[str | int, ...]) -> Any:
    """The value at ``path`` in ``scope``, or None where it leads nowhere."""
    value: Any = scope
    for part in path:
        if isinstance(part, int) and isinstance(value, list):
            value = value[part] if -len(value) <= part < len(value) else None
        elif isinstance(value, dict):
            value = value.get(str(part))
        else:
            return None
    return value


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def _pair(a: Any, b: Any) -> tuple[Any, Any]:
    """Coerce a string that is a number when it meets a number (``"3" == 3``)."""
    a_num = isinstance(a, (int, float)) and not isinstance(a, bool)
    b_num = isinstance(b, (int, float)) and not isinstance(b, bool)
    if a_num and isinstance(b, str) and (nb := _number(b)) is not None:
        return float(a), nb
    if b_num and isinstance(a, str) and (na := _number(a)) is not None:
        return na, float(b)
    return a, b


def _compare(op: str, a: Any, b: Any) -> bool:
    if op in ("in", "not in"):
        if isinstance(b, str):
            found = isinstance(a, str) and a in b
        elif isinstance(b, list):
            found = any(_equal(a, item) for item in b)
        elif isinstance(b, dict):
            found = isinstance(a, str) and a in b
        elif b is None:
            found = False
        else:
            raise ExpressionError(f"'in' needs a list, a string or an object on its right, got {_show(b)}")
        return found if op == "in" else not found
    if op == "==":
        return _equal(a, b)
    if op == "!=":
        return not _equal(a, b)
    a, b = _pair(a, b)
    numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (a, b))
    if not numbers and not (isinstance(a, str) and isinstance(b, str)):
        raise ExpressionError(f"cannot order {_show(a)} and {_show(b)} with {op}")
    if op == "<":
        return bool(a < b)
    if op == "<=":
        return bool(a <= b)
    if op == ">":
        return bool(a > b)
    return bool(a >= b)


def _equal(a: Any, b: Any) -> bool:
    a, b = _pair(a, b)
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return bool(a == b)


def _show(value: Any) -> str:
    return json.dumps(value)[:40] if not isinstance(value, str) else repr(value[:40])


def _eval(node: Node, scope: dict[str, Any]) -> Any:
    tag = node[0]
    if tag == "lit":
        return node[1]
    if tag == "ref":
        return lookup(scope, node[1])
    if tag == "list":
        return [_eval(item, scope) for item in node[1]]
    if tag == "not":
        return not truthy(_eval(node[1], scope))
    if tag == "and":
        return truthy(_eval(node[1], scope)) and truthy(_eval(node[2], scope))
    if tag == "or":
        return truthy(_eval(node[1], scope)) or truthy(_eval(node[2], scope))
    return _compare(node[1], _eval(node[2], scope), _eval(node[3], scope))


def render_value(value: Any, scope: dict[str, Any]) -> Any:
    """Interpolate every string inside a JSON value (dict keys stay as written)."""
    if isinstance(value, str):
        return parse_template(value).render(scope) if "${" in value else value
    if isinstance(value, list):
        return [render_value(item, scope) for item in value]
    if isinstance(value, dict):
        return {k: render_value(v, scope) for k, v in value.items()}
    return value


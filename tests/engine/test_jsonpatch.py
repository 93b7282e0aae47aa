"""JSON Patch (RFC 6902): diffs between stored versions, and replaying them."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flareflow.engine.jsonpatch import JSON, PatchError, apply, diff

json_values: st.SearchStrategy[Any] = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(alphabet="ab/~0 1", max_size=3), children, max_size=4)
    ),
    max_leaves=15,
)


def same(a: Any, b: Any) -> bool:
    """Equality that also tells True from 1, as JSON does."""
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(map(same, a, b))
    return isinstance(a, bool) == isinstance(b, bool) and a == b


@settings(max_examples=300)
@given(json_values, json_values)
def test_apply_of_diff_gives_new(a: JSON, b: JSON) -> None:
    before = copy.deepcopy(a)
    patched = apply(a, diff(a, b))
    assert patched == b
    assert same(patched, b)
    assert same(a, before)  # the input was not mutated


@given(json_values)
def test_equal_values_give_empty_patch(a: JSON) -> None:
    assert diff(a, copy.deepcopy(a)) == []


def test_diff_objects_key_by_key_in_sorted_order() -> None:
    old: JSON = {"b": 1, "a": {"x": 1, "y": 2}, "gone": True}
    new: JSON = {"b": 2, "a": {"x": 1}, "new": [1]}
    assert diff(old, new) == [
        {"op": "remove", "path": "/a/y"},
        {"op": "replace", "path": "/b", "value": 2},
        {"op": "remove", "path": "/gone"},
        {"op": "add", "path": "/new", "value": [1]},
    ]


def test_diff_lists_removes_from_end_backwards() -> None:
    assert diff([1, 2, 3, 4], [1, 9]) == [
        {"op": "replace", "path": "/1", "value": 9},
        {"op": "remove", "path": "/3"},
        {"op": "remove", "path": "/2"},
    ]


def test_diff_lists_adds_trailing_items_by_index() -> None:
    assert diff([1], [1, 2, 3]) == [
        {"op": "add", "path": "/1", "value": 2},
        {"op": "add", "path": "/2", "value": 3},
    ]


def test_diff_escapes_pointer_tokens() -> None:
    assert diff({}, {"a/b": 1, "m~n": 2}) == [
        {"op": "add", "path": "/a~1b", "value": 1},
        {"op": "add", "path": "/m~0n", "value": 2},
    ]


@pytest.mark.parametrize(("old", "new"), [(1, True), (True, 1), (0, False), ([1], [True])])
def test_bool_and_int_are_different(old: JSON, new: JSON) -> None:
    patch = diff(old, new)
    assert patch != []
    assert same(apply(old, patch), new)


def test_type_change_is_replace_at_root() -> None:
    assert diff({"a": 1}, [1]) == [{"op": "replace", "path": "", "value": [1]}]


def test_diff_values_are_copies() -> None:
    new: dict[str, Any] = {"a": [1]}
    patch = diff({}, new)
    patch[0]["value"].append(2)
    assert new == {"a": [1]}


# --- apply, operation by operation (examples from RFC 6902 appendix A) ---


@pytest.mark.parametrize(
    ("doc", "op", "expected"),
    [
        ({"foo": "bar"}, {"op": "add", "path": "/baz", "value": "qux"}, {"foo": "bar", "baz": "qux"}),
        (
            {"foo": ["bar", "baz"]},
            {"op": "add", "path": "/foo/1", "value": "qux"},
            {"foo": ["bar", "qux", "baz"]},
        ),
        ({"foo": [1]}, {"op": "add", "path": "/foo/-", "value": 2}, {"foo": [1, 2]}),
        ({"foo": [1]}, {"op": "add", "path": "/foo/1", "value": 2}, {"foo": [1, 2]}),
        ({"foo": 1}, {"op": "add", "path": "/foo", "value": 2}, {"foo": 2}),
        ({"foo": 1}, {"op": "add", "path": "", "value": [3]}, [3]),
        ({"baz": "qux", "foo": "bar"}, {"op": "remove", "path": "/baz"}, {"foo": "bar"}),
        ({"foo": ["bar", "qux", "baz"]}, {"op": "remove", "path": "/foo/1"}, {"foo": ["bar", "baz"]}),
        (
            {"baz": "qux", "foo": "bar"},
            {"op": "replace", "path": "/baz", "value": "boo"},
            {"baz": "boo", "foo": "bar"},
        ),
        ({"a": 1}, {"op": "replace", "path": "", "value": None}, None),
        (
            {"foo": {"bar": "baz", "waldo": "fred"}, "qux": {"corge": "grault"}},
            {"op": "move", "from": "/foo/waldo", "path": "/qux/thud"},
            {"foo": {"bar": "baz"}, "qux": {"corge": "grault", "thud": "fred"}},
        ),
        (
            {"foo": ["all", "grass", "cows", "eat"]},
            {"op": "move", "from": "/foo/1", "path": "/foo/3"},
            {"foo": ["all", "cows", "eat", "grass"]},
        ),
        ({"a": 1}, {"op": "move", "from": "/a", "path": "/a"}, {"a": 1}),
        ({"a": [1, 2]}, {"op": "copy", "from": "/a", "path": "/b"}, {"a": [1, 2], "b": [1, 2]}),
        ({"a/b": {"~": 1}}, {"op": "test", "path": "/a~1b/~0", "value": 1}, {"a/b": {"~": 1}}),
        ({"": 5}, {"op": "replace", "path": "/", "value": 6}, {"": 6}),
    ],
)
def test_apply_single_operation(doc: JSON, op: dict[str, Any], expected: JSON) -> None:
    before = copy.deepcopy(doc)
    assert apply(doc, [op]) == expected
    assert doc == before


def test_apply_never_mutates_input_or_patch_values() -> None:
    doc: dict[str, Any] = {"a": [1, 2]}
    value: list[int] = [9]
    patch: list[dict[str, Any]] = [
        {"op": "add", "path": "/b", "value": value},
        {"op": "add", "path": "/b/-", "value": 10},
    ]
    out = apply(doc, patch)
    assert out == {"a": [1, 2], "b": [9, 10]}
    assert doc == {"a": [1, 2]}
    assert value == [9]


def test_copy_is_independent_of_source() -> None:
    patch: list[dict[str, Any]] = [
        {"op": "copy", "from": "/a", "path": "/b"},
        {"op": "add", "path": "/b/-", "value": 2},
    ]
    out = apply({"a": [1]}, patch)
    assert out == {"a": [1], "b": [1, 2]}


@pytest.mark.parametrize(
    ("doc", "patch", "message"),
    [
        ({}, [{"op": "frobnicate", "path": "/a"}], "operation 0: unknown op 'frobnicate'"),
        ({}, [{"path": "/a"}], "unknown op None"),
        ({}, [{"op": "add", "value": 1}], "'add' operation is missing 'path'"),
        ({}, [{"op": "add", "path": "/a"}], "'add' operation is missing 'value'"),
        ({}, [{"op": "move", "path": "/a"}], "'move' operation is missing 'from'"),
        ({}, [{"op": "add", "path": "a", "value": 1}], "invalid JSON pointer 'a'"),
        ({}, [{"op": "add", "path": "/a~2", "value": 1}], "bad escape"),
        ({}, [{"op": "remove", "path": "/a"}], "path '/a' does not exist"),
        ({}, [{"op": "replace", "path": "/a", "value": 1}], "path '/a' does not exist"),
        ({}, [{"op": "add", "path": "/a/b", "value": 1}], "path '/a' does not exist"),
        ({"a": 1}, [{"op": "add", "path": "/a/b", "value": 1}], "parent is not an object or array"),
        ([1], [{"op": "add", "path": "/3", "value": 1}], "array index 3 out of range"),
        ([1], [{"op": "add", "path": "/01", "value": 1}], "invalid array index '01'"),
        ([1], [{"op": "add", "path": "/-1", "value": 1}], "invalid array index '-1'"),
        ([1], [{"op": "remove", "path": "/1"}], "array index 1 out of range"),
        ([1], [{"op": "remove", "path": "/-"}], "does not exist"),
        ({"a": {}}, [{"op": "move", "from": "/a", "path": "/a/b"}], "into its own child"),
        ({"a": 1}, [{"op": "test", "path": "/a", "value": 2}], "test failed at '/a': 1 != 2"),
        ({"a": 1}, [{"op": "test", "path": "/a", "value": True}], "test failed"),
        ({"a": 1}, [{"op": "remove", "path": ""}], "cannot remove the document root"),
        ({}, ["add"], "operation must be an object"),
        ({}, {"op": "add"}, "patch must be a list"),
        ({}, [{"op": "add", "path": 3, "value": 1}], "path must be a string"),
        ({}, [{"op": "add", "path": "/x", "value": 1}, {"op": "remove", "path": "/y"}], "operation 1: "),
    ],
)
def test_apply_errors_are_clear(doc: JSON, patch: Any, message: str) -> None:
    with pytest.raises(PatchError) as info:
        apply(doc, patch)
    assert message in str(info.value)


def test_failed_patch_leaves_input_untouched() -> None:
    doc: dict[str, Any] = {"a": 1}
    with pytest.raises(PatchError):
        apply(doc, [{"op": "add", "path": "/b", "value": 2}, {"op": "test", "path": "/a", "value": 0}])
    assert doc == {"a": 1}


def test_patch_error_is_value_error() -> None:
    assert issubclass(PatchError, ValueError)

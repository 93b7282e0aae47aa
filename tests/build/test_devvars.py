"""``.dev.vars`` read as wrangler's dotenv reads it, and written so that it reads back the same.

The expectations are what wrangler 4.86.0 (its bundled dotenv) makes of each line, checked by hand
against it when this was written.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from flareflow.cli.devvars import DevVarsError, parse_dev_vars, read_dev_vars, render_dev_vars

WRANGLER_READS = [
    ("PLAIN=abc", {"PLAIN": "abc"}),
    ("OTHER='abc' # the other key", {"OTHER": "abc"}),
    ('C="line1\nline2"', {"C": "line1\nline2"}),  # a quoted value across lines (a PEM key)
    ("D=`it's \"both\"`", {"D": "it's \"both\""}),
    ("B=abc#def", {"B": "abc"}),  # an unquoted value ends at #
    ("my.key=dots", {"my.key": "dots"}),
    ("E: colon", {"E": "colon"}),
    ("export F = spaced  ", {"F": "spaced"}),
    ('G="a\\nb"', {"G": "a\nb"}),  # \n expands in double quotes only
    ("G2='a\\nb'", {"G2": "a\\nb"}),
    ("H='unterminated", {"H": "'unterminated"}),
    ("EMPTY=", {"EMPTY": ""}),
    ("DUP=1\nDUP=2", {"DUP": "2"}),
    ("WIN=1\r\nNEXT=2\r\n", {"WIN": "1", "NEXT": "2"}),
]


@pytest.mark.parametrize(("text", "expected"), WRANGLER_READS)
def test_lines_are_read_as_wrangler_reads_them(text: str, expected: dict[str, str]) -> None:
    assert parse_dev_vars(text) == expected


def test_a_line_wrangler_skips_is_a_warning_not_an_error() -> None:
    warnings: list[str] = []
    assert parse_dev_vars("# c\nnot a pair\nA=1\n", source="x/.dev.vars", warn=warnings.append) == {"A": "1"}
    assert warnings == ["x/.dev.vars:2: not KEY=value; skipped (as wrangler skips it)"]


@pytest.mark.parametrize("value", ["plain", "it's", "it's `ticked`", "two\nlines", "both ' and \"", "#hash",
                                   "sk_live_abc/+==", " padded "])
def test_written_values_read_back_the_same(value: str) -> None:
    text = render_dev_vars({"K": value, "NEXT": "after"}, "header")
    assert text.startswith("# header\n")
    assert parse_dev_vars(text) == {"K": value, "NEXT": "after"}


def test_a_value_no_quoting_can_hold_is_refused_naming_it() -> None:
    with pytest.raises(DevVarsError, match="API_KEY"):
        render_dev_vars({"API_KEY": "it's `x` \"y\""}, "h")


def test_a_file_that_is_not_utf8_is_one_error(tmp_path: Path) -> None:
    path = tmp_path / ".dev.vars"
    path.write_bytes(b"A=\xff\xfe\n")
    with pytest.raises(DevVarsError, match="not UTF-8"):
        read_dev_vars(path)

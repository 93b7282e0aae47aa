"""Durations: what users type in workflow definitions and what they see back."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flareflow.engine.durations import DurationError, format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        (0, 0.0),
        (90, 90.0),
        (1.5, 1.5),
        ("90", 90.0),
        ("1.5", 1.5),
        ("30s", 30.0),
        ("30 s", 30.0),
        ("30 seconds", 30.0),
        ("5m", 300.0),
        ("5 min", 300.0),
        ("5 minutes", 300.0),
        ("1 minute", 60.0),
        ("2h", 7200.0),
        ("2 hours", 7200.0),
        ("1.5 hours", 5400.0),
        ("7 days", 604800.0),
        ("1d", 86400.0),
        ("1 week", 604800.0),
        ("2w", 1209600.0),
        ("500ms", 0.5),
        ("1h 30m", 5400.0),
        ("1h30m", 5400.0),
        ("1 hour 30 minutes", 5400.0),
        ("  5 Minutes  ", 300.0),
        ("2H", 7200.0),
    ],
)
def test_parse_accepts_common_spellings(text: str | float, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "bad",
    ["", "   ", "abc", "5 parsecs", "-3s", "-3", "5m 30", "s", "1h and 30m", "1..5s", "inf", "nan"],
)
def test_parse_rejects_nonsense_strings(bad: str) -> None:
    with pytest.raises(DurationError) as info:
        parse_duration(bad)
    assert str(info.value) == (
        f'invalid duration \'{bad}\': expected e.g. "30s", "5 minutes", "7 days" or a number of seconds'
    )


@pytest.mark.parametrize("bad", [None, [5], True, False, -1, -0.5, math.nan, math.inf, {"s": 1}])
def test_parse_rejects_non_strings_and_bad_numbers(bad: object) -> None:
    with pytest.raises(DurationError, match="invalid duration"):
        parse_duration(bad)  # type: ignore[arg-type]


def test_duration_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="5 parsecs"):
        parse_duration("5 parsecs")


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0ms"),
        (0.25, "250ms"),
        (1, "1s"),
        (1.23, "1.2s"),
        (59, "59s"),
        (60, "1m"),
        (303, "5m 3s"),
        (7500, "2h 5m"),
        (7200, "2h"),
        (273600, "3d 4h"),
        (86400, "1d"),
    ],
)
def test_format_is_short_and_readable(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_format_never_shows_1000ms() -> None:
    assert format_duration(0.9999) == "1s"


@given(st.integers(min_value=0, max_value=10**7))
def test_format_output_parses_back_close_to_input(seconds: int) -> None:
    # Two units at most, so the round trip loses at most the dropped unit.
    back = parse_duration(format_duration(seconds))
    assert abs(back - seconds) < max(1.0, seconds * 0.05)

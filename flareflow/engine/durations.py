"""Human-friendly durations for retry delays, timeouts and schedules.

Workflow authors write delays by hand ("30s", "5 minutes", "1h 30m"), and a
typo there should fail loudly when the workflow is loaded, not silently turn
into a zero-second retry storm.  So parsing is strict: anything we do not
recognise raises :class:`DurationError` with a message that shows the
accepted forms.  Everything is normalised to a ``float`` number of seconds so
the rest of the engine only ever deals with one unit.
"""

from __future__ import annotations

import math
import re

__all__ = ["DurationError", "format_duration", "parse_duration"]

_HINT = 'expected e.g. "30s", "5 minutes", "7 days" or a number of seconds'

# Unit spellings -> seconds.  Kept explicit (rather than stripping a trailing
# "s") so that nonsense like "mins" vs "minss" is judged by a plain lookup.
_UNITS: dict[str, float] = {}
for _names, _seconds in (
    (("ms", "msec", "msecs", "millisecond", "milliseconds"), 0.001),
    (("s", "sec", "secs", "second", "seconds"), 1.0),
    (("m", "min", "mins", "minute", "minutes"), 60.0),
    (("h", "hr", "hrs", "hour", "hours"), 3600.0),
    (("d", "day", "days"), 86400.0),
    (("w", "wk", "wks", "week", "weeks"), 604800.0),
):
    for _name in _names:
        _UNITS[_name] = _seconds

# One "<number> <unit>" term; whitespace between number and unit is optional.
_TERM = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*([a-z]+)")
_NUMBER = re.compile(r"\d+(?:\.\d*)?|\.\d+")


class DurationError(ValueError):
    """Raised when a value cannot be understood as a duration."""

    def __init__(self, value: object) -> None:
        self.value = value
        shown = f"'{value}'" if isinstance(value, str) else repr(value)
        super().__init__(f"invalid duration {shown}: {_HINT}")


def _check_number(value: object, seconds: float) -> float:
    if math.isnan(seconds) or math.isinf(seconds) or seconds < 0:
        raise DurationError(value)
    return seconds


def parse_duration(value: str | int | float) -> float:
    """Return ``value`` as a non-negative, finite number of seconds.

    Numbers are taken as seconds.  Strings may be a bare number ("90") or
    one or more ``<number><unit>`` terms ("1h 30m", "1 hour 30 minutes"),
    case-insensitively.  Booleans are rejected even though they are ints,
    because ``delay=True`` is certainly a mistake.
    """
    if isinstance(value, bool):
        raise DurationError(value)
    if isinstance(value, (int, float)):
        return _check_number(value, float(value))
    if not isinstance(value, str):
        raise DurationError(value)

    text = value.strip().lower()
    if _NUMBER.fullmatch(text):
        return _check_number(value, float(text))

    total = 0.0
    pos = 0
    matched = False
    while pos < len(text):
        if text[pos].isspace():
            pos += 1
            continue
        term = _TERM.match(text, pos)
        if term is None or term.group(2) not in _UNITS:
            raise DurationError(value)
        # "1h30m" splits cleanly; a dangling number ("5m 30") has no unit
        # and fails the match above instead of being guessed at.
        total += float(term.group(1)) * _UNITS[term.group(2)]
        matched = True
        pos = term.end()
    if not matched:
        raise DurationError(value)
    return _check_number(value, total)


def format_duration(seconds: float) -> str:
    """Render ``seconds`` compactly for logs and UIs ("5m 3s", "3d 4h").

    At most two units are shown: a human skimming a run list cares that a
    step waited "2h 5m", not about the trailing seconds.
    """
    if math.isnan(seconds) or math.isinf(seconds):
        return str(seconds)
    if seconds < 0:
        return "-" + format_duration(-seconds)
    millis = round(seconds * 1000)
    if millis < 1000:
        return f"{millis}ms"
    if seconds < 60:
        text = f"{seconds:.1f}".rstrip("0").rstrip(".")
        if text == "60":
            return "1m"
        return f"{text}s"
    whole = round(seconds)
    for big, big_name, small, small_name in (
        (86400, "d", 3600, "h"),
        (3600, "h", 60, "m"),
        (60, "m", 1, "s"),
    ):
        if whole >= big:
            major, rest = divmod(whole, big)
            minor = rest // small
            return f"{major}{big_name} {minor}{small_name}" if minor else f"{major}{big_name}"
    return f"{whole}s"  # pragma: no cover - unreachable, seconds >= 60 here

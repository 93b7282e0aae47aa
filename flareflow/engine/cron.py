"""Five-field cron expressions, as Cloudflare Cron Triggers accept them.

Parsed once into sets of allowed values, so the Worker's ``scheduled()`` can ask which schedules
match the minute it fires for, and the build can reject a typo before wrangler ever sees it.
Fields: minute hour day-of-month month day-of-week; ``*``, lists, ranges, steps (``*/5``, ``1-10/2``)
and names (``JAN``..``DEC``, ``SUN``..``SAT``; day-of-week 0 and 7 are Sunday).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

_FIELDS: tuple[tuple[str, int, int, dict[str, int]], ...] = (
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day of month", 1, 31, {}),
    ("month", 1, 12, {n: i + 1 for i, n in enumerate(
        ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"])}),
    ("day of week", 0, 7, {n: i for i, n in enumerate(["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"])}),
)


class CronError(ValueError):
    """The expression is not a valid five-field cron expression; the message says which field."""


@dataclass(frozen=True)
class Cron:
    """A parsed expression; `matches` answers for one minute (UTC)."""

    expression: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    any_day: bool
    any_weekday: bool

    def matches(self, moment: dt.datetime) -> bool:
        """True if the schedule fires in ``moment``'s minute (UTC), with cron's day-OR-weekday rule."""
        moment = moment.astimezone(dt.UTC) if moment.tzinfo else moment
        if moment.minute not in self.minutes or moment.hour not in self.hours or moment.month not in self.months:
            return False
        day_ok = moment.day in self.days
        weekday_ok = (moment.isoweekday() % 7) in self.weekdays
        if self.any_day and self.any_weekday:
            return True
        if self.any_day:
            return weekday_ok
        if self.any_weekday:
            return day_ok
        return day_ok or weekday_ok


def _value(token: str, name: str, low: int, high: int, names: dict[str, int]) -> int:
    upper = token.upper()
    if upper in names:
        return names[upper]
    if not token.isdigit():
        raise CronError(f"{name}: '{token}' is not a number" + (" or a name" if names else ""))
    value = int(token)
    if not low <= value <= high:
        raise CronError(f"{name}: {value} is outside {low}-{high}")
    return value


def _field(text: str, name: str, low: int, high: int, names: dict[str, int]) -> set[int]:
    values: set[int] = set()
    for part in text.split(","):
        if not part:
            raise CronError(f"{name}: empty list item in '{text}'")
        base, _, step_text = part.partition("/")
        step = 1
        if step_text:
            if not step_text.isdigit() or int(step_text) == 0:
                raise CronError(f"{name}: step '{step_text}' must be a positive number")
            step = int(step_text)
        if base == "*":
            start, end = low, high
        elif "-" in base:
            first, _, last = base.partition("-")
            start, end = _value(first, name, low, high, names), _value(last, name, low, high, names)
            if start > end:
                raise CronError(f"{name}: range {base} runs backwards")
        else:
            start = _value(base, name, low, high, names)
            end = high if step_text else start
        values.update(range(start, end + 1, step))
    return values


def parse_cron(expression: str) -> Cron:
    """Parse ``expression`` or raise `CronError` naming the field at fault."""
    if not isinstance(expression, str):
        raise CronError("a cron expression must be a string")
    parts = expression.split()
    if len(parts) != 5:
        raise CronError(f"'{expression}' has {len(parts)} fields; cron needs 5 "
                        "(minute hour day-of-month month day-of-week)")
    sets = [_field(text, name, low, high, names) for text, (name, low, high, names) in zip(parts, _FIELDS, strict=True)]
    weekdays = {0 if d == 7 else d for d in sets[4]}
    return Cron(expression, frozenset(sets[0]), frozenset(sets[1]), frozenset(sets[2]), frozenset(sets[3]),
                frozenset(weekdays), parts[2] == "*", parts[4] == "*")

"""Five-field cron expressions, as Cloudflare Cron Triggers accept them.

Parsed once into sets of allowed values, so the build can reject a typo before wrangler ever sees it.
This module also holds the one rule of what a firing starts, used by both hosts: `cron_firing`
(the Worker's ``scheduled()`` and the local server's ``/cdn-cgi/handler/scheduled``), `due` and
`latest_due` (the local scheduler's minutes and catch-up), and `cron_start_key` (one idempotency key
per workflow and scheduled minute, so a repeated firing starts nothing new).
Fields: minute hour day-of-month month day-of-week; ``*``, lists, ranges, steps (``*/5``, ``1-10/2``)
and names (``JAN``..``DEC``, ``SUN``..``SAT``; day-of-week 0 and 7 are Sunday).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .events import CRON_TRIGGER

if TYPE_CHECKING:  # the registry compiles schedules through this module's parser: no import cycle at run time
    from .registry import WorkflowDef

__all__ = ["CRON_TRIGGER", "Cron", "CronError", "CronStart", "cron_firing", "cron_start_key", "due", "latest_due",
           "minute_of", "next_fires", "parse_cron", "same_schedule", "schedule_of", "started_by"]

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


# -- which workflows a firing starts: one rule for every host ----------------------------------------

#: How far back a catch-up looks for a missed minute (a server stopped for longer catches up nothing older).
MAX_CATCH_UP_DAYS = 3660


@dataclass(frozen=True)
class CronStart:
    """One start a cron firing asks for: the workflow, the scheduled minute and the start's idempotency key."""

    workflow: str
    minute: float
    idempotency_key: str


def minute_of(when: float) -> float:
    """Epoch seconds ``when`` floored to its minute (a firing and its repeats share a minute)."""
    return float(int(when // 60) * 60)


def cron_start_key(workflow: str, when: float) -> str:
    """The idempotency key of ``workflow``'s cron start for the minute of ``when`` (epoch seconds).

    Keyed by the scheduled minute, not the exact firing time: a repeated firing (cron triggers are
    at-least-once), a catch-up after downtime and a manual firing for the same minute all meet one run.
    """
    stamp = dt.datetime.fromtimestamp(minute_of(when), tz=dt.UTC).strftime("%Y-%m-%dT%H:%MZ")
    return f"cron:{workflow}:{stamp}"


def schedule_of(defn: WorkflowDef) -> Cron | None:
    """The workflow's parsed schedule; None when it has none or it does not parse (the build rejects those)."""
    if defn.schedule is None:
        return None
    try:
        return parse_cron(defn.schedule)
    except CronError:
        return None


def same_schedule(a: Cron, b: Cron) -> bool:
    """Whether two expressions fire at the same minutes (``0 9 * * MON`` is ``0  9 * * 1``)."""
    return (a.minutes, a.hours, a.days, a.months, a.weekdays, a.any_day, a.any_weekday) == (
        b.minutes, b.hours, b.days, b.months, b.weekdays, b.any_day, b.any_weekday)


def started_by(workflows: Iterable[WorkflowDef], cron: str) -> list[WorkflowDef]:
    """The workflows a firing of the cron trigger ``cron`` starts: those whose schedule is that expression.

    Cloudflare fires one trigger per distinct expression and names it in ``controller.cron``; the
    build writes each schedule as its trigger, so a schedule matches its own text up to whitespace,
    and any spelling of the same schedule. An expression that does not parse matches nothing.
    """
    try:
        fired = parse_cron(cron)
    except CronError:
        return []
    words = cron.split()
    out = []
    for defn in workflows:
        schedule = schedule_of(defn)
        if schedule is not None and (schedule.expression.split() == words or same_schedule(schedule, fired)):
            out.append(defn)
    return out


def cron_firing(workflows: Iterable[WorkflowDef], cron: str, when: float) -> list[CronStart]:
    """The starts one firing of ``cron`` scheduled at ``when`` (epoch seconds) asks for, on any host."""
    minute = minute_of(when)
    return [CronStart(defn.name, minute, cron_start_key(defn.name, minute)) for defn in started_by(workflows, cron)]


def due(workflows: Iterable[WorkflowDef], minute: float) -> list[CronStart]:
    """The starts due in the minute of ``minute`` (epoch seconds): every schedule that `Cron.matches` it."""
    start = minute_of(minute)
    moment = dt.datetime.fromtimestamp(start, tz=dt.UTC)
    out = []
    for defn in workflows:
        schedule = schedule_of(defn)
        if schedule is not None and schedule.matches(moment):
            out.append(CronStart(defn.name, start, cron_start_key(defn.name, start)))
    return out


def latest_due(cron: Cron, after: float, upto: float) -> float | None:
    """The latest minute ``m`` with ``after < m <= upto`` (epoch seconds, floored) that ``cron`` fires in.

    Walks days backwards (at most `MAX_CATCH_UP_DAYS`) and only the schedule's own hours and minutes
    in each, so a long downtime costs days, not minutes; every answer is checked with `Cron.matches`.
    """
    low, high = minute_of(after), minute_of(upto)
    if high <= low:
        return None
    top = dt.datetime.fromtimestamp(high, tz=dt.UTC)
    hours = sorted(cron.hours, reverse=True)
    minutes = sorted(cron.minutes, reverse=True)
    day = top.replace(hour=0, minute=0)
    for _ in range(MAX_CATCH_UP_DAYS):
        if day.timestamp() + 86_400 <= low:
            return None
        if cron.matches(day.replace(hour=min(cron.hours), minute=min(cron.minutes))):
            for hour in hours:
                for minute in minutes:
                    moment = day.replace(hour=hour, minute=minute)
                    stamp = moment.timestamp()
                    if stamp <= low:
                        return None
                    if stamp <= high and cron.matches(moment):
                        return stamp
        day -= dt.timedelta(days=1)
    return None


def next_fires(cron: Cron, after: float, count: int = 3) -> list[float]:
    """The first ``count`` minutes (epoch seconds) after ``after`` that ``cron`` fires in, earliest first.

    Walks days forwards (at most `MAX_CATCH_UP_DAYS`), trying only the schedule's own hours and minutes
    in a day that matches, so a yearly schedule costs a year of days, not of minutes."""
    out: list[float] = []
    start = dt.datetime.fromtimestamp(minute_of(after), tz=dt.UTC)
    day = start.replace(hour=0, minute=0)
    hours, minutes = sorted(cron.hours), sorted(cron.minutes)
    for _ in range(MAX_CATCH_UP_DAYS):
        if cron.matches(day.replace(hour=hours[0], minute=minutes[0])):
            for hour in hours:
                for minute in minutes:
                    moment = day.replace(hour=hour, minute=minute)
                    if moment > start and cron.matches(moment):
                        out.append(moment.timestamp())
                        if len(out) == count:
                            return out
        day += dt.timedelta(days=1)
    return out

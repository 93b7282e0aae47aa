"""Schedules in plain English, compiled to the five-field UTC cron that Cloudflare Cron Triggers take.

``@workflow(schedule=...)`` accepts a cron expression or a phrase; `compile_schedule` turns either
into cron once, when the workflow is defined, so every host (the build's ``[triggers]``, the Worker's
``scheduled()``, the local scheduler) sees the same expression and a phrase that does not parse is an
error at import time, quoting it and listing the accepted forms (`ACCEPTED`).

Time zones: Cloudflare fires crons in UTC, so a ``tz`` other than UTC is converted here, with the
zone's *standard* (winter) offset, fixed: the compiled expression never changes with the date, and
no clock is read. While the zone observes daylight saving time the run therefore starts one hour
later by the local clock (``9am`` Europe/Berlin fires at 08:00 UTC: 09:00 CET in winter, 10:00 CEST
in summer). A conversion that cron cannot say (a day-of-month moved across a month boundary, or a
shift that splits a day restriction) is refused with a sentence; give that schedule in UTC.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable

from .cron import Cron, CronError, parse_cron

__all__ = ["ACCEPTED", "ScheduleError", "compile_schedule", "every", "looks_like_cron", "render_cron",
           "utc_offset_minutes"]

#: The phrase forms `compile_schedule` understands (quoted in its error message).
ACCEPTED = (
    "a cron expression ('0 9 * * 1')",
    "'every minute'", "'every 15 minutes'", "'every hour'", "'every hour at :30'", "'every 6 hours'",
    "'daily at 02:00'", "'every day at 2:30pm'", "'every Monday at 9am'", "'Monday and Thursday at 18:00'",
    "'weekdays at 18:30'", "'weekends at 10am'", "'first day of the month at 00:00'",
    "'the 15th of every month at noon'", "'monthly'",
)

_DAYS = {"sunday": 0, "monday": 1, "tuesday": 2, "wednesday": 3, "thursday": 4, "friday": 5, "saturday": 6}
_DAY_ALIASES = {**_DAYS, **{name[:3]: n for name, n in _DAYS.items()},
                "tues": 2, "wednes": 3, "thur": 4, "thurs": 4}
_ORDINALS = {"first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "tenth": 10, "fifteenth": 15,
             "twentieth": 20}
_ALL_MINUTES = frozenset(range(60))
_ALL_HOURS = frozenset(range(24))
_ALL_DAYS = frozenset(range(1, 32))
_ALL_MONTHS = frozenset(range(1, 13))
_ALL_WEEKDAYS = frozenset(range(7))

_CRON_TOKEN = re.compile(r"^[0-9A-Za-z*,/\-]+$")
_CRON_NUMERIC = re.compile(r"^[0-9*,/\-]+$")
#: Cron's only words are three-letter day and month names (``MON-FRI``, ``JAN``); ``15 minutes`` is English.
_CRON_WORD = re.compile(r"[A-Za-z]+")


class ScheduleError(ValueError):
    """The schedule is neither a cron expression nor a phrase `compile_schedule` knows (or cannot move to UTC).

    ``specific``: the phrase has a known form and the message says what is wrong with one part of it (an
    hour past 23, 7 minutes), rather than listing every form; `every` prefers such a message."""

    def __init__(self, message: str, specific: bool = True) -> None:
        super().__init__(message)
        self.specific = specific


def looks_like_cron(text: str) -> bool:
    """Fields of cron characters, the first of digits and ``* , / -`` only: meant as cron, not English (a
    phrase starts with a word: ``every``, ``daily``, ``Monday``, ``first``, ``the 15th`` ...). A malformed
    one (``0 9 * *``) stays cron, so the build's field-by-field message says what is wrong with it; but
    ``15 minutes`` is a phrase (cron's only words are three-letter names such as ``MON``)."""
    parts = text.split()
    return (bool(parts) and _CRON_NUMERIC.match(parts[0]) is not None and all(_CRON_TOKEN.match(p) for p in parts)
            and all(len(word) == 3 for p in parts for word in _CRON_WORD.findall(p)))


def compile_schedule(text: str, tz: str | None = None) -> str:
    """The UTC cron expression of ``text`` (cron or an English phrase), read in the zone ``tz`` (default UTC).

    A cron expression given without a zone is returned as written (the build checks it field by field,
    naming the field at fault); everything else is parsed here and rendered canonically."""
    if not isinstance(text, str) or not text.strip():
        raise ScheduleError("a schedule must be a non-empty string: a cron expression or a phrase "
                            "like 'daily at 02:00'")
    offset = utc_offset_minutes(tz)
    if looks_like_cron(text):
        if offset == 0:
            return text
        try:
            cron = parse_cron(text)
        except CronError as exc:
            raise ScheduleError(f"invalid schedule '{text}': {exc}") from None
        return render_cron(*_shift(_sets_of(cron), offset, text, tz))
    try:
        sets = _parse_phrase(text)
    except ScheduleError as exc:
        if exc.specific or isinstance(_compiled(f"every {text.strip()}", text), ScheduleError):
            raise
        raise ScheduleError(f"unrecognised schedule '{text}' (did you mean 'every {text.strip()}'?)") from None
    return render_cron(*_shift(sets, offset, text, tz))


def _compiled(text: str, shown: str) -> str | ScheduleError:
    """The UTC cron of ``text`` (a cron expression as written), or its error quoting ``shown`` (what the
    user wrote). Cron-like text that is no cron (``15 minutes``: a number and a word) is an error here,
    so `every` reads it as a phrase instead."""
    try:
        if looks_like_cron(text):
            parse_cron(text)
            return text
        return render_cron(*_parse_phrase(text, shown))
    except CronError as exc:
        return ScheduleError(f"invalid schedule '{shown}': {exc}")
    except ScheduleError as exc:
        return exc


# -- phrases -----------------------------------------------------------------------------------------

_Sets = tuple[frozenset[int], frozenset[int], frozenset[int], frozenset[int], frozenset[int]]


def _unknown(text: str, why: str = "") -> ScheduleError:
    """A phrase of a known form with a bad part says what is wrong; an unknown one lists the forms."""
    if why:
        return ScheduleError(f"invalid schedule '{text}': {why}")
    return ScheduleError(f"unrecognised schedule '{text}'; accepted forms: " + ", ".join(ACCEPTED), specific=False)


def every(phrase: str) -> str:
    """``schedule=every("Monday at 9am")``: the schedule as text, checked now (returned as text, so ``tz=``
    still applies when the workflow is registered).

    ``every`` goes in front when that reads as the same schedule (``"Monday at 9am"`` -> ``"every Monday
    at 9am"``, ``"15 minutes"``); a phrase that only parses by itself (``"weekdays at 18:30"``, ``"daily at
    2am"``, ``"hourly"``, a cron expression) is returned as written. An error quotes ``phrase``, never the
    text with ``every`` added, and says what is wrong with a part of it when either reading has a known form."""
    if not isinstance(phrase, str) or not phrase.strip():
        raise ScheduleError("every() takes a phrase like 'Monday at 9am' or '15 minutes'")
    text = phrase.strip()
    alone = _compiled(text, phrase)
    prefixed = text if text.lower().startswith(("every ", "each ")) else f"every {text}"
    with_every = _compiled(prefixed, phrase) if prefixed != text else alone
    if isinstance(with_every, str) and (with_every == alone or isinstance(alone, ScheduleError)):
        return prefixed
    if isinstance(alone, str):
        return text
    assert isinstance(with_every, ScheduleError)
    raise with_every if with_every.specific or not alone.specific else alone


def _time(words: str, text: str) -> tuple[int, int]:
    """``9am``, ``9:30 pm``, ``18:30``, ``02:00``, ``noon``, ``midnight`` -> (hour, minute)."""
    words = words.strip()
    if words == "noon":
        return 12, 0
    if words == "midnight":
        return 0, 0
    m = re.fullmatch(r"(\d{1,2})(?:[:.](\d{2}))?\s*(am|pm|a\.m\.|p\.m\.)?", words)
    if not m or (m.group(2) is None and m.group(3) is None):
        raise _unknown(text, f"'{words}' is not a time like 9am, 9:30pm or 18:30")
    hour, minute = int(m.group(1)), int(m.group(2) or 0)
    if minute > 59:
        raise _unknown(text, f"minute {minute} is past 59")
    if m.group(3):
        if not 1 <= hour <= 12:
            raise _unknown(text, f"'{words}': a 12-hour time runs from 1 to 12")
        hour = hour % 12 + (12 if m.group(3).startswith("p") else 0)
    elif hour > 23:
        raise _unknown(text, f"hour {hour} is past 23")
    return hour, minute


#: A time at the end of a phrase without ``at`` (``every Monday 9am``): one with am/pm or minutes, so
#: the number of ``the 15th`` or ``every 6 hours`` is never read as a time.
_BARE_TIME = re.compile(r"(.+?)\s+(\d{1,2}(?:[:.]\d{2})?\s*(?:am|pm|a\.m\.|p\.m\.)|\d{1,2}:\d{2}|noon|midnight)")


def _split_time(body: str, text: str) -> tuple[str, tuple[int, int] | None]:
    """``every monday at 9am`` (or ``every monday 9am``) -> (``every monday``, (9, 0)); no time -> (body, None)."""
    head, sep, tail = body.rpartition(" at ")
    if not sep:
        if body.startswith("at "):
            raise _unknown(text, "say how often, e.g. 'daily at 02:00'")
        bare = _BARE_TIME.fullmatch(body)
        if bare is not None:
            return bare.group(1).strip(), _time(bare.group(2), text)
        return body, None
    return head.strip(), _time(tail, text)


def _days_list(words: str) -> frozenset[int] | None:
    """``monday, wednesday and friday`` / ``mon-fri`` -> weekday numbers; None if not all day names."""
    days: set[int] = set()
    range_match = re.fullmatch(r"([a-z]+)\s*(?:-|to|through)\s*([a-z]+)", words)
    if range_match:
        first, last = (_DAY_ALIASES.get(w.rstrip("s")) for w in range_match.groups())
        if first is None or last is None or first > last:
            return None
        return frozenset(range(first, last + 1))
    for token in re.split(r"\s*,\s*|\s+and\s+|\s+", words):
        if not token:
            continue
        day = _DAY_ALIASES.get(token) if token in _DAY_ALIASES else _DAY_ALIASES.get(token.rstrip("s"))
        if day is None:
            return None
        days.add(day)
    return frozenset(days) if days else None


def _ordinal(word: str) -> int | None:
    if word in _ORDINALS:
        return _ORDINALS[word]
    m = re.fullmatch(r"(\d{1,2})(?:st|nd|rd|th)?", word)
    return int(m.group(1)) if m else None


def _parse_phrase(text: str, shown: str | None = None) -> _Sets:
    """The value sets of phrase ``text``; errors quote ``shown`` (default ``text``: what the user wrote)."""
    body = " ".join(text.lower().replace(",", ", ").split()).strip().rstrip(".")
    body = re.sub(r"\s+,", ",", body)
    text = text if shown is None else shown
    # abbreviations, wherever minutes and hours are accepted: "every 15 mins", "every 6 hrs", "every hr"
    body = re.sub(r"\bmins?\b", lambda m: "minutes" if m.group(0) == "mins" else "minute", body)
    body = re.sub(r"\bhrs?\b", lambda m: "hours" if m.group(0) == "hrs" else "hour", body)
    if re.search(r"\b(?:seconds?|secs?)\b", body):
        raise _unknown(text, "cron schedules fire at most once a minute")
    m = re.fullmatch(r"(?:every|each) (\d+) minutes?", body)
    if m or body in ("every minute", "each minute"):
        n = int(m.group(1)) if m else 1
        if n == 0 or 60 % n:
            raise _unknown(text, f"{n} minutes do not divide the hour evenly, so cron cannot fire exactly every "
                           f"{n} minutes; use one of 1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30 or a cron expression")
        return frozenset(range(0, 60, n)), _ALL_HOURS, _ALL_DAYS, _ALL_MONTHS, _ALL_WEEKDAYS
    m = re.fullmatch(r"(?:every hour|each hour|hourly)(?: at (?::|minute )(\d{1,2}))?", body)
    if m:
        minute = int(m.group(1) or 0)
        if minute > 59:
            raise _unknown(text, f"minute {minute} is past 59")
        return frozenset({minute}), _ALL_HOURS, _ALL_DAYS, _ALL_MONTHS, _ALL_WEEKDAYS
    m = re.fullmatch(r"(?:every|each) (\d+) hours?", body)
    if m:
        n = int(m.group(1))
        if n == 0 or 24 % n:
            raise _unknown(text, f"{n} hours do not divide the day evenly; use one of 1, 2, 3, 4, 6, 8, 12")
        return frozenset({0}), frozenset(range(0, 24, n)), _ALL_DAYS, _ALL_MONTHS, _ALL_WEEKDAYS

    head, at = _split_time(body, text)
    hour, minute = at if at is not None else (0, 0)
    moment = frozenset({minute}), frozenset({hour})
    if head in ("daily", "every day", "each day", "every night", "nightly"):
        return (*moment, _ALL_DAYS, _ALL_MONTHS, _ALL_WEEKDAYS)
    if head in ("weekdays", "weekday", "every weekday", "on weekdays", "each weekday", "every working day"):
        return (*moment, _ALL_DAYS, _ALL_MONTHS, frozenset(range(1, 6)))
    if head in ("weekends", "weekend", "every weekend", "on weekends", "every weekend day", "each weekend day"):
        return (*moment, _ALL_DAYS, _ALL_MONTHS, frozenset({0, 6}))
    if head in ("monthly", "every month", "each month"):
        return (*moment, frozenset({1}), _ALL_MONTHS, _ALL_WEEKDAYS)
    m = (re.fullmatch(r"(?:on )?(?:the )?([a-z0-9]+) day of (?:the|every|each) month", head)
         or re.fullmatch(r"(?:on )?(?:the )?([a-z0-9]+) of (?:the|every|each) month", head)
         or re.fullmatch(r"(?:every|each) month on the ([a-z0-9]+)", head)
         or re.fullmatch(r"monthly on the ([a-z0-9]+)", head))
    if m:
        if m.group(1) == "last":
            raise _unknown(text, "cron has no 'last day of the month'; use the 28th or a cron expression")
        day = _ordinal(m.group(1))
        if day is None or not 1 <= day <= 31:
            raise _unknown(text, f"'{m.group(1)}' is not a day of the month")
        if day > 28:
            raise _unknown(text, f"the {m.group(1)} does not exist in every month; use a day up to the 28th")
        return (*moment, frozenset({day}), _ALL_MONTHS, _ALL_WEEKDAYS)
    m = re.fullmatch(r"(?:(?:every|each|on) )?(.+)", head)
    days = _days_list(m.group(1)) if m else None
    if days is not None:
        return (*moment, _ALL_DAYS, _ALL_MONTHS, days)
    raise _unknown(text)


# -- time zones --------------------------------------------------------------------------------------

def utc_offset_minutes(tz: str | None) -> int:
    """The standard (non-daylight-saving) offset of ``tz`` from UTC, in minutes; 0 for None and UTC.

    Accepts IANA names (``Europe/Berlin``) and fixed offsets (``UTC+05:30``, ``-08:00``). The standard
    offset comes from two fixed dates of one year, so no clock is read."""
    if tz is None:
        return 0
    if not isinstance(tz, str) or not tz.strip():
        raise ScheduleError("tz must be a time zone name like 'Europe/Berlin' or an offset like 'UTC+02:00'")
    name = tz.strip()
    if name.upper() in ("UTC", "Z", "GMT", "ETC/UTC"):
        return 0
    m = re.fullmatch(r"(?:UTC|GMT)?\s*([+-])(\d{1,2})(?::?(\d{2}))?", name, re.IGNORECASE)
    if m:
        total = int(m.group(2)) * 60 + int(m.group(3) or 0)
        if total > 14 * 60:
            raise ScheduleError(f"tz '{tz}': an offset is at most 14 hours")
        return total if m.group(1) == "+" else -total
    try:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError
    except ImportError:  # pragma: no cover - every supported Python has zoneinfo
        raise ScheduleError(f"tz '{tz}': this Python has no zoneinfo; give an offset like 'UTC+02:00'") from None
    try:
        zone = ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleError(f"tz '{tz}' is not a known time zone (an IANA name like 'Europe/Berlin', "
                            "or an offset like 'UTC+02:00')") from None
    offsets = []
    for month in (1, 7):
        moment = dt.datetime(2025, month, 15, 12, tzinfo=dt.UTC).astimezone(zone)
        utc = moment.utcoffset() or dt.timedelta(0)
        dst = moment.dst() or dt.timedelta(0)
        offsets.append((utc - dst, dst))
    standard = min(offsets, key=lambda pair: abs(pair[1]))[0]
    return int(standard.total_seconds() // 60)


def _sets_of(cron: Cron) -> _Sets:
    return (cron.minutes, cron.hours, _ALL_DAYS if cron.any_day else cron.days, cron.months,
            _ALL_WEEKDAYS if cron.any_weekday else cron.weekdays)


def _shift(sets: _Sets, offset: int, text: str, tz: str | None) -> _Sets:
    """Move the schedule's local times ``offset`` minutes back to UTC (a day boundary moves the days too)."""
    minutes, hours, days, months, weekdays = sets
    if offset == 0:
        return sets
    by_delta: dict[int, set[tuple[int, int]]] = {}
    for hour in hours:
        for minute in minutes:
            total = hour * 60 + minute - offset
            by_delta.setdefault(total // 1440, set()).add(divmod(total % 1440, 60))
    restricted = days != _ALL_DAYS or weekdays != _ALL_WEEKDAYS
    why = f"'{text}' in {tz} cannot be written as one UTC cron expression"
    if restricted and len(by_delta) > 1:
        raise ScheduleError(f"{why}: its times fall on different UTC days; give this schedule in UTC")
    pairs = set().union(*by_delta.values())
    new_hours = frozenset(h for h, _ in pairs)
    new_minutes = frozenset(m for _, m in pairs)
    if {(h, m) for h in new_hours for m in new_minutes} != pairs:
        raise ScheduleError(f"{why}: its minutes differ from hour to hour in UTC; give this schedule in UTC")
    delta = next(iter(by_delta)) if restricted else 0
    if delta and weekdays != _ALL_WEEKDAYS:
        weekdays = frozenset((d + delta) % 7 for d in weekdays)
    if delta and days != _ALL_DAYS:
        moved = {d + delta for d in days}
        if min(moved) < 1 or max(moved) > 28:
            raise ScheduleError(f"{why}: the day of the month moves across a month boundary in UTC; "
                                "give this schedule in UTC")
        days = frozenset(moved)
    return new_minutes, new_hours, days, months, weekdays


# -- rendering ---------------------------------------------------------------------------------------

def _field(values: Iterable[int], full: frozenset[int], low: int, steps: bool = False) -> str:
    """One field: ``*``, ``*/n`` (minutes and hours only: ``*/6`` of weekdays would read oddly), ranges, lists."""
    chosen = sorted(set(values))
    if set(chosen) == full:
        return "*"
    if steps and len(chosen) >= 2:
        step = chosen[1] - chosen[0]
        if chosen[0] == low and step > 1 and chosen == list(range(low, max(full) + 1, step)):
            return f"*/{step}"
    parts: list[str] = []
    run: list[int] = []
    for value in [*chosen, -2]:
        if run and value == run[-1] + 1:
            run.append(value)
            continue
        if run:
            parts.append(f"{run[0]}-{run[-1]}" if len(run) > 2 else ",".join(map(str, run)))
        run = [value]
    return ",".join(parts)


def render_cron(minutes: Iterable[int], hours: Iterable[int], days: Iterable[int], months: Iterable[int],
                weekdays: Iterable[int]) -> str:
    """Five cron fields from value sets: ``*`` for a full set, ``*/n`` for an even step, ranges and lists."""
    return " ".join((_field(minutes, _ALL_MINUTES, 0, True), _field(hours, _ALL_HOURS, 0, True),
                     _field(days, _ALL_DAYS, 1),
                     _field(months, _ALL_MONTHS, 1), _field(weekdays, _ALL_WEEKDAYS, 0)))

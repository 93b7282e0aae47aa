"""Cron expressions and the one rule of what a firing starts (shared by the Worker and the local server).

Tried: parsing errors naming the field; `Cron.matches` with cron's day-of-month OR day-of-week rule,
names and Sunday as 0 and 7; `started_by` / `cron_firing` (the expression Cloudflare names, up to
whitespace and spelling; nothing for another or a broken expression); `due` for one minute;
`latest_due` for catch-ups (most recent missed minute only, bounds exclusive/inclusive, a leap day
years back, a long downtime answered quickly); the idempotency key of a cron start (per minute).
"""

from __future__ import annotations

import datetime as dt
import time

import pytest

from flareflow.engine.cron import (
    CronError,
    cron_firing,
    cron_start_key,
    due,
    latest_due,
    minute_of,
    parse_cron,
    started_by,
)
from flareflow.engine.registry import Registry


def at(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.UTC)


def ts(*args: int) -> float:
    return at(*args).timestamp()


def registry(**schedules: str | None) -> Registry:
    reg = Registry()
    for name, schedule in schedules.items():
        async def fn(run: object) -> None:
            return None

        fn.__qualname__ = name
        reg.register(fn, name.replace("_", "-"), schedule=schedule)
    return reg


@pytest.mark.parametrize(("expression", "needle"), [
    ("0 9 * *", "has 4 fields"),
    ("60 9 * * *", "minute: 60 is outside 0-59"),
    ("0 24 * * *", "hour: 24"),
    ("0 9 0 * *", "day of month: 0"),
    ("0 9 * FOO *", "month: 'FOO' is not a number or a name"),
    ("0 9 * * 1-", "day of week"),
    ("*/0 * * * *", "step '0'"),
    ("0 9 5-1 * *", "runs backwards"),
])
def test_bad_expressions_name_the_field(expression: str, needle: str) -> None:
    with pytest.raises(CronError, match=needle):
        parse_cron(expression)


def test_day_of_month_or_day_of_week() -> None:
    both = parse_cron("0 9 13 * FRI")  # the 13th OR a Friday (cron's rule when both are restricted)
    friday_13th = at(2026, 3, 13, 9, 0)  # 2026-03-13 is a Friday and the 13th
    assert both.matches(friday_13th)
    assert both.matches(at(2026, 3, 20, 9, 0))  # a Friday, not the 13th
    assert both.matches(at(2026, 4, 13, 9, 0))  # the 13th, a Monday
    assert not both.matches(at(2026, 4, 14, 9, 0))  # neither
    assert not both.matches(at(2026, 3, 20, 9, 1))  # right day, wrong minute
    only_day = parse_cron("0 9 13 * *")
    assert only_day.matches(at(2026, 4, 13, 9, 0)) and not only_day.matches(at(2026, 3, 20, 9, 0))
    only_weekday = parse_cron("0 9 * * 5")
    assert only_weekday.matches(at(2026, 3, 20, 9, 0)) and not only_weekday.matches(at(2026, 4, 13, 9, 0))
    assert parse_cron("0 0 * * 7").matches(at(2026, 3, 22)) and parse_cron("0 0 * * 0").matches(at(2026, 3, 22))
    assert parse_cron("*/10 * * * *").matches(at(2031, 3, 4, 5, 10))
    assert not parse_cron("*/10 * * * *").matches(at(2031, 3, 4, 5, 11))


def test_matches_reads_utc() -> None:
    cron = parse_cron("0 9 * * *")
    paris = dt.timezone(dt.timedelta(hours=1))
    assert cron.matches(dt.datetime(2026, 1, 5, 10, 0, tzinfo=paris))
    assert not cron.matches(dt.datetime(2026, 1, 5, 9, 0, tzinfo=paris))


def test_a_firing_starts_the_workflows_with_that_expression() -> None:
    reg = registry(weekly="0 9 * * 1", weekly_named="0  9 * * MON", every_ten="*/10 * * * *",
                   nothing=None, broken="0 9 * *")
    assert [d.name for d in started_by(reg, "0 9 * * 1")] == ["weekly", "weekly-named"]
    assert [d.name for d in started_by(reg, " 0 9 * * MON ")] == ["weekly", "weekly-named"]
    assert [d.name for d in started_by(reg, "*/10 * * * *")] == ["every-ten"]
    assert started_by(reg, "0 0 * * *") == []
    assert started_by(reg, "0 9 * *") == []  # a broken expression fires nothing (the build rejects it)
    assert started_by(reg, "") == []
    when = ts(2031, 3, 4, 5, 10, 42) + 0.5
    starts = cron_firing(reg, "*/10 * * * *", when)
    assert [(s.workflow, s.minute, s.idempotency_key) for s in starts] == [
        ("every-ten", ts(2031, 3, 4, 5, 10), "cron:every-ten:2031-03-04T05:10Z")]
    # a firing starts what its expression names, whatever minute it reports (as Cloudflare does)
    assert [s.workflow for s in cron_firing(reg, "0 9 * * 1", when)] == ["weekly", "weekly-named"]


def test_one_key_per_workflow_and_minute() -> None:
    assert cron_start_key("w", ts(2031, 3, 4, 5, 10)) == "cron:w:2031-03-04T05:10Z"
    assert cron_start_key("w", ts(2031, 3, 4, 5, 10, 59) + 0.999) == "cron:w:2031-03-04T05:10Z"
    assert cron_start_key("w", ts(2031, 3, 4, 5, 11)) == "cron:w:2031-03-04T05:11Z"
    assert cron_start_key("v", ts(2031, 3, 4, 5, 10)) != cron_start_key("w", ts(2031, 3, 4, 5, 10))
    assert minute_of(ts(2031, 3, 4, 5, 10, 30)) == ts(2031, 3, 4, 5, 10)


def test_due_in_a_minute() -> None:
    reg = registry(weekly="0 9 * * 1", every_ten="*/10 * * * *", thirteenth_or_friday="0 9 13 * 5", nothing=None)
    assert [s.workflow for s in due(reg, ts(2026, 4, 13, 9, 0, 30))] == ["every-ten", "thirteenth-or-friday", "weekly"]
    assert [s.workflow for s in due(reg, ts(2026, 4, 14, 9, 0))] == ["every-ten"]
    assert [s.workflow for s in due(reg, ts(2026, 3, 20, 9, 0))] == ["every-ten", "thirteenth-or-friday"]
    assert due(reg, ts(2026, 4, 13, 9, 1)) == []
    assert due(reg, ts(2026, 4, 13, 9, 0))[0].idempotency_key == "cron:every-ten:2026-04-13T09:00Z"


def test_latest_due_is_the_most_recent_missed_minute() -> None:
    ten = parse_cron("*/10 * * * *")
    assert latest_due(ten, ts(2031, 3, 4, 5, 0), ts(2031, 3, 4, 7, 34, 50)) == ts(2031, 3, 4, 7, 30)
    assert latest_due(ten, ts(2031, 3, 4, 7, 30), ts(2031, 3, 4, 7, 39)) is None  # `after` is exclusive
    assert latest_due(ten, ts(2031, 3, 4, 7, 29), ts(2031, 3, 4, 7, 30)) == ts(2031, 3, 4, 7, 30)  # `upto` is not
    assert latest_due(ten, ts(2031, 3, 4, 7, 30), ts(2031, 3, 4, 7, 0)) is None  # time went backwards
    weekly = parse_cron("0 9 * * 1")
    assert latest_due(weekly, ts(2026, 1, 1), ts(2026, 3, 1)) == ts(2026, 2, 23, 9, 0)
    assert latest_due(weekly, ts(2026, 2, 23, 9, 0), ts(2026, 3, 1)) is None
    either = parse_cron("0 9 13 * 5")
    assert latest_due(either, ts(2026, 4, 1), ts(2026, 4, 16)) == ts(2026, 4, 13, 9, 0)
    assert latest_due(either, ts(2026, 4, 1), ts(2026, 4, 12)) == ts(2026, 4, 10, 9, 0)  # a Friday


def test_latest_due_years_back_is_quick() -> None:
    leap = parse_cron("30 12 29 2 *")
    began = time.perf_counter()
    assert latest_due(leap, ts(2020, 1, 1), ts(2031, 1, 1)) == ts(2028, 2, 29, 12, 30)
    assert latest_due(leap, ts(2028, 2, 29, 12, 30), ts(2031, 1, 1)) is None
    assert latest_due(parse_cron("* * * * *"), ts(2000, 1, 1), ts(2031, 1, 1, 0, 0, 5)) == ts(2031, 1, 1)
    assert time.perf_counter() - began < 0.5

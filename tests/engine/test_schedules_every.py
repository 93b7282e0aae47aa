"""`every()` and the near-miss phrases a new user writes: a phrase that is a schedule by itself is kept
as written, abbreviations and a time without ``at`` are read, and every error quotes the user's own text
(never the text with ``every`` added)."""

from __future__ import annotations

import pytest

from flareflow import Registry, Run, every, workflow
from flareflow.engine.cron import parse_cron, same_schedule
from flareflow.engine.schedules import ScheduleError, compile_schedule


@pytest.mark.parametrize(("phrase", "text", "cron"), [
    ("weekdays at 18:30", "weekdays at 18:30", "30 18 * * 1-5"),   # a form of its own: "every" is not added
    ("daily at 2am", "daily at 2am", "0 2 * * *"),
    ("hourly", "hourly", "0 * * * *"),
    ("first day of the month at 00:00", "first day of the month at 00:00", "0 0 1 * *"),
    ("the 15th of every month at noon", "the 15th of every month at noon", "0 12 15 * *"),
    ("0 9 * * 1", "0 9 * * 1", "0 9 * * 1"),                       # a cron expression, as written
    ("0 9 * * MON", "0 9 * * MON", "0 9 * * MON"),
    ("Monday at 9am", "every Monday at 9am", "0 9 * * 1"),          # reads the same with "every": added
    ("15 minutes", "every 15 minutes", "*/15 * * * *"),             # a number and a word: a phrase, not cron
    ("every 6 hours", "every 6 hours", "0 */6 * * *"),
    ("  weekdays at 18:30 ", "weekdays at 18:30", "30 18 * * 1-5"),
])
def test_every_adds_every_only_where_the_phrase_needs_it(phrase: str, text: str, cron: str) -> None:
    assert every(phrase) == text
    assert compile_schedule(every(phrase)) == cron


@pytest.mark.parametrize(("phrase", "cron"), [
    ("every 15 mins", "*/15 * * * *"),
    ("every 15 min", "*/15 * * * *"),
    ("every min", "* * * * *"),
    ("every 6 hrs", "0 */6 * * *"),
    ("every 1 hr", "0 * * * *"),
    ("every hr at :30", "30 * * * *"),
    ("weekday at 18:30", "30 18 * * 1-5"),
    ("weekend at 10am", "0 10 * * 0,6"),
    ("every Monday 9am", "0 9 * * 1"),
    ("Monday 9:30 pm", "30 21 * * 1"),
    ("every day 18:30", "30 18 * * *"),
    ("mon-fri 7:15am", "15 7 * * 1-5"),
    ("daily at 2am", "0 2 * * *"),
    ("the 15th of every month noon", "0 12 15 * *"),
])
def test_near_misses_compile_to_the_exact_cron(phrase: str, cron: str) -> None:
    compiled = compile_schedule(phrase)
    assert compiled == cron
    assert same_schedule(parse_cron(compiled), parse_cron(cron))


@pytest.mark.parametrize(("phrase", "via_every"), [("15 mins", "every 15 mins"), ("weekday at 18:30", None),
                                                  ("Monday 9am", "every Monday 9am"), ("6 hrs", "every 6 hrs")])
def test_every_takes_the_near_misses_too(phrase: str, via_every: str | None) -> None:
    assert every(phrase) == (via_every or f"every {phrase}")
    compile_schedule(every(phrase))


@pytest.mark.parametrize(("phrase", "needle"), [
    ("30 secs", "at most once a minute"),
    ("every 30 sec", "at most once a minute"),
    ("7 minutes", "do not divide the hour"),
    ("every 7 mins", "do not divide the hour"),
    ("5 hrs", "do not divide the day"),
    ("Monday at 25:00", "hour 25"),
    ("daily at nine", "is not a time"),
    ("0 9 * *", "has 4 fields"),               # meant as cron: the cron's own complaint, not "every 0 9 * *"
    ("the 31st of every month", "does not exist in every month"),
    ("whenever", "accepted forms"),
    ("other tuesday", "accepted forms"),
])
def test_an_every_error_quotes_what_the_user_wrote(phrase: str, needle: str) -> None:
    with pytest.raises(ScheduleError) as caught:
        every(phrase)
    message = str(caught.value)
    assert needle in message
    assert f"'{phrase}'" in message
    if not phrase.startswith("every"):
        assert f"'every {phrase}'" not in message


def test_every_refuses_an_empty_phrase() -> None:
    with pytest.raises(ScheduleError, match="every\\(\\) takes a phrase"):
        every("  ")


def test_a_phrase_kept_as_written_still_takes_its_time_zone() -> None:
    registry = Registry()

    @workflow("evening", schedule=every("weekday at 18:30"), tz="America/New_York", registry=registry)
    async def evening(run: Run) -> None:
        return None

    defn = registry.get("evening")
    assert (defn.schedule, defn.schedule_text) == ("30 23 * * 1-5", "every weekday at 18:30")

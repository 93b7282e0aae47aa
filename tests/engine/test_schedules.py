"""Schedules in plain English: every phrase of the issue, the rejected ones, time zones, next fire times,
and what a user sees (`flareflow workflows` / `flareflow validate`, the build's cron triggers)."""

from __future__ import annotations

import datetime as dt
import itertools
import tomllib
from pathlib import Path

import pytest

from flareflow import Registry, Run, WorkflowDefinitionError, every, workflow
from flareflow.engine.cron import next_fires, parse_cron, same_schedule
from flareflow.engine.schedules import ACCEPTED, ScheduleError, compile_schedule, utc_offset_minutes
from tests.build.helpers import assert_ok, ff

PHRASES = {
    "every 15 minutes": "*/15 * * * *",
    "every minute": "* * * * *",
    "every 5 minutes": "*/5 * * * *",
    "every 30 minutes": "*/30 * * * *",
    "every hour": "0 * * * *",
    "hourly": "0 * * * *",
    "every hour at :30": "30 * * * *",
    "every 6 hours": "0 */6 * * *",
    "daily at 02:00": "0 2 * * *",
    "daily": "0 0 * * *",
    "every day at 2:30pm": "30 14 * * *",
    "every day at noon": "0 12 * * *",
    "every night at midnight": "0 0 * * *",
    "every Monday at 9am": "0 9 * * 1",
    "Monday at 9am": "0 9 * * 1",
    "every monday at 9:05 AM": "5 9 * * 1",
    "every Sunday at 12am": "0 0 * * 0",
    "every Saturday at 12pm": "0 12 * * 6",
    "Monday and Thursday at 18:00": "0 18 * * 1,4",
    "Mondays, Wednesdays and Fridays at 7am": "0 7 * * 1,3,5",
    "mon-fri at 7:15am": "15 7 * * 1-5",
    "weekdays at 18:30": "30 18 * * 1-5",
    "every weekday at 6pm": "0 18 * * 1-5",
    "weekends at 10am": "0 10 * * 0,6",
    "first day of the month at 00:00": "0 0 1 * *",
    "the 1st of every month at 03:00": "0 3 1 * *",
    "the 15th of every month at noon": "0 12 15 * *",
    "every month on the 2nd at 8am": "0 8 2 * *",
    "monthly": "0 0 1 * *",
}


@pytest.mark.parametrize(("phrase", "cron"), sorted(PHRASES.items()))
def test_every_phrase_compiles_to_the_cron_a_user_would_write(phrase: str, cron: str) -> None:
    compiled = compile_schedule(phrase)
    assert compiled == cron
    assert same_schedule(parse_cron(compiled), parse_cron(cron))  # and Cloudflare's parser rules accept it


@pytest.mark.parametrize(("phrase", "needle"), [
    ("every fortnight", "accepted forms"),
    ("sometimes", "accepted forms"),
    ("at 9am", "say how often"),
    ("every 7 minutes", "do not divide the hour"),
    ("every 5 hours", "do not divide the day"),
    ("every 30 seconds", "at most once a minute"),
    ("daily at 25:00", "hour 25"),
    ("daily at 9:75", "minute 75"),
    ("daily at 13pm", "12-hour time"),
    ("daily at nine", "is not a time"),
    ("last day of the month at 00:00", "no 'last day of the month'"),
    ("the 31st of every month", "does not exist in every month"),
    ("", "non-empty"),
])
def test_a_phrase_that_does_not_parse_is_quoted_with_what_to_write(phrase: str, needle: str) -> None:
    with pytest.raises(ScheduleError) as caught:
        compile_schedule(phrase)
    message = str(caught.value)
    assert needle in message
    if phrase:
        assert f"'{phrase}'" in message
    if needle == "accepted forms":
        assert all(form in message for form in ACCEPTED)


def test_a_cron_expression_passes_through_as_written() -> None:
    assert compile_schedule("0  9 * * MON") == "0  9 * * MON"  # the build normalises and checks it field by field
    assert compile_schedule("0 9 * *") == "0 9 * *"  # malformed cron stays cron: the build says "has 4 fields"
    with pytest.raises(ScheduleError, match="has 4 fields"):
        compile_schedule("0 9 * *", "Europe/Berlin")


@pytest.mark.parametrize(("phrase", "tz", "cron"), [
    ("every Monday at 9am", "Europe/Berlin", "0 8 * * 1"),          # CET, +01:00 (standard time)
    ("every Monday at 00:30", "Europe/Berlin", "30 23 * * 0"),      # the day moves back with the time
    ("daily at 00:30", "Europe/Berlin", "30 23 * * *"),
    ("weekdays at 18:30", "America/New_York", "30 23 * * 1-5"),     # EST, -05:00
    ("weekdays at 20:00", "America/New_York", "0 1 * * 2-6"),       # past midnight UTC: Tuesday..Saturday
    ("daily at 09:00", "Asia/Kolkata", "30 3 * * *"),               # +05:30
    ("every 15 minutes", "Asia/Kolkata", "*/15 * * * *"),
    ("every hour", "Asia/Kolkata", "30 * * * *"),
    ("daily at 9am", "Australia/Sydney", "0 23 * * *"),             # AEST +10:00 (its summer is January)
    ("0 9 * * 1", "UTC+02:00", "0 7 * * 1"),
    ("daily at 9am", "UTC", "0 9 * * *"),
])
def test_a_time_zone_converts_with_its_standard_offset(phrase: str, tz: str, cron: str) -> None:
    assert compile_schedule(phrase, tz) == cron


def test_standard_offsets_need_no_clock() -> None:
    assert utc_offset_minutes("Europe/Berlin") == 60
    assert utc_offset_minutes("America/Los_Angeles") == -480
    assert utc_offset_minutes("Australia/Sydney") == 600
    assert utc_offset_minutes("-08:00") == -480


@pytest.mark.parametrize(("phrase", "tz", "needle"), [
    ("first day of the month at 00:30", "Europe/Berlin", "month boundary"),
    ("daily at 9am", "Mars/Olympus", "not a known time zone"),
    ("daily at 9am", "UTC+15", "at most 14 hours"),
])
def test_a_conversion_cron_cannot_say_is_refused(phrase: str, tz: str, needle: str) -> None:
    with pytest.raises(ScheduleError, match=needle):
        compile_schedule(phrase, tz)


def test_next_fires_are_the_next_three_minutes_the_schedule_fires() -> None:
    monday = dt.datetime(2026, 12, 7, 9, 0, tzinfo=dt.UTC).timestamp()
    fires = next_fires(parse_cron("0 9 * * 1"), monday)  # strictly after: the next three Mondays
    assert [dt.datetime.fromtimestamp(t, tz=dt.UTC).date().isoformat() for t in fires] == [
        "2026-12-14", "2026-12-21", "2026-12-28"]
    quarter = next_fires(parse_cron("*/15 * * * *"), monday + 1)
    assert [t - monday for t in quarter] == [900, 1800, 2700]
    leap = next_fires(parse_cron("0 0 29 2 *"), monday, 1)
    assert dt.datetime.fromtimestamp(leap[0], tz=dt.UTC).date().isoformat() == "2028-02-29"


def test_workflow_accepts_a_phrase_and_keeps_what_the_author_wrote() -> None:
    registry = Registry()

    @workflow("weekly", schedule=every("Monday at 9am"), tz="Europe/Berlin", registry=registry)
    async def weekly(run: Run) -> None:
        return None

    defn = registry.get("weekly")
    assert (defn.schedule, defn.schedule_text, defn.tz) == ("0 8 * * 1", "every Monday at 9am", "Europe/Berlin")
    assert registry.manifest()[0]["schedule"] == "0 8 * * 1"
    assert registry.manifest()[0]["schedule_text"] == "every Monday at 9am"

    with pytest.raises(WorkflowDefinitionError, match=r"workflow 'nope' at .*unrecognised schedule 'whenever'"):
        @workflow("nope", schedule="whenever", registry=registry)
        async def nope(run: Run) -> None:
            return None


PROJECT = {
    "pyproject.toml": '[project]\nname = "sched"\nversion = "0.1.0"\n\n[tool.flareflow]\nworkflows = ["workflows"]\n',
    "workflows/jobs.py": '''
from flareflow import Run, workflow


@workflow("weekly-report", schedule="every Monday at 9am")
async def weekly(run: Run) -> str:
    return "sent"


@workflow("evening", schedule="weekdays at 18:30", tz="Europe/Berlin")
async def evening(run: Run) -> str:
    return "closed"
''',
}


def write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text, encoding="utf-8")
    return root


def test_the_cli_prints_each_schedule_as_cron_with_its_next_three_fires(tmp_path: Path) -> None:
    root = write(tmp_path, PROJECT)
    listed = ff("workflows", cwd=root)
    assert_ok(listed)
    text = " ".join(listed.stdout.split())
    assert "0 9 * * 1 (every Monday at 9am)" in text
    assert "30 17 * * 1-5 (weekdays at 18:30, Europe/Berlin)" in text
    assert "Next fire times: evening: 20" in text and " UTC weekly-report: 20" in text
    checked = ff("validate", cwd=root)
    assert_ok(checked)
    lines = [line.strip() for line in checked.stdout.splitlines()]
    assert lines[-1].startswith("✓") and lines[-1].endswith("2 workflow(s): evening, weekly-report")
    assert "schedule evening: 30 17 * * 1-5 (weekdays at 18:30, Europe/Berlin) · next 20" in lines[0]
    weekly = next(line for line in lines if line.startswith("schedule weekly-report:"))
    stamps = weekly.split("· next ", 1)[1].removesuffix(" UTC").split(", ")
    assert len(stamps) == 3
    moments = [dt.datetime.strptime(s, "%Y-%m-%d %H:%M").replace(tzinfo=dt.UTC) for s in stamps]
    assert all(m.isoweekday() == 1 and (m.hour, m.minute) == (9, 0) for m in moments)
    assert [(b - a).days for a, b in itertools.pairwise(moments)] == [7, 7]


def test_a_bad_phrase_fails_validate_with_one_line_naming_the_workflow(tmp_path: Path) -> None:
    root = write(tmp_path, {**PROJECT, "workflows/bad.py": (
        'from flareflow import Run, workflow\n\n\n@workflow("bad", schedule="every other tuesday")\n'
        'async def bad(run: Run) -> None:\n    return None\n')})
    result = ff("validate", cwd=root)
    assert result.returncode == 1
    assert "workflow 'bad'" in result.stderr and "unrecognised schedule 'every other tuesday'" in result.stderr
    assert "accepted forms" in result.stderr and "Traceback" not in result.stderr


def test_a_phrase_missing_its_every_is_read_as_english_and_the_fix_offered(tmp_path: Path) -> None:
    # "15 minutes" starts with a digit like cron, but cron has no word longer than MON: it is a phrase
    for phrase, fix in (("15 minutes", "every 15 minutes"), ("2 hours", "every 2 hours")):
        with pytest.raises(ScheduleError) as caught:
            compile_schedule(phrase)
        assert f"unrecognised schedule '{phrase}' (did you mean '{fix}'?)" == str(caught.value)
    assert compile_schedule("0 9 * * MON-FRI") == "0 9 * * MON-FRI"  # cron's own names stay cron
    root = write(tmp_path, {**PROJECT, "workflows/bad.py": (
        'from flareflow import Run, workflow\n\n\n@workflow("poll", schedule="15 minutes")\n'
        'async def poll(run: Run) -> None:\n    return None\n')})
    result = ff("validate", cwd=root)
    assert result.returncode == 1, result.stdout
    assert "workflow 'poll'" in result.stderr and "did you mean 'every 15 minutes'?" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_the_build_writes_the_compiled_crons_as_triggers(tmp_path: Path) -> None:
    root = write(tmp_path, PROJECT)
    assert_ok(ff("build", cwd=root))
    config = tomllib.loads((root / ".flareflow" / "build" / "wrangler.toml").read_text(encoding="utf-8"))
    assert sorted(config["triggers"]["crons"]) == ["0 9 * * 1", "30 17 * * 1-5"]

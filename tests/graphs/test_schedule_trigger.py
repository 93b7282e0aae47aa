"""A graph's ``trigger: {type: schedule}`` reads its phrase in ``timezone`` like ``@workflow(tz=...)``, and
a phrase or zone the registry would refuse is one located ``flareflow validate`` line at the graph's file."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.helpers import assert_one_error_line, describe, ff

from .helpers import make_project

GRAPH = """\
name: evening
trigger: {{type: schedule, schedule: "{phrase}", timezone: {zone}}}
tasks:
  - {{id: s, type: sleep, duration: 1s}}
"""


def test_the_timezone_of_a_schedule_trigger_is_applied(tmp_path: Path) -> None:
    root = make_project(tmp_path, {"workflows/evening.yaml": GRAPH.format(phrase="weekdays at 18:30",
                                                                          zone="America/New_York")})
    result = ff("workflows", "--json", cwd=root)
    assert result.returncode == 0, describe(result)
    (entry,) = [w for w in json.loads(result.stdout) if w["name"] == "evening"]
    assert entry["schedule"] == "30 23 * * 1-5", entry  # 18:30 at New York's standard offset is 23:30 UTC
    assert "30 23 * * 1-5" in ff("validate", cwd=root).stdout


def test_a_bad_phrase_is_located_at_the_graph_file(tmp_path: Path) -> None:
    root = make_project(tmp_path, {"workflows/evening.yaml": GRAPH.format(phrase="weekdayz at 18:30", zone="UTC")})
    assert_one_error_line(ff("validate", cwd=root), "workflows/evening.yaml:2 trigger.schedule:",
                          "'weekdayz at 18:30'", "accepted forms")


def test_a_bad_zone_and_tz_for_timezone_are_located(tmp_path: Path) -> None:
    bad_zone = GRAPH.format(phrase="daily at 02:00", zone="Mars/Olympus")
    root = make_project(tmp_path, {"workflows/evening.yaml": bad_zone})
    assert_one_error_line(ff("validate", cwd=root), "evening.yaml:2 trigger.timezone:", "Mars/Olympus")
    (root / "workflows/evening.yaml").write_text(GRAPH.format(phrase="daily at 02:00", zone="UTC")
                                                 .replace("timezone:", "tz:"), encoding="utf-8")
    assert_one_error_line(ff("validate", cwd=root), "trigger.tz: unknown field", 'did you mean "timezone"')

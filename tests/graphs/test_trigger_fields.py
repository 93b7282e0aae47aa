"""A trigger field its type does not use (``cron`` on a ``manual`` trigger) would be silently ignored: it
is a located ``flareflow validate`` error, in the published schema too."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema_rs

import flareflow.graphs
from tests.cli.helpers import describe, ff

SCHEMA = json.loads((Path(flareflow.graphs.__file__).parent / "schema.json").read_text(encoding="utf-8"))


def test_a_trigger_field_its_type_does_not_use_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "trig.yaml").write_text(
        "name: trig\ntrigger:\n  type: manual\n  cron: '0 3 * * *'\ntasks:\n  - {id: a, type: sleep, duration: 1s}\n",
        encoding="utf-8")
    (tmp_path / "both.yaml").write_text(
        "name: both\ntrigger: {type: schedule, cron: '0 3 * * *', schedule: 'daily at 3am', event: go}\n"
        "tasks:\n  - {id: a, type: sleep, duration: 1s}\n", encoding="utf-8")
    result = ff("validate", "trig.yaml", "both.yaml", cwd=tmp_path)
    assert result.returncode == 1, describe(result)
    assert result.stderr.splitlines() == [
        'error: trig.yaml:4 trigger.cron: a manual trigger does not use "cron", it would be ignored (a schedule '
        "trigger does: type: schedule)",
        'error: both.yaml:2 trigger.event: a schedule trigger does not use "event", it would be ignored (an event '
        "trigger does: type: event)",
        'error: both.yaml:2 trigger.schedule: give "cron" or "schedule", not both (only one is used)',
    ], result.stderr


def test_the_published_schema_refuses_trigger_fields_its_type_does_not_use() -> None:
    validator = jsonschema_rs.validator_for(SCHEMA)
    sleep = {"id": "a", "type": "sleep", "duration": "1s"}
    assert not validator.is_valid({"name": "x", "trigger": {"type": "manual", "cron": "0 3 * * *"}, "tasks": [sleep]})
    assert not validator.is_valid({"name": "x", "trigger": {"type": "schedule", "cron": "0 3 * * *",
                                                            "schedule": "daily at 3am"}, "tasks": [sleep]})
    assert validator.is_valid({"name": "x", "trigger": {"type": "schedule", "cron": "0 3 * * *", "timezone": "UTC"},
                               "tasks": [sleep]})

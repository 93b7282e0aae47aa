"""run.ai through the ``flareflow`` command: a recorded call is never paid for twice (SIGKILL, then
``flareflow resume``), the layered config (pyproject < ``flareflow ai config push`` < the call), and
``flareflow ai log`` on the local state directory."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.helpers import Live, describe, ff

from .project import write_project
from .standin import StandIn, standin_server


@pytest.fixture
def standin() -> Iterator[StandIn]:
    with standin_server() as server:
        yield server


def test_a_recorded_call_is_replayed_after_a_kill_not_asked_again(tmp_path: Path, standin: StandIn) -> None:
    root = write_project(tmp_path / "p", standin.url)
    with Live("run", "slow-chain", "--input", '"once"', "--json", cwd=root) as live:
        done = live.wait_event(lambda e: e["type"] == "step.completed", what="the AI step's completion")
        assert done["name"] == "ai.generate" and done["result"]["value"] == "answer to: once"
        live.wait_event(lambda e: e["type"] == "run.waiting", what="the sleep")
        live.kill()  # SIGKILL mid-sleep: the AI call is recorded, the run unfinished
    assert len(standin.chat_calls()) == 1
    resumed = ff("resume", "--json", cwd=root, timeout=60)
    assert resumed.returncode == 0, describe(resumed)
    events = [json.loads(line) for line in resumed.stdout.splitlines() if line.startswith("{")]
    finished = [e for e in events if e["type"] == "run.completed"]
    assert finished and finished[0]["output"] == {"text": "answer to: once"}
    assert len(standin.chat_calls()) == 1  # replayed from the record: no second request


def test_config_layers_and_the_local_call_log(tmp_path: Path, standin: StandIn) -> None:
    extra = 'temperature = 0.1\nmax_tokens = 64\nmodels = { fast = { local = "local-fast", cloudflare = "@cf/x" } }\n'
    root = write_project(tmp_path / "p", standin.url, extra=extra)
    first = ff("run", "tuned", "--input", '"t"', "--json", cwd=root, timeout=60)
    assert first.returncode == 0, describe(first)
    plain, mapped = (r["body"] for r in standin.chat_calls())
    assert (plain["model"], plain["temperature"], plain["max_tokens"]) == ("stand-in-model", 0.1, 64)
    assert (mapped["model"], mapped["temperature"], mapped["max_tokens"]) == ("local-fast", 0.9, 64)

    document = tmp_path / "ai.json"
    document.write_text(json.dumps({"temperature": 0.5, "model": "pushed-model"}))
    pushed = ff("ai", "config", "push", str(document), cwd=root)
    assert pushed.returncode == 0, describe(pushed)
    second = ff("run", "tuned", "--input", '"t"', "--json", cwd=root, timeout=60)
    assert second.returncode == 0, describe(second)
    plain, mapped = (r["body"] for r in standin.chat_calls()[2:])
    assert (plain["model"], plain["temperature"], plain["max_tokens"]) == ("pushed-model", 0.5, 64)
    assert (mapped["model"], mapped["temperature"]) == ("local-fast", 0.9)  # the call's own arguments win

    document.write_text(json.dumps({"temperature": "hot"}))
    refused = ff("ai", "config", "push", str(document), cwd=root)
    assert refused.returncode != 0 and "config:ai.temperature" in refused.stderr

    log = ff("ai", "log", "--json", cwd=root)
    assert log.returncode == 0, describe(log)
    calls = json.loads(log.stdout)
    assert [c["model"] for c in calls] == ["local-fast", "pushed-model", "local-fast", "stand-in-model"]
    assert all(c["cached"] is False and c["step"].startswith("ai.generate#") for c in calls)
    only = json.loads(ff("ai", "log", "--json", "--model", "pushed-model", cwd=root).stdout)
    assert len(only) == 1
    table = ff("ai", "log", cwd=root)
    assert table.returncode == 0 and "pushed-model" in table.stdout

"""run.ai on the embedded runtime, driven through the ``flareflow`` command against the stand-in server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cli.helpers import describe, ff

from .project import write_project
from .standin import StandIn, standin_server


@pytest.fixture
def standin() -> Iterator[StandIn]:
    with standin_server() as server:
        yield server


def run_json(root: Path, workflow: str, value: Any) -> tuple[int, list[dict[str, Any]]]:
    result = ff("run", workflow, "--input", json.dumps(value), "--json", cwd=root, timeout=60)
    events = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    return result.returncode, events


def output(events: list[dict[str, Any]]) -> Any:
    done = [e for e in events if e["type"] == "run.completed"]
    assert done, events
    return done[-1]["output"]


def test_cache_hit_costs_no_request_and_cache_false_does(tmp_path: Path, standin: StandIn) -> None:
    root = write_project(tmp_path / "p", standin.url)
    code, events = run_json(root, "twice", "hello")
    assert code == 0, events
    assert output(events) == {"sources": ["ai", "cache", "ai"], "text": "answer to: hello"}
    assert len(standin.chat_calls()) == 2  # the cache hit cost nothing
    completed = [e for e in events if e["type"] == "step.completed"]
    assert [e["result"]["source"] for e in completed] == ["ai", "cache", "ai"]  # the event says so
    # a second run: the cached answer serves its first two calls
    code, events = run_json(root, "twice", "hello")
    assert output(events)["sources"] == ["cache", "cache", "ai"]
    assert len(standin.chat_calls()) == 3


def test_rate_limit_and_server_error_are_retried_a_refusal_is_not(tmp_path: Path, standin: StandIn) -> None:
    root = write_project(tmp_path / "p", standin.url)
    standin.script = ["rate", "fail", "ok"]
    code, events = run_json(root, "one", "x")
    assert code == 0 and output(events) == "answer to: x"
    assert [e["type"] for e in events].count("step.retrying") == 2
    assert standin.calls == 3
    standin.script = ["refuse"]
    code, events = run_json(root, "one", "y")
    assert code != 0
    failed = [e for e in events if e["type"] == "step.failed"]
    assert failed and "HTTP 400" in failed[0]["error"]["message"] and "model not found" in failed[0]["error"]["message"]
    assert not [e for e in events if e["type"] == "step.retrying"]
    assert standin.calls == 4  # one request, never retried


def test_malformed_answer_is_retried(tmp_path: Path, standin: StandIn) -> None:
    root = write_project(tmp_path / "p", standin.url)
    standin.script = ["malformed", "ok"]
    code, events = run_json(root, "one", "z")
    assert code == 0 and output(events) == "answer to: z"
    retrying = [e for e in events if e["type"] == "step.retrying"]
    assert len(retrying) == 1 and "not JSON" in retrying[0]["error"]["message"]


def test_schema_answers_are_validated_and_re_asked(tmp_path: Path, standin: StandIn) -> None:
    root = write_project(tmp_path / "p", standin.url)
    standin.script = ['{"n": "three"}', '```json\n{"n": 3}\n```']
    code, events = run_json(root, "shaped", "count")
    assert code == 0 and output(events) == {"n": 3}
    calls = standin.chat_calls()
    assert len(calls) == 2
    assert calls[0]["body"]["response_format"] == {"type": "json_object"}
    assert "not valid" in calls[1]["body"]["messages"][-1]["content"]  # the re-ask quotes the failure
    assert "$.n" in calls[1]["body"]["messages"][-1]["content"]
    standin.script = ["nope", "[1]", '{"m": 1}']  # three wrong answers: schema_retries = 2
    code, events = run_json(root, "shaped", "count")
    assert code != 0
    failed = [e for e in events if e["type"] == "step.failed"]
    assert failed and "failed its schema 3 times" in failed[0]["error"]["message"]
    assert "required" in failed[0]["error"]["message"] or "n" in failed[0]["error"]["message"]
    assert not [e for e in events if e["type"] == "step.retrying"]  # non-retryable


def test_embeddings(tmp_path: Path, standin: StandIn) -> None:
    root = write_project(tmp_path / "p", standin.url)
    code, events = run_json(root, "vectors", ["ab", "cde"])
    assert code == 0, events
    assert output(events) == {"many": [[2.0, 0.0, 0.5], [3.0, 1.0, 0.5]], "single": [2.0, 0.0, 0.5]}
    assert [r["body"]["model"] for r in standin.requests] == ["stand-in-embed", "stand-in-embed"]


def test_no_provider_is_a_clear_error_naming_the_setting(tmp_path: Path) -> None:
    root = write_project(tmp_path / "p", None)
    code, events = run_json(root, "one", "x")
    assert code != 0
    failed = [e for e in events if e["type"] == "step.failed"]
    assert failed and "tool.flareflow.ai.base_url" in failed[0]["error"]["message"]
    assert not [e for e in events if e["type"] == "step.retrying"]


def test_bad_setting_is_refused_naming_the_key(tmp_path: Path) -> None:
    root = write_project(tmp_path / "p", "http://127.0.0.1:9/v1", extra="cache_ttl = 5\n")
    result = ff("runs", "list", cwd=root)
    assert result.returncode != 0, describe(result)
    assert "tool.flareflow.ai" in result.stderr and "cache_ttl" in result.stderr


def test_parallel_calls_and_their_log(tmp_path: Path, standin: StandIn) -> None:
    root = write_project(tmp_path / "p", standin.url)
    code, events = run_json(root, "fanned", ["a", "b", "c"])
    assert code == 0, events
    assert output(events) == ["answer to: a", "answer to: b", "answer to: c"]
    steps = sorted(e["step"] for e in events if e["type"] == "step.completed")
    assert steps == ["0.0/ai.generate#1", "0.1/ai.generate#1", "0.2/ai.generate#1"]
    logged = json.loads(ff("ai", "log", "--json", cwd=root).stdout)
    assert sorted(c["step"] for c in logged) == steps

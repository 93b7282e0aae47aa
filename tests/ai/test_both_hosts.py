"""AI steps on both hosts (``local`` = ``flareflow serve --local``; ``workerd`` = ``flareflow serve`` on the
real-workerd harness), against the loopback stand-in model server (`tests.ai.standin`, a test double):
``POST /api/workflow`` (authenticated; the second identical prompt answered from the cache -- the
state dir's KV files locally, KV on workerd -- without a request), the call log over ``GET /ai/calls``
(the local index / D1) and ``flareflow ai log --url``, a bad provider answer failing the run at once.

On workerd the provider is the OpenAI-compatible server through the Worker's ``fetch`` (base_url set);
the Workers AI binding itself has no stand-in in the harness yet.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.hosts import HOSTS, make_server
from tests.cli.helpers import ff

from .project import write_project
from .standin import StandIn, standin_server


@pytest.fixture(scope="module")
def standin() -> Iterator[StandIn]:
    with standin_server() as server:
        yield server


@pytest.fixture(scope="module", params=sorted(HOSTS))
def server(request: pytest.FixtureRequest, standin: StandIn, tmp_path_factory: pytest.TempPathFactory) -> Any:
    kind = str(request.param)
    srv = make_server(kind, tmp_path_factory.mktemp(f"ai-{kind}"), lambda root: write_project(root, standin.url))
    yield srv
    srv.stop()


def post(server: Any, prompt: str, **extra: Any) -> httpx.Response:
    return httpx.post(f"{server.url}/api/workflow", json={"prompt": prompt, **extra}, headers=server.headers,
                      timeout=60)


def test_api_workflow_answers_then_serves_the_cache(server: Any, standin: StandIn) -> None:
    before = len(standin.chat_calls())
    prompt = f"hello from {server.kind}"
    first = post(server, prompt)
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["result"] == f"answer to: {prompt}" and body["source"] == "ai" and body["model"] == "stand-in-model"
    second = post(server, prompt)
    assert second.status_code == 200, second.text
    assert second.json()["source"] == "cache" and second.json()["result"] == body["result"]
    assert second.json()["run_id"] != body["run_id"]
    assert len(standin.chat_calls()) == before + 1  # the cache hit cost no request

    # the call log: both calls, newest first; filtered by run and by model
    calls = httpx.get(f"{server.url}/ai/calls", params={"run": body["run_id"]}, headers=server.headers).json()["calls"]
    assert len(calls) == 1
    call = calls[0]
    assert call["cached"] is False and call["provider"] == "openai" and call["model"] == "stand-in-model"
    assert call["step"] == "generate#1" and call["prompt_tokens"] == 7 and call["error"] is None
    assert len(call["prompt_hash"]) == 64 and call["latency_ms"] >= 0
    hit = httpx.get(f"{server.url}/ai/calls", params={"run": second.json()["run_id"]},
                    headers=server.headers).json()["calls"]
    assert [c["cached"] for c in hit] == [True] and hit[0]["prompt_hash"] == call["prompt_hash"]
    by_model = httpx.get(f"{server.url}/ai/calls", params={"model": "stand-in-model", "limit": 2},
                         headers=server.headers).json()["calls"]
    assert [c["run_id"] for c in by_model] == [second.json()["run_id"], body["run_id"]]
    assert httpx.get(f"{server.url}/ai/calls", params={"model": "other"}, headers=server.headers).json() == {
        "calls": []}

    # the run is an ordinary run: its step event says where the answer came from
    events = httpx.get(f"{server.url}/runs/{second.json()['run_id']}/events",
                       headers={**server.headers, "accept": "application/json"}).json()["events"]
    completed = [e for e in events if e["type"] == "step.completed"]
    assert completed[0]["result"]["source"] == "cache"


def test_api_workflow_is_authenticated_and_checks_its_body(server: Any) -> None:
    assert httpx.post(f"{server.url}/api/workflow", json={"prompt": "x"}).status_code == 401
    bad = httpx.post(f"{server.url}/api/workflow", json={"prompt": ""}, headers=server.headers)
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "prompt"
    extra = httpx.post(f"{server.url}/api/workflow", json={"prompt": "x", "temp": 1}, headers=server.headers)
    assert extra.status_code == 400 and extra.json()["error"]["field"] == "temp"
    limit = httpx.get(f"{server.url}/ai/calls", params={"limit": "0"}, headers=server.headers)
    assert limit.status_code == 400 and limit.json()["error"]["field"] == "limit"


def test_a_refused_request_fails_the_run_at_once(server: Any, standin: StandIn) -> None:
    standin.script = ["refuse"]
    before = standin.calls
    answer = post(server, f"refused on {server.kind}")
    assert answer.status_code == 502, answer.text
    error = answer.json()["error"]
    assert error["code"] == "ai_failed" and "HTTP 400" in error["message"] and "model not found" in error["message"]
    assert error.get("field") is None  # the prompt was fine: the provider refused
    setting = "worker_base_url" if server.kind == "workerd" else "base_url"  # the address each host calls
    assert f"the address is tool.flareflow.ai.{setting} in pyproject.toml" in error["message"], error
    assert "the model 'stand-in-model' is tool.flareflow.ai.model in pyproject.toml" in error["message"], error
    assert standin.calls == before + 1  # not retried
    failed = httpx.get(f"{server.url}/ai/calls", params={"limit": 1}, headers=server.headers).json()["calls"][0]
    assert "HTTP 400" in failed["error"] and failed["cached"] is False


def test_ai_log_cli_over_the_api(server: Any, tmp_path: Path) -> None:
    post(server, f"for the log on {server.kind}")
    result = ff("ai", "log", "--url", server.url, "--token", server.token, "--json", "--limit", "3", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    calls = json.loads(result.stdout)
    assert 1 <= len(calls) <= 3 and all(c["model"] == "stand-in-model" for c in calls)


def test_config_document_pushed_over_the_api_is_a_layer(server: Any, standin: StandIn, tmp_path: Path) -> None:
    document = tmp_path / "ai.json"
    document.write_text(json.dumps({"temperature": 0.7, "model": "pushed-model", "max_tokens": 33}))
    pushed = ff("ai", "config", "push", str(document), "--url", server.url, "--token", server.token, cwd=tmp_path)
    assert pushed.returncode == 0, pushed.stderr
    stored = httpx.get(f"{server.url}/ai/config", headers=server.headers).json()
    assert stored == {"config": {"temperature": 0.7, "model": "pushed-model", "max_tokens": 33}}
    try:
        answer = post(server, f"layered on {server.kind}")
        assert answer.status_code == 200, answer.text
        assert answer.json()["model"] == "pushed-model"
        asked = standin.chat_calls()[-1]["body"]
        assert (asked["model"], asked["temperature"], asked["max_tokens"]) == ("pushed-model", 0.7, 33)
        named = post(server, f"named on {server.kind}", model="stand-in-model")  # the call's argument wins
        assert named.json()["model"] == "stand-in-model"
        assert standin.chat_calls()[-1]["body"]["temperature"] == 0.7
        bad = httpx.put(f"{server.url}/ai/config", json={"temperature": "hot"}, headers=server.headers)
        assert bad.status_code == 400 and bad.json()["error"]["field"] == "temperature"
        assert "config:ai.temperature" in bad.json()["error"]["message"]
        unknown = httpx.put(f"{server.url}/ai/config", json={"colour": 1}, headers=server.headers)
        assert unknown.status_code == 400 and unknown.json()["error"]["field"] == "colour"
    finally:
        httpx.put(f"{server.url}/ai/config", json={}, headers=server.headers)


def test_config_show_and_clear_over_the_api(server: Any, tmp_path: Path) -> None:
    """``ai config show --url`` prints the server's document and the layer of each setting (outside a
    project: no pyproject layer here); ``clear --url`` (``PUT {}``) leaves none."""
    auth = ("--url", server.url, "--token", server.token)
    (tmp_path / "ai.json").write_text('{"max_tokens": 21}')
    assert ff("ai", "config", "push", "ai.json", *auth, cwd=tmp_path).returncode == 0
    shown = ff("ai", "config", "show", "--json", *auth, cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    found = json.loads(shown.stdout)
    assert found["document"] == {"max_tokens": 21}
    assert found["settings"]["max_tokens"] == {"value": 21, "from": "config:ai"}
    assert found["settings"]["model"] == {"value": None, "from": "default"}
    cleared = ff("ai", "config", "clear", *auth, cwd=tmp_path)
    assert cleared.returncode == 0 and f"cleared config:ai on {server.url}" in cleared.stdout, cleared.stderr
    assert httpx.get(f"{server.url}/ai/config", headers=server.headers).json() == {"config": None}
    shown = ff("ai", "config", "show", *auth, cwd=tmp_path)
    assert shown.returncode == 0 and "config:ai on" in shown.stdout and ": none" in shown.stdout, shown.stdout


def test_deleting_a_run_deletes_its_ai_calls(server: Any) -> None:
    """A deleted run leaves nothing behind: its calls leave the log with it (D1 / the local index)."""
    answered = post(server, f"forget me on {server.kind}")
    assert answered.status_code == 200, answered.text
    run_id = answered.json()["run_id"]

    def calls(run: str) -> list[dict[str, Any]]:
        got = httpx.get(f"{server.url}/ai/calls", params={"run": run}, headers=server.headers)
        assert got.status_code == 200, got.text
        return list(got.json()["calls"])

    assert len(calls(run_id)) == 1
    others = httpx.get(f"{server.url}/ai/calls", params={"limit": 500}, headers=server.headers).json()["calls"]
    kept = {c["run_id"] for c in others} - {run_id}
    deleted = httpx.delete(f"{server.url}/runs/{run_id}", headers=server.headers)
    assert deleted.status_code in (200, 204), deleted.text
    assert calls(run_id) == []
    assert all(calls(other) for other in sorted(kept)[:3])  # the other runs' calls stay

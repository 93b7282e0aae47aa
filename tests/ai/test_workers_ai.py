"""The Workers AI binding on real workerd: ``flareflow build`` adds ``[ai] binding = "AI"``, and the
harness defines an ``AI`` stand-in binding (harness/README.md) that forwards to the tests' loopback
stand-in server (`tests.ai.standin`, a test double), so the Worker's `WorkersAiProvider` runs against
the binding's real calling convention (``await env.AI.run(model, inputs)``). Covered: the models map
(``cloudflare`` names), Workers AI's default embedding model, the answer cache in KV with its TTL
(the harness lists the namespace's keys with their expirations), the call log in D1, a capacity
error retried and a refusal failing at once."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect

from tests.api.hosts import make_server

from .project import WORKFLOWS
from .standin import StandIn, standin_server

CLOUDFLARE_MODEL = "@cf/meta/llama-3.1-8b-instruct"


def write_binding_project(root: Path) -> Path:
    """A project whose AI table names no server: on Cloudflare the AI binding answers."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "workflows").mkdir(exist_ok=True)
    (root / "workflows" / "__init__.py").write_text("")
    (root / "workflows" / "ai_flows.py").write_text(WORKFLOWS)
    (root / "pyproject.toml").write_text(
        '[project]\nname = "ai-binding"\nversion = "0.1.0"\n\n'
        '[tool.flareflow.ai]\nmodel = "fast"\ncache_ttl = 600\ngateway = "my-gateway"\n'
        f'models = {{ fast = {{ local = "stand-in-model", cloudflare = "{CLOUDFLARE_MODEL}" }} }}\n')
    return root


@pytest.fixture(scope="module")
def standin() -> Iterator[StandIn]:
    with standin_server() as server:
        yield server


@pytest.fixture(scope="module")
def server(standin: StandIn, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HARNESS_AI_STANDIN_URL", standin.url)
        srv = make_server("workerd", tmp_path_factory.mktemp("ai-binding"), write_binding_project)
    yield srv
    srv.stop()


def finish(server: Any, workflow: str, value: Any, timeout: float = 60) -> dict[str, Any]:
    run = httpx.post(f"{server.url}/runs", json={"workflow": workflow, "input": value}, headers=server.headers)
    assert run.status_code == 201, run.text
    deadline = time.monotonic() + timeout
    while True:
        found = httpx.get(f"{server.url}/runs/{run.json()['id']}", headers=server.headers).json()
        if found["status"] in ("completed", "failed", "cancelled") or time.monotonic() > deadline:
            return dict(found)
        time.sleep(0.2)


def test_the_binding_answers_with_the_mapped_model_and_the_kv_cache_has_its_ttl(server: Any, standin: StandIn) -> None:
    assert "[ai]" in (server.project / ".flareflow" / "build" / "wrangler.toml").read_text()
    first = httpx.post(f"{server.url}/api/workflow", json={"prompt": "binding"}, headers=server.headers, timeout=60)
    assert first.status_code == 200, first.text
    assert first.json()["source"] == "ai" and first.json()["result"] == "answer to: binding"
    assert first.json()["model"] == CLOUDFLARE_MODEL
    assert standin.chat_calls()[-1]["body"]["model"] == CLOUDFLARE_MODEL  # through env.AI.run
    assert standin.chat_calls()[-1]["gateway"] == "my-gateway"  # through the configured AI Gateway
    again = httpx.post(f"{server.url}/api/workflow", json={"prompt": "binding"}, headers=server.headers, timeout=60)
    assert again.json()["source"] == "cache" and len(standin.chat_calls()) == 1
    calls = httpx.get(f"{server.url}/ai/calls", params={"run": first.json()["run_id"]}, headers=server.headers)
    row = calls.json()["calls"][0]
    assert row["provider"] == "workers-ai" and row["model"] == CLOUDFLARE_MODEL and row["cached"] is False
    keys = server.harness.admin("kvlist", {"binding": "CACHE", "prefix": "ai:"})["keys"]
    entry = [k for k in keys if k["name"] == f"ai:{row['prompt_hash']}"]
    assert entry, keys
    assert abs(entry[0]["expiration"] - (time.time() + 600)) < 120  # cache_ttl = 600 s


def test_embeddings_use_workers_ais_default_model(server: Any, standin: StandIn) -> None:
    run = finish(server, "vectors", ["ab", "cde"])
    assert run["status"] == "completed", run
    assert run["output"]["many"] == [[2.0, 0.0, 0.5], [3.0, 1.0, 0.5]]
    embeds = [r for r in standin.requests if r["path"].endswith("/embeddings")]
    assert embeds and {r["body"]["model"] for r in embeds} == {"@cf/baai/bge-base-en-v1.5"}


def test_capacity_errors_are_retried_and_refusals_fail_at_once(server: Any, standin: StandIn) -> None:
    standin.script = ["rate", "ok"]
    run = finish(server, "one", "busy")
    assert run["status"] == "completed" and run["output"] == "answer to: busy", run
    retried = [s for s in run["steps"] if s["name"] == "ai.generate"]
    assert retried and retried[0]["attempts"] == 2
    standin.script = ["refuse"]
    before = standin.calls
    run = finish(server, "one", "wrong")
    assert run["status"] == "failed", run
    assert "Workers AI refused the request" in str(run["error"]) and standin.calls == before + 1


def test_a_streamed_answer_comes_piece_by_piece_through_the_binding(server: Any, standin: StandIn) -> None:
    words = " ".join(f"p{i}" for i in range(10))
    standin.script = [words]
    standin.chunk_delay = 0.15
    hold = standin.hold = threading.Event()  # the first piece waits until the socket is subscribed
    try:
        run = httpx.post(f"{server.url}/runs", json={"workflow": "streamed", "input": "s"}, headers=server.headers)
        run_id = run.json()["id"]

        async def frames() -> list[dict[str, Any]]:
            got = []
            url = f"{server.ws_base}/runs/{run_id}/ws"
            async with connect(url, additional_headers=server.headers, close_timeout=0.5) as socket:
                async for message in socket:
                    got.append(json.loads(message))
                    hold.set()  # a frame came: the socket is accepted, live frames reach it
                    if got[-1]["type"] == "run.completed":
                        break  # not until workerd's late close (harness/README.md H1)
            return got

        got = asyncio.run(frames())
    finally:
        hold.set()
        standin.hold = None
        standin.chunk_delay = 0.0
    tokens = [f["text"] for f in got if f["type"] == "ai.token"]
    assert len(tokens) >= 4 and words.endswith("".join(tokens)), tokens  # pieces, as the binding streamed them
    done = [e for e in got if e["type"] == "step.completed"]
    assert done and done[0]["result"]["value"] == words and done[0]["result"]["provider"] == "workers-ai"
    assert standin.chat_calls()[-1]["body"]["stream"] is True

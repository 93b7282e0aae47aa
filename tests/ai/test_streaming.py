"""Live token frames of ``run.ai.generate(..., stream=True)`` against the stand-in server (which streams
SSE chunks as OpenAI does): over the run's WebSocket with a reconnect in the middle (the fragments
missed while away are not replayed: the finished answer comes from the log), over SSE without ``id``,
and in ``flareflow run``'s output (plain text as it is written; ``--json``: the frames)."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect

from tests.api.hosts import HOSTS, make_server
from tests.cli.helpers import Live, describe, ff

from .project import write_project
from .standin import StandIn, standin_server

WORDS = " ".join(f"w{i}" for i in range(12))


@pytest.fixture(scope="module")
def standin() -> Iterator[StandIn]:
    with standin_server() as server:
        yield server


@pytest.fixture(scope="module", params=sorted(HOSTS))
def server(request: pytest.FixtureRequest, standin: StandIn, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    kind = str(request.param)
    srv = make_server(kind, tmp_path_factory.mktemp(f"stream-{kind}"), lambda root: write_project(root, standin.url))
    yield srv
    srv.stop()


def test_token_frames_over_websocket_with_a_reconnect(server: Any, standin: StandIn) -> None:
    standin.script = [WORDS]
    standin.chunk_delay = 0.15
    hold = standin.hold = threading.Event()  # the first token waits until this client listens
    run = httpx.post(f"{server.url}/runs", json={"workflow": "streamed", "input": "go"}, headers=server.headers)
    assert run.status_code == 201, run.text
    run_id = run.json()["id"]

    async def follow() -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
        url = f"{server.ws_base}/runs/{run_id}/ws"
        # a witness stays connected throughout: what it sees while the client is away was written then
        async with connect(url, additional_headers=server.headers, close_timeout=0.5) as witness:
            seen = [json.loads(await asyncio.wait_for(witness.recv(), 30))]  # subscribed

            async def watch() -> None:
                async for message in witness:
                    seen.append(json.loads(message))
                    if seen[-1]["type"] == "run.completed":
                        break

            watching = asyncio.ensure_future(watch())
            first: list[dict[str, Any]] = []
            async with connect(url, additional_headers=server.headers, close_timeout=0.5) as socket:
                first.append(json.loads(await asyncio.wait_for(socket.recv(), 30)))  # subscribed
                hold.set()
                while len([f for f in first if f["type"] == "ai.token"]) < 3:
                    first.append(json.loads(await asyncio.wait_for(socket.recv(), 30)))
            last = max(f["seq"] for f in first if "seq" in f)

            async def away() -> None:  # pieces written meanwhile are gone for this client
                while len([f for f in seen if f["type"] == "ai.token"]) < 5 and not watching.done():
                    await asyncio.sleep(0.02)

            await asyncio.wait_for(away(), 30)
            second = await until_completed(f"{url}?after={last}")
            late = await until_completed(f"{url}?after={last}")
            await asyncio.wait_for(watching, 30)
        return first, second, late

    async def until_completed(url: str) -> list[dict[str, Any]]:
        """Frames up to run.completed (not until the close: workerd's is late, harness/README.md H1)."""
        got: list[dict[str, Any]] = []
        async with connect(url, additional_headers=server.headers, close_timeout=0.5) as socket:
            async for message in socket:
                got.append(json.loads(message))
                if got[-1]["type"] == "run.completed":
                    break
        return got

    try:
        first, second, late = asyncio.run(follow())
    finally:
        hold.set()
        standin.hold = None
    tokens = [f for f in first + second if f["type"] == "ai.token"]
    assert all("seq" not in f and f["step"] == "ai.generate#1" and f["run_id"] == run_id for f in tokens)
    text = "".join(f["text"] for f in tokens)
    assert text != WORDS and text.startswith("w0 w1 w2")  # a part was missed while away
    assert all(piece["text"] in WORDS for piece in tokens)
    done = [e for e in second if e.get("type") == "step.completed"]
    assert done and done[0]["result"]["value"] == WORDS  # the whole answer, once, from the log
    assert [e["type"] for e in second if "seq" in e][-1] == "run.completed"
    assert not [f for f in late if f["type"] == "ai.token"]  # a later client gets the log only
    logged = httpx.get(f"{server.url}/runs/{run_id}/events", headers={**server.headers, "accept": "application/json"})
    assert not [e for e in logged.json()["events"] if e["type"] == "ai.token"]
    asked = [r for r in standin.chat_calls() if r["body"]["messages"][-1]["content"] == "go"]
    assert asked and asked[-1]["body"]["stream"] is True


def test_token_frames_over_sse_carry_no_id(server: Any, standin: StandIn) -> None:
    standin.script = [WORDS]
    standin.chunk_delay = 0.1
    hold = standin.hold = threading.Event()  # the first token waits until the stream is subscribed
    run = httpx.post(f"{server.url}/runs", json={"workflow": "streamed", "input": "go"}, headers=server.headers)
    run_id = run.json()["id"]
    blocks: list[str] = []
    try:
        with httpx.stream("GET", f"{server.url}/runs/{run_id}/events", headers=server.headers,
                          timeout=30) as response:
            buffer = ""
            for chunk in response.iter_text():
                buffer += chunk
                while "\n\n" in buffer:
                    block, buffer = buffer.split("\n\n", 1)
                    blocks.append(block)
                    hold.set()  # a block came: the stream is registered for live frames
    finally:
        hold.set()
        standin.hold = None
    tokens = [b for b in blocks if "event: ai.token" in b]
    assert tokens and all(not b.startswith("id:") and "\nid:" not in b for b in tokens)
    assert any(b.startswith("id:") and "event: run.completed" in b for b in blocks)


def test_flareflow_run_prints_the_text_as_it_is_written(tmp_path: Path) -> None:
    with standin_server() as standin:
        print_as_written(tmp_path, standin)


def print_as_written(tmp_path: Path, standin: StandIn) -> None:
    root = write_project(tmp_path / "p", standin.url)
    standin.script = [WORDS]
    standin.chunk_delay = 0.2
    with Live("run", "streamed", "--input", '"go"', cwd=root) as live:
        live.wait_line(lambda text: "w0" in text, timeout=15, what="streamed text")
        assert live.finish(timeout=30) == 0
    assert "w0 w1 w2 w3 w4 w5 w6 w7 w8 w9 w10 w11" in live.stdout
    standin.script = ["a b c"]
    standin.chunk_delay = 0.0
    result = ff("run", "streamed", "--input", '"go"', "--json", cwd=root, timeout=60)
    assert result.returncode == 0, describe(result)
    frames = [json.loads(x) for x in result.stdout.splitlines() if '"ai.token"' in x]
    assert "".join(f["text"] for f in frames) == "a b c" and all("seq" not in f for f in frames)


def test_flareflow_run_with_url_prints_the_streamed_text(server: Any, standin: StandIn, tmp_path: Path) -> None:
    standin.script = [WORDS]
    standin.chunk_delay = 0.2
    stdout = connected_run(standin, tmp_path, "--url", server.url, "--token", server.token)
    # the text on a line of its own before the step's line (pieces written before the stream was
    # connected would not be shown: live frames are not replayed)
    streamed = [line.strip() for line in stdout.splitlines() if line.startswith("    w")
                and not line.startswith("     ")]
    assert streamed and WORDS.endswith(streamed[0]) and len(streamed[0].split()) >= 4, repr(stdout)
    if server.kind == "workerd":
        return  # the same client code as above; each CLI run there waits ~10 s for workerd's close (H1)
    standin.script = [WORDS]
    as_json = connected_run(standin, tmp_path, "--json", "--url", server.url, "--token", server.token)
    frames = [json.loads(x) for x in as_json.splitlines() if '"ai.token"' in x]
    assert len(frames) >= 4 and WORDS.endswith("".join(f["text"] for f in frames))


def connected_run(standin: StandIn, cwd: Path, *args: str) -> str:
    """``flareflow run streamed ARGS``'s stdout, the stand-in's stream held until the CLI printed its first
    line (an event it was sent: its stream is connected), however slowly the CLI started."""
    hold = standin.hold = threading.Event()
    try:
        with Live("run", "streamed", "--input", '"go"', *args, cwd=cwd) as live:
            live.wait_line(lambda line: bool(line.strip()), timeout=60, what="the run's first event")
            hold.set()
            code = live.finish(timeout=60)
            assert code == 0, f"exit {code}\n--- stdout\n{live.stdout}--- stderr\n{live.stderr}"
            return live.stdout
    finally:
        hold.set()
        standin.hold = None


def test_a_cached_streamed_answer_comes_as_one_frame(tmp_path: Path) -> None:
    with standin_server() as standin:
        root = write_project(tmp_path / "p", standin.url)
        first = ff("run", "streamed-cached", "--input", '"again"', "--json", cwd=root, timeout=60)
        assert first.returncode == 0, describe(first)
        second = ff("run", "streamed-cached", "--input", '"again"', "--json", cwd=root, timeout=60)
        assert second.returncode == 0, describe(second)
        frames = [json.loads(x) for x in second.stdout.splitlines() if '"ai.token"' in x]
        assert [f["text"] for f in frames] == ["answer to: again"]
        assert len(standin.chat_calls()) == 1

"""Smoke test of the real-workerd harness (harness/): a hand-written build directory (app/) whose
Python Durable Object and Worker run on workerd + Pyodide 0.28.2 + the `workers` SDK."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import statistics
import subprocess
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from harness import pytest_plugin
from harness.pytest_plugin import WorkerdServer, workerd_server  # noqa: F401  (fixture)

APP = Path(__file__).resolve().parent / "app"


@pytest.fixture
def workerd_build_dir(tmp_path: Path) -> Path:
    """The hand-written app, prepared the way its user would before `wrangler dev`: a `.dev.vars`
    with the secret, and the D1 migrations applied to wrangler's local state by the real wrangler."""
    try:
        pytest_plugin.check_harness()
    except pytest_plugin.HarnessUnavailable as exc:
        pytest_plugin._unavailable(exc)
    app = tmp_path / "app"
    shutil.copytree(APP, app, ignore=shutil.ignore_patterns("__pycache__", ".wrangler", ".dev.vars"))
    (app / ".dev.vars").write_text("FLAREFLOW_TOKEN=smoke-secret\n")
    applied = subprocess.run([str(pytest_plugin.WRANGLER_SHIM), "d1", "migrations", "apply", "INDEX", "--local"],
                             cwd=app, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120,
                             env={**os.environ, "WRANGLER_SEND_METRICS": "false"}, check=False)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    return app


def wait_until(check: Callable[[], Any], timeout: float = 15.0, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last: {result!r})")
        time.sleep(interval)


class Timer:
    def __init__(self) -> None:
        self.rows: list[tuple[str, float]] = []

    def __call__(self, name: str) -> _Phase:
        return _Phase(self, name)

    def report(self) -> str:
        return "\n".join(f"  {name:<44} {ms:9.1f} ms" for name, ms in self.rows)


class _Phase:
    def __init__(self, timer: Timer, name: str) -> None:
        self.timer, self.name = timer, name

    def __enter__(self) -> None:
        self.t0 = time.perf_counter()

    def __exit__(self, *exc: object) -> None:
        self.timer.rows.append((self.name, (time.perf_counter() - self.t0) * 1000))


def test_smoke_on_real_workerd(workerd_server: WorkerdServer) -> None:  # noqa: F811
    server = workerd_server
    timer = Timer()
    timer.rows.append(("cold start (launcher → ready, Pyodide warm)", (server.startup_seconds or 0) * 1000))
    client = httpx.Client(base_url=server.url, timeout=60)
    seen = lambda: client.get("/seen").json()["seen"]  # noqa: E731

    with timer("worker fetch: vars + secret binding"):
        health = client.get("/health").json()
    assert health == {"ok": True, "greeting": "hello from vars", "token_set": True}

    # Durable Object SQLite storage persists across requests (and across instances, below).
    with timer("first request to a new Durable Object"):
        assert client.get("/do/alpha/count").json()["value"] == 1
    latencies = []
    for expected in range(2, 22):
        t0 = time.perf_counter()
        assert client.get("/do/alpha/count").json()["value"] == expected
        latencies.append((time.perf_counter() - t0) * 1000)
    timer.rows.append(("DO SQL request, median of 20", statistics.median(latencies)))
    timer.rows.append(("DO SQL request, max of 20", max(latencies)))
    assert client.get("/do/beta/count").json()["value"] == 1  # another object, its own storage
    info = client.get("/do/alpha/info").json()
    assert info["python"].startswith("3.13.")

    # An alarm fires and runs Python (which writes to the object's SQLite and uses python_modules/).
    with timer("setAlarm(+200 ms) → alarm() ran"):
        client.get("/do/alpha/alarm", params={"delay": 200}).raise_for_status()
        alarms = wait_until(lambda: client.get("/do/alpha/alarms").json()["alarms"])
    assert alarms[0]["note"] == "ALARM RETRY=0!"

    # WebSocket echo through the hibernation API (acceptWebSocket + webSocketMessage/Close), and
    # real hibernation: workerd evicts an idle object (~10 s) while its WebSocket stays open; the
    # next message constructs a new Python RunObject, and the socket's attachment survives.
    async def websocket_echo() -> tuple[list[float], float]:
        times = []
        async with websockets.connect(server.url.replace("http://", "ws://") + "/do/gamma/ws",
                                      ping_interval=None) as ws:
            async def echo(text: str) -> dict[str, Any]:
                await ws.send(text)
                reply: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), 30))
                assert reply["echo"] == text and reply["sockets"] == 1
                return reply

            for i in range(5):
                t0 = time.perf_counter()
                first = await echo(f"ping {i}")
                times.append((time.perf_counter() - t0) * 1000)
            t_idle = time.perf_counter()
            for _ in range(4):
                await asyncio.sleep(11)
                woken = await echo("after idle")
                if woken["instance_created_at"] != first["instance_created_at"]:
                    break
            hibernated_after = time.perf_counter() - t_idle
            assert woken["instance_created_at"] != first["instance_created_at"], "object never hibernated"
            assert woken["joined"] == first["joined"]  # serializeAttachment survived hibernation
            await ws.close(1000, "done")
            assert ws.close_code == 1000 and ws.close_reason == "bye"  # from webSocketClose
        return times, hibernated_after

    with timer("WebSocket: 5 echoes, idle until hibernated, wake"):
        ws_times, hibernated_after = asyncio.run(websocket_echo())
    timer.rows.append(("WebSocket echo round trip, median", statistics.median(ws_times)))
    timer.rows.append(("  idle time until woken from hibernation", hibernated_after * 1000))

    # D1 from the Worker (schema from migrations/index/*.sql, applied by the launcher).
    with timer("D1 insert + select"):
        assert client.get("/d1", params={"value": "hello"}).json()["seen"] == [{"kind": "d1", "value": "hello"}]
    assert client.get("/kv", params={"value": "kv-ok"}).json() == {"kv": "kv-ok"}
    assert client.get("/r2", params={"value": "r2-ok"}).json() == {"r2": "r2-ok"}

    # scheduled() runs for a given cron and time.
    when = datetime(2030, 1, 7, 9, 0, tzinfo=UTC)
    with timer("scheduled() via admin"):
        assert server.scheduled("0 9 * * 1", when)["outcome"] == "ok"
    assert {"kind": "cron", "value": f"0 9 * * 1@{int(when.timestamp() * 1000)}"} in seen()

    # A queue message sent by the Worker reaches queue().
    with timer("queue send → queue() consumed"):
        assert client.get("/queue", params={"value": "from-worker"}).status_code == 202
        wait_until(lambda: {"kind": "queue", "value": "from-worker"} in seen())
    server.send_queue("from-admin")
    wait_until(lambda: {"kind": "queue", "value": "from-admin"} in seen())

    # Evicting one object (ctx.abort) keeps its storage; a new instance rebuilds from SQL.
    before = client.get("/do/alpha/count").json()
    with timer("evict one Durable Object + next request"):
        server.evict("alpha")
        after = client.get("/do/alpha/count").json()
    assert after["value"] == before["value"] + 1
    assert after["instance_created_at"] != before["instance_created_at"]

    # A crash (SIGKILL of node + workerd) and a restart keep every store (persisted dir).
    client.close()
    server.kill()
    with timer("restart after kill (cold start again)"):
        server.restart()
    client = httpx.Client(base_url=server.url, timeout=60)
    assert client.get("/do/alpha/count").json()["value"] == after["value"] + 1
    assert len(client.get("/do/alpha/alarms").json()["alarms"]) == 1
    assert {"kind": "d1", "value": "hello"} in client.get("/seen").json()["seen"]
    client.close()

    print("\nworkerd harness timings:\n" + timer.report())
    for line in server.lines:
        if "Pyodide warm in" in line:
            print("launcher: " + line)


def test_missing_harness_fails_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest_plugin.HarnessUnavailable):
        pytest_plugin.check_harness()
    with pytest.raises(pytest.fail.Exception):
        pytest_plugin._unavailable(pytest_plugin.HarnessUnavailable("node missing"))
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception):
        pytest_plugin._unavailable(pytest_plugin.HarnessUnavailable("node missing"))

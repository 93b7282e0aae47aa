"""``flareflow serve --local`` with its state directory on a real, small, full file system (issue #10
item 4): clients get 503 with the JSON error shape and ``Retry-After``, runs in flight stay unfinished
(never failed) and finish once space is freed, nothing needs a restart. The file system is a 4 MB
tmpfs (`tests.smallfs`); where mounting is not permitted the test is skipped, and the same paths are
covered by injected faults in tests/runtime/test_storage_faults.py.
"""

from __future__ import annotations

import time
from typing import Any

import httpx

from ..smallfs import fill, small_fs
from .servers import client, project, server, stderr


def _wait(http: httpx.Client, run_id: str, status: str, timeout: float = 20.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        run: dict[str, Any] = http.get(f"/runs/{run_id}").json()
        if run.get("status") == status or time.monotonic() > deadline:
            return run
        time.sleep(0.05)


def _storage_503(response: httpx.Response, state: str) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers["retry-after"] == "5"
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "field"}
    assert body["error"]["code"] == "storage_error"
    assert body["error"]["field"] is None
    message = body["error"]["message"]
    assert "disk is full" in message or "No space left" in message, message
    assert state not in message and "/" not in message.split("(")[0].replace("runs/", ""), message


def test_a_full_disk_answers_503_with_retry_after_and_no_run_is_failed(tmp_path):
    proj = project(tmp_path)
    state = proj / ".flareflow" / "state"
    with small_fs(state, "4m"):
        srv = server(proj, tmp_path / "logs").start()
        try:
            with client(srv) as http:
                assert http.post("/runs", json={"workflow": "steps"}).status_code == 201
                waiting = http.post("/runs", json={"workflow": "approval"}).json()["id"]
                assert _wait(http, waiting, "waiting")["status"] == "waiting"
                busy = http.post("/runs", json={"workflow": "steps", "input": {"n": 30, "delay": 0.05}}).json()["id"]
                time.sleep(0.3)  # a few of its steps are committed
                fill(state / "filler")

                _storage_503(http.post("/runs", json={"workflow": "steps"}), str(state))
                _storage_503(http.post("/runs", json={"workflow": "steps"}, headers={"idempotency-key": "k"}),
                             str(state))
                _storage_503(http.post(f"/runs/{waiting}/events", json={"type": "go"}), str(state))
                time.sleep(2.0)  # the busy run's commits are refused meanwhile
                listed = http.get("/runs").json()["runs"]  # reads still work
                assert {r["id"] for r in listed} >= {waiting, busy}
                assert http.get(f"/runs/{busy}").json()["status"] == "running"
                assert not [r for r in listed if r["status"] == "failed"]

                (state / "filler").unlink()
                again = http.post("/runs", json={"workflow": "steps"}, headers={"idempotency-key": "k"})
                assert again.status_code == 201, again.text
                assert _wait(http, again.json()["id"], "completed")["output"] == {"n": 3, "total": 3}
                done = _wait(http, busy, "completed", timeout=40)
                assert done["status"] == "completed" and done["output"] == {"n": 30, "total": 435}
                assert http.post(f"/runs/{waiting}/events", json={"type": "go"}).status_code == 202
                assert http.post(f"/runs/{waiting}/input", json={"value": True}).status_code == 202
                assert _wait(http, waiting, "completed")["output"] == {"event": None, "ok": True}
        finally:
            srv.stop()
    err = stderr(srv)
    assert "Traceback" not in err, err[-3000:]
    assert str(state) not in err
    assert "activation abandoned" in err

"""Blocking HTTP helpers for the hostile-code tests (plain httpx, one request at a time)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import httpx

FINISHED = ("completed", "failed", "cancelled")


def client(server: Any) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers=server.headers, timeout=10.0)


def start(http: httpx.Client, workflow: str, input: Any = None) -> str:
    response = http.post("/runs", json={"workflow": workflow, "input": input})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def events(http: httpx.Client, run_id: str) -> list[dict[str, Any]]:
    response = http.get(f"/runs/{run_id}/events", params={"follow": "false"}, headers={"accept": "application/json"})
    assert response.status_code == 200, response.text
    return list(response.json()["events"])


def of_type(evs: list[dict[str, Any]], type_: str) -> list[dict[str, Any]]:
    return [e for e in evs if e["type"] == type_]


def raised(error: dict[str, Any]) -> tuple[str, str, list[str]]:
    """An error body's type, message and the functions of its traceback (``workflows/hostile.py`` only)."""
    assert all(f["file"] == "workflows/hostile.py" for f in error["traceback"]), error
    return error["type"], error["message"], [f["function"] for f in error["traceback"]]


def until(check: Callable[[], Any], timeout: float, what: str, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def finished(http: httpx.Client, run_id: str, timeout: float = 20.0) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        run: dict[str, Any] = http.get(f"/runs/{run_id}").json()
        return run if run["status"] in FINISHED else None

    result: dict[str, Any] = until(done, timeout, f"run {run_id} to finish")
    return result


class HealthProbe:
    """Polls ``GET /health`` on its own connection every ``interval`` s in a thread; records each latency."""

    def __init__(self, server: Any, interval: float = 0.02) -> None:
        self.url = server.url
        self.interval = interval
        self.latencies: list[float] = []
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> HealthProbe:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(15)

    def _loop(self) -> None:
        with httpx.Client(base_url=self.url, timeout=10.0) as http:
            http.get("/health")  # connect outside the measurement
            while not self._stop.is_set():
                t0 = time.perf_counter()
                try:
                    response = http.get("/health")
                    if response.status_code != 200:
                        self.failures.append(f"{response.status_code} {response.text[:200]}")
                except httpx.HTTPError as exc:
                    self.failures.append(repr(exc))
                self.latencies.append(time.perf_counter() - t0)
                self._stop.wait(self.interval)

    @property
    def max_ms(self) -> float:
        return max(self.latencies) * 1000 if self.latencies else float("nan")

"""An http task that runs out of time says its limit and the unit, on both hosts: ``timeout: 50`` is 50
milliseconds (the format's unit for http), which a reader may have meant as seconds. Locally the limit
is urllib's; on workerd ``AbortSignal.timeout`` on the Worker's ``fetch``. Own project, own module."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.helpers import wait_finished
from tests.api.hosts import HOSTS, make_server

PYPROJECT = """\
[project]
name = "graph-http-timeout"
version = "0.1.0"

[tool.flareflow]
workflows = ["workflows"]
"""


def graph(target: str) -> dict[str, Any]:
    return {"name": "slow-call", "tasks": [
        {"id": "call", "type": "http", "url": f"{target}/slow", "timeout": 50},
        {"id": "call_s", "type": "http", "url": f"{target}/slow", "timeout": "0.2s"}]}


class _Slow(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        time.sleep(3)  # well past every limit the graph sets
        try:
            self.send_response(200)
            self.send_header("content-length", "2")
            self.end_headers()
            self.wfile.write(b"ok")
        except OSError:  # the caller gave up (that is the point)
            pass


@pytest.fixture()
def target() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Slow)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


@pytest.mark.parametrize("kind", sorted(HOSTS))
def test_an_http_timeout_says_the_limit_and_its_unit_on_each_host(kind: str, tmp_path: Path, target: str) -> None:
    def write(root: Path) -> Path:
        (root / "workflows").mkdir(parents=True, exist_ok=True)
        (root / "pyproject.toml").write_text(PYPROJECT, encoding="utf-8")
        (root / "workflows" / "slow.json").write_text(json.dumps(graph(target)), encoding="utf-8")
        return root

    server = make_server(kind, tmp_path, write)
    try:
        asyncio.run(_check(server, target))
    finally:
        server.stop()


async def _check(server: Any, target: str) -> None:
    async with httpx.AsyncClient(base_url=server.url, headers=server.headers, timeout=30) as client:
        started = await client.post("/runs", json={"workflow": "slow-call"})
        assert started.status_code == 201, started.text
        run = await wait_finished(client, started.json()["id"], 60)
        assert run["status"] == "failed", json.dumps(run)[:2000]
        tasks = run["output"]["tasks"] if run.get("output") else None
        text = json.dumps(run)
        assert (f"GET {target}/slow timed out after 50 ms (http timeouts are in milliseconds)" in text), \
            (text[:3000], server.output()[-3000:], tasks)
        assert f"GET {target}/slow timed out after 200 ms (http timeouts are in milliseconds)" in text, text[:3000]

"""A provider's HTTP error names the URL and the model asked, as ``flareflow run`` shows it: a refused
request (400) or a wrong ``base_url`` (404, e.g. one without ``/v1``, answered as Ollama does), which
also hints at ``/v1``. The servers are loopback stand-ins at a boundary we do not own."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tests.cli.helpers import describe, ff

from .project import write_project
from .standin import standin_server


@contextmanager
def not_found_server() -> Iterator[str]:
    """A stand-in that answers every POST ``404 page not found`` (Ollama's answer off its API paths)."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length") or 0))
            body = b"404 page not found"
            self.send_response(404)
            self.send_header("content-type", "text/plain")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def failure(root: Path) -> str:
    result = ff("run", "one", "--input", '"hi"', "--json", cwd=root, timeout=60)
    assert result.returncode == 1, describe(result)
    failed = [json.loads(x) for x in result.stdout.splitlines() if '"step.failed"' in x]
    assert failed, describe(result)
    return str(failed[0]["error"]["message"])


def test_a_refused_request_names_the_url_and_the_model(tmp_path: Path) -> None:
    with standin_server() as standin:
        root = write_project(tmp_path / "p", standin.url)
        standin.script = ["refuse"]
        message = failure(root)
        assert len(standin.requests) == 1  # not retried
    assert f"{standin.url}/chat/completions" in message and "model '" in message, message
    assert "HTTP 400: model not found" in message, message


def test_a_base_url_without_v1_is_a_404_that_says_so(tmp_path: Path) -> None:
    with not_found_server() as url:
        root = write_project(tmp_path / "p", url)
        message = failure(root)
    assert f"{url}/chat/completions" in message and "HTTP 404: 404 page not found" in message, message
    assert "/v1" in message, message

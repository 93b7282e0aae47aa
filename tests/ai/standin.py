"""A stand-in OpenAI-compatible server on loopback -- a TEST DOUBLE at a boundary we do not own (the
model server: Ollama, vLLM, OpenAI). It speaks ``POST /v1/chat/completions`` (plain and streamed as
OpenAI's server-sent events) and ``POST /v1/embeddings``, counts every request, and answers from a
script the test sets: ``"ok"`` (the default), ``"fail"`` (500), ``"rate"`` (429), ``"refuse"`` (400),
``"malformed"`` (a 200 whose body is not JSON), or any other string (that text as the answer, e.g.
JSON for a schema test). Without a script it answers ``answer to: <last user message>``.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class StandIn:
    """The server's state: requests seen, the script of answers, the pause between streamed chunks and
    ``hold``: when set to an unset `threading.Event`, a streamed answer waits for it before its first
    chunk (so a test can be listening before the first token is written, however loaded the machine)."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.script: list[str] = []
        self.chunk_delay = 0.0
        self.hold: threading.Event | None = None
        self.lock = threading.Lock()
        self.url = ""

    @property
    def calls(self) -> int:
        return len(self.requests)

    def chat_calls(self) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["path"].endswith("/chat/completions")]

    def next_answer(self) -> str:
        with self.lock:
            return self.script.pop(0) if self.script else "ok"


def _handler(state: StandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            return

        def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
            self.send_response(status)
            self.send_header("content-type", content_type)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}")
            with state.lock:
                state.requests.append({"path": self.path, "body": body,
                                       "authorization": self.headers.get("authorization"),
                                       "gateway": self.headers.get("x-ai-gateway")})
            action = state.next_answer()
            if action == "fail":
                return self._send(500, b'{"error": {"message": "stand-in server error"}}')
            if action == "rate":
                return self._send(429, b'{"error": {"message": "rate limited"}}')
            if action == "refuse":
                return self._send(400, b'{"error": {"message": "model not found"}}')
            if action == "malformed":
                return self._send(200, b"<html>not json")
            if self.path.endswith("/embeddings"):
                texts = body.get("input") or []
                data = [{"index": i, "embedding": [float(len(t)), float(i), 0.5]} for i, t in enumerate(texts)]
                return self._send(200, json.dumps({"data": data, "usage": {"prompt_tokens": 3}}).encode())
            if action == "ok":
                last = [m["content"] for m in body.get("messages", []) if m.get("role") == "user"][-1:]
                text = f"answer to: {last[0] if last else ''}"
            else:
                text = action
            if body.get("stream"):
                return self._stream(text)
            answer = {"choices": [{"index": 0, "message": {"role": "assistant", "content": text}}],
                      "usage": {"prompt_tokens": 7, "completion_tokens": len(text.split())}}
            return self._send(200, json.dumps(answer).encode())

        def _stream(self, text: str) -> None:
            self.send_response(200)
            self.send_header("content-type", "text/event-stream")
            self.send_header("connection", "close")
            self.end_headers()
            if state.hold is not None:
                state.hold.wait(30)
            words = text.split(" ")
            for i, word in enumerate(words):
                piece = word if i == 0 else " " + word
                chunk = {"choices": [{"index": 0, "delta": {"content": piece}}]}
                self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                self.wfile.flush()
                if state.chunk_delay:
                    time.sleep(state.chunk_delay)
            usage = {"choices": [], "usage": {"prompt_tokens": 7, "completion_tokens": len(words)}}
            self.wfile.write(f"data: {json.dumps(usage)}\n\ndata: [DONE]\n\n".encode())
            self.wfile.flush()
            self.close_connection = True

    return Handler


@contextmanager
def standin_server() -> Iterator[StandIn]:
    """Serve a `StandIn` on 127.0.0.1 (a free port) while the block runs; ``.url`` ends in ``/v1``."""
    state = StandIn()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()

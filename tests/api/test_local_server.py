"""LOCAL SERVER ONLY (``flareflow serve --local``): what the local host's own socket and storage
handling does with hostile or broken clients (issue #10, item 7 and its "also fix" items). The Worker
host has no such layer (Cloudflare's edge terminates the connections), so these tests start their own
`LocalServer` instead of using the two-host ``server`` fixtures.

Tried: a run whose stored text holds a lone surrogate (written before such text was refused);
aborted uploads (headers and part of the body, then a close or a reset); 1,040 stalled connections
under RLIMIT_NOFILE = 1024 (the reviewer's figures); 150 half-sent requests (silent, half a request
line, trickling, a second request on a kept-alive connection) with a 1 s header timeout; 20 stalled
bodies with a 1 s body timeout; 100 unauthenticated 1 MiB uploads, half sent, with the server's
RSS read from /proc; a storm of 10,000 identical tracebacks through the log filter.

Found and fixed: every aborted upload logged a ``ClientDisconnect`` traceback; a connection that
never finished its headers was held for good (uvicorn has no header timeout), so a few hundred of
them exhausted the descriptors and the server stopped answering; a stalled body was waited for
forever; connections had no cap (uvicorn's ``limit_concurrency`` answers plain text, and only once
headers arrived).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import secrets
import socket
import struct
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx

from flareflow.engine import Registry, Run, workflow
from flareflow.local import LocalRuntime

from .hosts import LocalServer
from .project import write_project


def _server(tmp_path: Path, **dev: Any) -> LocalServer:
    project = write_project(tmp_path / "project")
    if dev:
        text = (project / "pyproject.toml").read_text(encoding="utf-8")
        for key, value in dev.items():
            text = re.sub(rf"(?m)^{key} = .*\n", "", text)
            text = text.replace("[tool.flareflow.dev]\n", f"[tool.flareflow.dev]\n{key} = {value!r}\n")
        (project / "pyproject.toml").write_text(text, encoding="utf-8")
    logs = tmp_path / "logs"
    logs.mkdir(exist_ok=True)
    return LocalServer(project, "tok-" + secrets.token_hex(16), logs)


def test_local_run_stored_with_a_lone_surrogate_is_still_served(tmp_path, monkeypatch):
    """A state directory from before lone surrogates were refused: the run is served (escaped), not 500."""
    srv = _server(tmp_path)
    import flareflow.engine.run as engine_run

    monkeypatch.setattr(engine_run, "encode_text", engine_run._ENCODE)  # the old, unchecked encoder
    reg = Registry()

    @workflow("approval", registry=reg)
    async def approval(run: Run, inp: Any = None) -> Any:  # never activated here
        return None

    async def poison() -> str:
        async with LocalRuntime(srv.project / ".flareflow" / "state", reg) as rt:
            return (await rt.start_run("approval", {"name": "a\ud800b"}, activate=False)).run_id

    run_id = asyncio.run(poison())
    monkeypatch.undo()
    srv.start()
    try:
        with httpx.Client(base_url=srv.url, headers=srv.headers, timeout=10) as client:
            described = client.get(f"/runs/{run_id}")
            events = client.get(f"/runs/{run_id}/events", params={"follow": "false"},
                                headers={"accept": "application/json"})
            listed = client.get("/runs")
            cancelled = client.post(f"/runs/{run_id}/cancel")
    finally:
        srv.stop()
    assert described.status_code == 200, described.text
    assert described.json()["input"] == {"name": "a\ud800b"}  # served as the JSON escape it was sent as
    assert b"\\ud800" in described.content
    assert events.status_code == 200 and events.json()["events"][0]["input"] == {"name": "a\ud800b"}
    assert listed.status_code == 200 and run_id in [r["id"] for r in listed.json()["runs"]]
    assert cancelled.status_code == 200, cancelled.text
    assert "Traceback" not in srv.output()



def _connect(srv: LocalServer, timeout: float = 5.0) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", srv.port), timeout=timeout)
    return sock


def _err_bytes(srv: LocalServer) -> int:
    return sum(path.stat().st_size for path in srv.logs.glob("server-*.err"))


def test_local_aborted_uploads_log_no_traceback(tmp_path):
    srv = _server(tmp_path).start()
    try:
        for i in range(10):
            sock = _connect(srv)
            sock.sendall(f"POST /runs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {srv.token}\r\n"
                         "Content-Type: application/json\r\nContent-Length: 3000\r\n\r\n".encode()
                         + b'{"workflow": "steps", "input": "' + b"x" * 100)
            time.sleep(0.05)  # the server is reading the body now
            if i % 2:  # a reset (RST) instead of a close (FIN)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.close()
        time.sleep(0.5)
        health = httpx.get(f"{srv.url}/health", timeout=5)
    finally:
        srv.stop()
    err = "".join(path.read_text(encoding="utf-8", errors="replace") for path in srv.logs.glob("server-*.err"))
    assert health.status_code == 200
    assert "ClientDisconnect" not in err and "Traceback" not in err, err[-3000:]


@contextlib.contextmanager
def _descriptor_limit(monkeypatch, limit: int):
    """Start servers inside this block with RLIMIT_NOFILE set to ``limit`` (soft and hard, as ``ulimit -n``)."""
    import resource

    real = subprocess.Popen

    def popen(*args: Any, **kwargs: Any) -> Any:
        kwargs["preexec_fn"] = lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))
        return real(*args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(subprocess, "Popen", popen)
        yield


def _stalled(srv: LocalServer, n: int, head: bytes = b"GET /health HTTP/1.1\r\nHost: x\r\n") -> list[socket.socket]:
    """``n`` connections that each send the start of a request and then nothing."""
    socks = []
    for _ in range(n):
        try:
            sock = _connect(srv, timeout=30)  # a bound on a hang: a loaded server accepts late
        except OSError:
            break  # refused (the backlog is full): also a clean answer
        with contextlib.suppress(OSError):
            sock.sendall(head)
        socks.append(sock)
    return socks


def _answer(sock: socket.socket, wait: float) -> bytes | None:
    """What the server sent on ``sock`` within ``wait`` seconds: bytes up to its close, or None if it is
    still open and silent."""
    sock.settimeout(wait)
    data = b""
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return data
            data += chunk
    except TimeoutError:
        return data or None
    except ConnectionResetError:
        return data


#: Closing the held connections frees their slots at once; a loaded 2-core machine may take seconds to
#: get there, still far below the 30 s header timeout that would free them otherwise.
RECOVERY_S = 10.0


def _answers(socks: list[socket.socket], closed: int, timeout: float = 30.0) -> list[bytes | None]:
    """What the server sent on each socket (None: nothing yet), read until ``closed`` of them have an
    answer and the server's close (``timeout`` bounds a hang), then once more a linger (1 s) later, so
    a socket answered beyond ``closed`` shows too."""
    got: list[bytes] = [b""] * len(socks)
    done = [False] * len(socks)

    def read() -> None:
        for i, sock in enumerate(socks):
            if done[i]:
                continue
            sock.setblocking(False)
            try:
                while chunk := sock.recv(65536):
                    got[i] += chunk
                done[i] = True
            except BlockingIOError:
                pass
            except ConnectionResetError:
                done[i] = True

    deadline = time.monotonic() + timeout
    while sum(1 for i in range(len(socks)) if done[i] and got[i]) < closed and time.monotonic() < deadline:
        read()
        time.sleep(0.05)
    time.sleep(1.5)
    read()
    return [data or None for data in got]


def test_local_connections_beyond_the_cap_get_503_and_the_server_recovers(tmp_path, monkeypatch):
    """LOCAL: the reviewer's figures, 1,040 stalled connections against a server under ulimit -n 1024."""
    srv = _server(tmp_path, header_timeout=30.0)
    with _descriptor_limit(monkeypatch, 1024):
        srv.start()
    try:
        socks = _stalled(srv, 1040)
        answers = _answers(socks, 1040 - 360)  # refused ones have their 503 and the server's close
        held = [s for s, a in zip(socks, answers, strict=True) if a is None]
        refused = [a for a in answers if a is not None]
        busy = httpx.get(f"{srv.url}/health", timeout=5)
        for sock in held:
            sock.close()
        started = time.monotonic()
        while httpx.get(f"{srv.url}/health", timeout=5).status_code != 200:
            assert time.monotonic() - started < RECOVERY_S, f"/health did not recover within {RECOVERY_S} s"
            time.sleep(0.02)
        recovered = time.monotonic() - started
        run = httpx.post(f"{srv.url}/runs", headers=srv.headers, json={"workflow": "steps"}, timeout=5)
    finally:
        for sock in socks:
            sock.close()
        srv.stop()
    # connections get half of what the run databases' reserve leaves, (1024 - 64) / 2 = 480: a backlog
    # of 60, 60 for refused ones reading their 503, and a cap of 360 held; every other one a JSON 503
    assert len(socks) == 1040, len(socks)
    assert len(held) == 360, (len(held), len(refused))
    assert len(refused) == 1040 - 360
    for answer in refused:
        assert answer.startswith(b"HTTP/1.1 503 "), answer[:200]
        assert b'"server_busy"' in answer and b'"error"' in answer, answer[:400]
    assert busy.status_code == 503 and busy.json()["error"]["code"] == "server_busy", busy.text
    assert recovered < RECOVERY_S
    assert run.status_code == 201, run.text
    assert _err_bytes(srv) < 4096, srv.output()[-3000:]
    assert "Too many open files" not in srv.output(), "accept() ran out of descriptors"

def _closed_within(socks: list[socket.socket], limit: float) -> list[float]:
    """Seconds until the server closed each socket (reading and dropping what it sent); fails past ``limit``."""
    started = time.monotonic()
    times = []
    for sock in socks:
        left = limit - (time.monotonic() - started)
        assert left > 0, f"{len(socks) - len(times)} connections still open after {limit}s"
        assert _answer(sock, left) is not None, f"a connection is still open after {limit}s"
        times.append(time.monotonic() - started)
        sock.close()
    return times


def test_local_half_sent_requests_are_closed_after_the_header_timeout(tmp_path):
    """LOCAL: header_timeout = 1 s; 150 connections that never finish their headers."""
    srv = _server(tmp_path, header_timeout=1.0).start()
    try:
        silent = _stalled(srv, 50, b"")
        partial = _stalled(srv, 50)
        trickle = _stalled(srv, 30, b"POST /runs HTTP/1.1\r\nHost: x\r\nAuthorization: Bea")
        kept_alive = []
        for _ in range(20):  # one complete request, then half of the next
            sock = _connect(srv)
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            assert sock.recv(65536).startswith(b"HTTP/1.1 200 ")
            sock.sendall(b"GET /health HTTP/1.1\r\nHo")
            kept_alive.append(sock)
        opened = time.monotonic()
        for sock in trickle:  # bytes keep coming, the headers never end: no extension
            sock.sendall(b"r")
        during = httpx.get(f"{srv.url}/health", timeout=5)
        times = _closed_within(silent + partial + trickle + kept_alive, 4.0)
        elapsed = time.monotonic() - opened
        after = httpx.get(f"{srv.url}/health", timeout=5)
    finally:
        srv.stop()
    assert during.status_code == 200 and after.status_code == 200
    assert len(times) == 150
    assert elapsed < 3.0, f"the last half-sent request was closed {elapsed:.2f}s after they were opened"
    assert _err_bytes(srv) < 4096, srv.output()[-3000:]


def test_local_a_stalled_body_gets_408_after_the_body_timeout(tmp_path):
    """LOCAL: body_timeout = 1 s; the headers came, a tenth of the declared body never follows."""
    srv = _server(tmp_path, body_timeout=1.0, header_timeout=1.0).start()
    try:
        socks = []
        for _ in range(20):
            sock = _connect(srv)
            sock.sendall(f"POST /runs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {srv.token}\r\n"
                         "Content-Length: 1000\r\n\r\n".encode() + b'{"workflow": ')
            socks.append(sock)
        started = time.monotonic()
        answers = [_answer(sock, 4.0) for sock in socks]
        elapsed = time.monotonic() - started
        listed = httpx.get(f"{srv.url}/runs", headers=srv.headers, timeout=5)
    finally:
        for sock in socks:
            sock.close()
        srv.stop()
    for answer in answers:
        assert answer is not None and answer.startswith(b"HTTP/1.1 408 "), answer
        assert b'"request_timeout"' in answer and b"connection: close" in answer.lower(), answer
    assert 0.9 < elapsed < 3.0, elapsed
    assert listed.json()["runs"] == []
    assert _err_bytes(srv) < 4096, srv.output()[-3000:]


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_local_stalled_unauthenticated_bodies_do_not_grow_the_server(tmp_path):
    """LOCAL: 100 connections each declaring 1 MiB, sending 512 KiB without a token, then stalling."""
    srv = _server(tmp_path, max_body=2 * 1024 * 1024, header_timeout=30.0, body_timeout=60.0).start()
    chunk = b"x" * (512 * 1024)
    try:
        httpx.post(f"{srv.url}/runs", headers=srv.headers, json={"workflow": "steps"}, timeout=5)
        before = _rss_kib(srv.proc.pid)
        socks, answers = [], []
        for _ in range(100):
            sock = _connect(srv)
            sock.sendall(b"POST /runs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         b"Content-Length: 1048576\r\n\r\n")
            answers.append(sock.recv(65536))  # the 401 comes before any of the body is sent
            sock.sendall(chunk)
            socks.append(sock)
        time.sleep(0.5)
        during = _rss_kib(srv.proc.pid)
        health = httpx.get(f"{srv.url}/health", timeout=5)
    finally:
        for sock in socks:
            sock.close()
        srv.stop()
    assert all(answer.startswith(b"HTTP/1.1 401 ") for answer in answers), answers[0][:200]
    assert health.status_code == 200
    growth_mib = (during - before) / 1024
    # 100 x 512 KiB = 50 MiB were sent; buffering them would show here
    assert growth_mib < 10, f"RSS grew {growth_mib:.1f} MiB ({before} -> {during} KiB)"


def test_local_repeated_tracebacks_are_rate_limited():
    """In process: the filter ``serve --local`` puts on its log handlers (flareflow.local.guard)."""
    import io
    import logging

    from flareflow.local.guard import RepeatFilter

    now = [0.0]
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    limiter = RepeatFilter(burst=3, interval=10.0, clock=lambda: now[0])
    handler.addFilter(limiter)
    noisy = logging.getLogger("test.noisy")
    guard_log = logging.getLogger("flareflow.local.guard")
    noisy.addHandler(handler)
    guard_log.addHandler(handler)
    noisy.propagate = guard_log.propagate = False
    try:
        for i in range(10_000):
            try:
                raise OSError(24, "Too many open files")
            except OSError:
                noisy.exception("socket.accept() out of system resource")
            if i % 100 == 0:
                noisy.warning("another message %d", i)  # one template: limited on its own
        passed = out.getvalue()
        now[0] = 11.0
        noisy.error("later")
    finally:
        noisy.removeHandler(handler)
        guard_log.removeHandler(handler)
        noisy.propagate = guard_log.propagate = True
    assert passed.count("Traceback") == 3
    assert passed.count("another message") == 3
    assert len(passed.encode()) < 4096, len(passed.encode())
    summary = out.getvalue()[len(passed):]
    assert "9997 more like 'socket.accept() out of system resource'" in summary, summary
    assert "97 more like 'another message %d'" in summary, summary
    assert summary.rstrip().endswith("later")

"""Request latency on a kept-alive connection (what every SDK, browser and proxy uses).

Found: each request on a reused connection takes ~42 ms on loopback, against ~2 ms on a fresh one.
`flareflow/cli/serve.py` ``bind()`` creates the listening socket as ``socket.socket(family,
SOCK_STREAM)`` (proto 0); asyncio only sets TCP_NODELAY on accepted sockets whose proto is
IPPROTO_TCP, so Nagle holds the second write of each response (uvicorn writes headers and body
separately) until the client's delayed ACK, 40 ms later. The same holds back SSE frames. Verified by
patching the socket's proto to IPPROTO_TCP: 42 ms -> 1.4 ms. Fixed in serve.py; this test guards it.
"""

from __future__ import annotations

import statistics
import time

import httpx


def test_keep_alive_requests_are_not_held_by_nagle(server):
    with httpx.Client(base_url=server.url, headers=server.headers, timeout=5) as client:
        client.get("/health")  # open the connection
        timings = []
        for _ in range(10):
            started = time.perf_counter()
            assert client.get("/workflows").status_code == 200
            timings.append(time.perf_counter() - started)
    assert statistics.median(timings) < 0.02, f"median {statistics.median(timings) * 1000:.1f} ms per request"

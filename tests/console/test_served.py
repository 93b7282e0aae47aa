"""The console is the same bytes, with the same headers, from the local server and from the Worker."""

from __future__ import annotations

from typing import Any

import httpx

from flareflow.console import CSP, assets


def _fetch_all(server: Any) -> dict[str, tuple[int, str, str, str, bytes]]:
    out = {}
    for path in assets().paths():  # no token: the page and its files are public
        response = httpx.get(server.url + path, timeout=15)
        out[path] = (response.status_code, response.headers.get("content-type", ""),
                     response.headers.get("cache-control", ""), response.headers.get("content-security-policy", ""),
                     response.content)
    return out


def test_every_console_file_is_served_as_packaged(console_server: Any) -> None:
    served = _fetch_all(console_server)
    for path, (status, content_type, cache, csp, body) in served.items():
        packaged = assets().get(path)
        assert packaged is not None
        assert status == 200, (path, status, body[:200])
        assert body == packaged.body, f"{path}: the bytes differ from the package's"
        assert content_type.split(";")[0] == packaged.content_type.split(";")[0], (path, content_type)
        assert cache == packaged.cache_control and csp == CSP, (path, cache, csp)
    page = httpx.get(console_server.url + "/", timeout=15)
    assert page.headers["x-content-type-options"] == "nosniff"
    missing = httpx.get(console_server.url + "/console/nope.0123456789ab.js", timeout=15)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    assert httpx.get(console_server.url + "/runs", timeout=15).status_code == 401


def test_head_answers_like_get_without_a_body_and_405_says_what_is_allowed(console_server: Any) -> None:
    head = httpx.head(console_server.url + "/", timeout=15)
    assert head.status_code == 200 and head.headers["content-type"].startswith("text/html")
    assert head.content == b""
    assert httpx.head(console_server.url + "/health", timeout=15).status_code == 200
    posted = httpx.post(console_server.url + "/health", timeout=15)
    assert posted.status_code == 405 and posted.headers["allow"] == "GET, HEAD"


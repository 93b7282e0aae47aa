"""The console's files as the router serves them: hashed names, rewritten references, headers."""

from __future__ import annotations

import asyncio
import re

from flareflow.console import CSP, Assets, assets
from flareflow.worker.http import Request
from flareflow.worker.router import Router

from ..api.test_openapi import FakeBackend

PAGE = b'<link rel="stylesheet" href="/console/app.css"><script type="module" src="/console/app.js"></script>'


def _files(api: bytes = b"export const x = 1;\n") -> dict[str, bytes]:
    return {"index.html": PAGE, "app.css": b"body{}", "api.js": api,
            "app.js": b'import {x} from "./api.js";\nconsole.log(x);\n'}


def test_assets_are_served_by_content_hash_and_the_page_names_the_hashes() -> None:
    table = Assets(_files())
    page = table.get("/")
    assert page is not None and page.cache_control == "no-cache"
    hashed = re.findall(r'/console/([a-z]+\.[0-9a-f]{12}\.(?:js|css))', page.text)
    assert sorted(hashed) == sorted([table.names["app.css"], table.names["app.js"]])
    script = table.get("/console/" + table.names["app.js"])
    assert script is not None and "immutable" in script.cache_control
    assert f'from "./{table.names["api.js"]}"' in script.text  # imports resolve to hashed names too
    assert table.get("/console/app.js") is None  # only hashed names: a stale page never mixes versions


def test_a_changed_module_changes_the_hash_of_the_script_importing_it() -> None:
    before, after = Assets(_files()), Assets(_files(b"export const x = 2;\n"))
    assert before.names["api.js"] != after.names["api.js"]
    assert before.names["app.js"] != after.names["app.js"]
    assert before.names["app.css"] == after.names["app.css"]


def _get(router: Router, path: str, method: str = "GET") -> object:
    return asyncio.run(router.handle(Request(method, path)))


def test_the_packaged_console_is_public_and_every_reference_resolves() -> None:
    router = Router(FakeBackend(), token="secret")
    page = _get(router, "/")
    assert page.status == 200 and isinstance(page.body, bytes)  # type: ignore[attr-defined]
    assert page.headers["content-type"].startswith("text/html")  # type: ignore[attr-defined]
    assert page.headers["content-security-policy"] == CSP  # type: ignore[attr-defined]
    assert "default-src 'self'" in CSP and "unsafe-inline" not in CSP
    referenced = set(re.findall(r'"(/console/[^"]+)"', page.body.decode()))  # type: ignore[attr-defined]
    assert referenced, "the page loads no script or stylesheet"
    for path in assets().paths():
        served = _get(router, path)
        assert served.status == 200, path  # type: ignore[attr-defined]
        if path.endswith(".js"):  # every module a script imports is served under its hashed name
            for name in re.findall(r'from "\./([^"]+)"', served.body.decode()):  # type: ignore[attr-defined]
                assert f"/console/{name}" in assets().paths(), (path, name)
    assert referenced <= set(assets().paths())


def test_console_paths_answer_sentences_for_mistakes() -> None:
    router = Router(FakeBackend(), token="secret")
    missing = _get(router, "/console/nope.0123456789ab.js")
    assert missing.status == 404 and missing.body["error"]["code"] == "not_found"  # type: ignore[attr-defined]
    posted = _get(router, "/", "POST")
    assert posted.status == 405  # type: ignore[attr-defined]
    assert _get(router, "/runs").status == 401  # type: ignore[attr-defined]  # data still needs the token


def test_only_plain_file_names_under_console_are_public() -> None:
    """A path that only starts like a console file is not a way around the token."""
    router = Router(FakeBackend(), token="secret")
    for path in ("/console/../runs", "/console/..%2Fruns", "/console/x/../../runs", "/console/"):
        assert _get(router, path).status in (401, 404), path  # type: ignore[attr-defined]
    assert _get(router, "/console/../runs").status == 401  # type: ignore[attr-defined]


def test_an_import_cycle_between_console_modules_is_refused_when_the_table_is_built() -> None:
    files = {"a.js": b'import "./b.js";\n', "b.js": b'import "./a.js";\n'}
    try:
        Assets(files)
    except ValueError as exc:
        assert "a.js" in str(exc) and "b.js" in str(exc)
    else:
        raise AssertionError("a cycle was accepted: its modules would import names nobody serves")

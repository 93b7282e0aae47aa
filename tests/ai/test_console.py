"""The console's run view shows the run's AI calls (from ``GET /ai/calls?run=``), in a real Chromium
on both hosts: provider or cache, model, tokens, and a failed call's error."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.api.hosts import HOSTS, make_server

from .project import write_project
from .standin import StandIn, standin_server

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def standin() -> Iterator[StandIn]:
    with standin_server() as server:
        yield server


@pytest.fixture(scope="module", params=sorted(HOSTS))
def server(request: pytest.FixtureRequest, standin: StandIn, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    kind = str(request.param)
    folder = tmp_path_factory.mktemp(f"ai-console-{kind}")
    srv = make_server(kind, folder, lambda root: write_project(root, standin.url))
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Module-scoped: Playwright's sync API holds an event loop in this thread while it is open."""
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        if os.environ.get("CI"):
            pytest.fail("Debian's chromium is not installed (the README's test command installs it)", pytrace=False)
        pytest.skip("Debian's chromium is not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


def test_run_view_lists_the_runs_ai_calls(server: Any, standin: StandIn, browser: Any) -> None:
    prompt = f"console on {server.kind}"
    first = httpx.post(f"{server.url}/api/workflow", json={"prompt": prompt}, headers=server.headers, timeout=60)
    second = httpx.post(f"{server.url}/api/workflow", json={"prompt": prompt}, headers=server.headers, timeout=60)
    assert first.status_code == second.status_code == 200, (first.text, second.text)
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        page.set_default_timeout(20_000)
        page.goto(f"{server.url}/#token={server.token}")
        page.wait_for_selector("#runs")
        for body, source in ((first.json(), "openai"), (second.json(), "cache")):
            page.evaluate("route => { location.hash = route; }", f"#/runs/{body['run_id']}")
            page.wait_for_selector("#ai-calls:not([hidden]) tbody tr")
            cells = page.locator("#ai-calls tbody tr").first.locator("td").all_inner_texts()
            assert cells[0] == "generate#1" and cells[1] == "stand-in-model" and cells[2] == source, cells
            assert cells[3] == f"7 / {len(f'answer to: {prompt}'.split())}", cells  # a hit logs the recorded usage
        assert errors == []
    finally:
        context.close()

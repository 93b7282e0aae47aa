"""Fixtures of the console tests: a real Chromium (Debian's, driven by Playwright) against real servers.

* ``browser`` -- one headless Chromium for these tests (``/usr/bin/chromium``; the README's test
  command installs it). Missing: the tests skip locally and FAIL when ``CI`` is set.
* ``console_server`` -- a server per host (``local``: ``flareflow serve --local``; ``workerd``:
  ``flareflow serve`` on the workerd harness) on a project made by ``flareflow new`` plus `SURVEY`.
* ``page`` -- a fresh browser context and page per test, its console errors collected; a screenshot
  of it is saved under ``tests/console/artifacts/`` when the test ends (CI keeps them).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.api.hosts import HOSTS, clean_env, flareflow_executable, make_server
from tests.conformance.project import FRAGILE as CONFORMANCE_FRAGILE

ARTIFACTS = Path(__file__).with_name("artifacts")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]

SURVEY = '''\
"""survey: one question with a form-shaped schema (the console builds its form from it)."""

from flareflow import Run, workflow

SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 40},
        "age": {"type": "integer", "minimum": 0, "maximum": 150},
        "plan": {"enum": ["free", "pro"]},
        # several types: the console offers a JSON field and leaves the checking to the server
        "code": {"type": ["string", "integer"], "maxLength": 4},
    },
    "required": ["name", "age"],
}


@workflow("survey")
async def survey(run: Run, inp=None):
    """Asks for a name, an age and a plan."""
    answer = await run.ask("Who are you?", schema=SCHEMA)
    return {"answer": answer}
'''


FRAGILE = '''\
"""fragile: two steps, then `charge`, which fails (one attempt) until the time `until` in its input."""

from flareflow import Retry, Run, workflow


def ident(value):
    return value

''' + CONFORMANCE_FRAGILE


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def write_console_project(path: Path) -> Path:
    """The user's starting point (``flareflow new``: hello, onboarding, report) plus ``survey`` and
    ``fragile`` (a run that fails until a time in its input: what Retry and Restart work on)."""
    subprocess.run([flareflow_executable(), "new", str(path)], check=True, capture_output=True,
                   env=clean_env(), stdin=subprocess.DEVNULL)
    (path / "workflows" / "survey.py").write_text(SURVEY, encoding="utf-8")
    (path / "workflows" / "fragile.py").write_text(FRAGILE, encoding="utf-8")
    return path


@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
    """Package-scoped, not session-scoped: Playwright's sync API keeps an event loop running in the
    main thread while it is open, and every later test's ``asyncio.run`` would refuse to start."""
    executable = chromium_path()
    if executable is None:
        message = "Debian's chromium is not installed (the README's test command installs it)"
        if os.environ.get("CI"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="package", params=sorted(HOSTS))
def console_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    kind = str(request.param)
    srv = make_server(kind, tmp_path_factory.mktemp(f"console-{kind}"), write_console_project)
    yield srv
    srv.stop()


class Page:
    """A Playwright page with the console errors it logged (CSP violations included)."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.errors: list[str] = []
        page.on("console", lambda msg: self.errors.append(msg.text) if msg.type == "error" else None)
        page.on("pageerror", lambda exc: self.errors.append(f"uncaught: {exc}"))


@pytest.fixture
def page(browser: Any, request: pytest.FixtureRequest) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    wrapped = Page(context.new_page())
    wrapped.page.set_default_timeout(15_000)
    yield wrapped
    ARTIFACTS.mkdir(exist_ok=True)
    name = request.node.name.replace("/", "_").replace("[", "-").replace("]", "")
    try:
        wrapped.page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    finally:
        context.close()

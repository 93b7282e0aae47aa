"""The web console in a real Chromium, on both hosts: what a user sees and does, end to end.

Each test opens the link the server prints (``/#token=…``) or a wrong one, and works through the page
only: forms, buttons, the live view. The API is used beside the browser only to check what the page
shows against what the server holds (the event list: no gap, no duplicate) and to restart the server.
"""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest

from .conftest import Page

CUSTOMER = {"email": "ada@example.com", "plan": "pro"}


def _api(server: Any, method: str, path: str, body: Any = None) -> Any:
    response = httpx.request(method, server.url + path, headers=server.headers, json=body, timeout=15)
    assert response.status_code < 400, response.text
    return response.json()


def _events(server: Any, run_id: str) -> list[dict[str, Any]]:
    headers = {**server.headers, "accept": "application/json"}
    response = httpx.get(f"{server.url}/runs/{run_id}/events", params={"limit": 10000}, headers=headers, timeout=15)
    return list(response.json()["events"])


def _open(page: Page, server: Any, route: str = "") -> None:
    page.page.goto(f"{server.url}/#token={server.token}")
    page.page.wait_for_selector("#runs")
    if route:
        page.page.evaluate("route => { location.hash = route; }", route)


def _wait_status(page: Page, status: str, timeout: float = 30_000) -> None:
    page.page.wait_for_function("s => document.querySelector('#run-status')?.textContent.trim() === s",
                                arg=status, timeout=timeout)


def _seqs(page: Page) -> list[int]:
    return list(page.page.evaluate("window.flareflowConsole.seqs()"))


def _assert_gapless(page: Page, server: Any, run_id: str) -> None:
    """The page holds exactly the server's events: 1..N, none missing, none twice."""
    expected = [e["seq"] for e in _events(server, run_id)]
    deadline = time.monotonic() + 10
    while _seqs(page) != expected and time.monotonic() < deadline:
        time.sleep(0.1)
    seqs = _seqs(page)
    assert seqs == expected, f"page {seqs} != server {expected}"
    assert seqs == list(range(1, len(seqs) + 1))


def test_token_link_then_start_watch_send_answer_complete(page: Page, console_server: Any) -> None:
    p = page.page
    _open(page, console_server)
    assert "token=" not in p.url, "the token stays in the address bar"
    p.click("text=Workflows")
    p.wait_for_selector('#workflows li[data-workflow="onboarding"]')
    p.click('#workflows li[data-workflow="onboarding"] >> text=Start run')
    p.fill("#start-input", json.dumps(CUSTOMER))
    p.click("#start-submit")
    p.wait_for_selector("#run[data-run-id]")
    run_id = p.get_attribute("#run", "data-run-id")
    assert run_id
    # the steps appear live, as bars on the timeline
    for step in ("create account", "crm", "billing"):
        p.wait_for_selector(f'#timeline .step-bar:has-text("{step}")')
    _wait_status(page, "waiting")
    # send the approval event from the form
    assert p.input_value("#event-type") == "approval"  # prefilled with what the run waits for
    p.fill("#event-payload", '{"by": "ada"}')
    p.click("#event-send")
    # then the boolean question: two buttons
    p.wait_for_selector('#question button[data-answer="true"]')
    assert "Send the welcome mail?" in p.inner_text("#question")
    p.click('#question button[data-answer="true"]')
    _wait_status(page, "completed")
    p.wait_for_selector('#timeline .step-bar:has-text("welcome mail")')
    _assert_gapless(page, console_server, run_id)
    # the state slider replays the recorded patches in the browser
    assert page.page.evaluate("window.flareflowConsole.state()") == {"account": "acct_ada", "approved_by": "ada"}
    assert not [e for e in page.errors if "Content Security Policy" in e or "uncaught" in e], page.errors
    # and the runs table lists it, completed
    p.click("text=Runs")
    p.wait_for_selector(f'#runs tr[data-run-id="{run_id}"] .badge:has-text("completed")')


def _watch_waiting_onboarding(page: Page, server: Any) -> dict[str, Any]:
    """Start ``onboarding`` over the API and open it in the page, live and waiting for ``approval``."""
    run: dict[str, Any] = _api(server, "POST", "/runs", {"workflow": "onboarding", "input": CUSTOMER})
    _open(page, server, f"#/runs/{run['id']}")
    _wait_status(page, "waiting")
    page.page.wait_for_function("() => document.querySelector('#live')?.textContent.trim() === 'live'")
    return run


def test_the_view_survives_a_server_restart_with_no_gap_and_no_duplicate(page: Page, console_server: Any) -> None:
    p = page.page
    run = _watch_waiting_onboarding(page, console_server)
    console_server.restart()
    # the page notices, says so, and comes back by itself
    p.wait_for_function("() => document.querySelector('#live')?.textContent.trim() === 'live'", timeout=60_000)
    _api(console_server, "POST", f"/runs/{run['id']}/events", {"type": "approval", "payload": {"by": "bob"}})
    p.wait_for_selector('#question button[data-answer="false"]', timeout=30_000)
    p.click('#question button[data-answer="false"]')
    _wait_status(page, "completed")
    _assert_gapless(page, console_server, run["id"])


def test_the_view_says_reconnecting_while_the_server_is_down(page: Page, console_server: Any) -> None:
    p = page.page
    run = _watch_waiting_onboarding(page, console_server)
    console_server.kill()
    try:
        p.wait_for_function("() => document.querySelector('#live')?.textContent.trim().startsWith('reconnecting')")
    finally:
        console_server.start(console_server.port)
    p.wait_for_function("() => document.querySelector('#live')?.textContent.trim() === 'live'", timeout=60_000)
    _api(console_server, "POST", f"/runs/{run['id']}/cancel", {"reason": "test over"})
    _wait_status(page, "cancelled")
    _assert_gapless(page, console_server, run["id"])


def test_a_wrong_token_shows_the_login_screen(page: Page, console_server: Any) -> None:
    p = page.page
    p.goto(f"{console_server.url}/#token=not-the-token")
    p.wait_for_selector("#login")
    p.wait_for_selector("#login-error:not(:empty)")
    assert "not-the-token" not in p.url
    # signing in with the right one from the form works
    p.fill("#token", console_server.token)
    p.click('#login button[type="submit"]')
    p.wait_for_selector("#runs")


def test_the_schema_form_shows_the_servers_message_next_to_the_field(page: Page, console_server: Any) -> None:
    p = page.page
    run = _api(console_server, "POST", "/runs", {"workflow": "survey"})
    _open(page, console_server, f"#/runs/{run['id']}")
    p.wait_for_selector("#question")
    p.locator('#question input[name="name"]').fill("Ada")
    age = p.locator('#question input[name="age"]')
    age.fill("200")  # over the schema's maximum: the form says so before sending
    p.click("#answer-submit")
    local = p.wait_for_selector('#question [data-path="$.age"] > .field-error:not([hidden])')
    assert local is not None and "150" in local.inner_text()
    age.fill("36")
    p.locator('#question textarea[name="code"]').fill('"toolong"')  # only the server checks this one
    p.click("#answer-submit")
    error = p.wait_for_selector('#question [data-path="$.code"] > .field-error:not([hidden])')
    assert error is not None
    refused = httpx.post(f"{console_server.url}/runs/{run['id']}/input", headers=console_server.headers,
                         json={"value": {"name": "Ada", "age": 36, "code": "toolong"}}, timeout=15)
    message = refused.json()["error"]["message"]  # "answer rejected: $.code: must be at most 4 ..."
    assert refused.status_code == 400 and message.split(": ", 2)[-1] in error.inner_text(), \
        (error.inner_text(), message)
    assert p.evaluate("() => document.querySelector('#run-status').textContent.trim()") == "waiting"
    p.locator('#question textarea[name="code"]').fill('"ok"')
    p.click("#answer-submit")
    _wait_status(page, "completed")
    answer = _api(console_server, "GET", f"/runs/{run['id']}")["output"]["answer"]
    assert answer == {"name": "Ada", "age": 36, "code": "ok"}


def test_live_view_falls_back_to_sse_when_websockets_are_blocked(page: Page, console_server: Any) -> None:
    p = page.page
    p.add_init_script("delete window.WebSocket;")
    run = _api(console_server, "POST", "/runs", {"workflow": "onboarding", "input": CUSTOMER})
    _open(page, console_server, f"#/runs/{run['id']}")
    _wait_status(page, "waiting")
    p.wait_for_function("() => document.querySelector('#live')?.textContent.trim() === 'live (SSE)'")
    _api(console_server, "POST", f"/runs/{run['id']}/events", {"type": "approval", "payload": {}})
    p.wait_for_selector('#question button[data-answer="true"]')
    p.click('#question button[data-answer="true"]')
    _wait_status(page, "completed")
    _assert_gapless(page, console_server, run["id"])


@pytest.mark.parametrize("width", [390])
def test_phone_width_shows_runs_and_a_run(page: Page, console_server: Any, width: int) -> None:
    p = page.page
    p.set_viewport_size({"width": width, "height": 844})
    run = _api(console_server, "POST", "/runs", {"workflow": "hello"})
    _open(page, console_server)
    p.wait_for_selector(f'#runs [data-run-id="{run["id"]}"]')
    overflow = p.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 1, f"the page is {overflow}px wider than a phone"
    p.click(f'#runs [data-run-id="{run["id"]}"]')
    p.wait_for_selector("#run")
    _wait_status(page, "completed")


def _tab_to(page: Page, selector: str, presses: int = 80) -> None:
    """Press Tab until the focused element matches ``selector`` (a keyboard-only user's path)."""
    for _ in range(presses):
        page.page.keyboard.press("Tab")
        if page.page.evaluate("s => document.activeElement?.matches(s) ?? false", selector):
            return
    raise AssertionError(f"{selector} is not reachable with Tab")


def test_keyboard_alone_opens_a_run_and_answers_it(page: Page, console_server: Any) -> None:
    run = _api(console_server, "POST", "/runs", {"workflow": "onboarding", "input": CUSTOMER})
    _api(console_server, "POST", f"/runs/{run['id']}/events", {"type": "approval", "payload": {"by": "kb"}})
    page.page.emulate_media(color_scheme="dark")  # and the screenshot of this test shows the dark theme
    _open(page, console_server)
    _tab_to(page, f'#runs [data-run-id="{run["id"]}"]')
    page.page.keyboard.press("Enter")
    page.page.wait_for_selector(f'#run[data-run-id="{run["id"]}"]')
    page.page.wait_for_selector('#question button[data-answer="true"]')
    _tab_to(page, '#question button[data-answer="true"]')
    page.page.keyboard.press("Space")
    _wait_status(page, "completed")
    background = page.page.evaluate("() => getComputedStyle(document.body).backgroundColor")
    channels = [int(c) for c in background[background.index("(") + 1:background.index(")")].split(",")[:3]]
    assert sum(channels) < 3 * 100, f"dark mode asked, page background is {background}"


def _failed_fragile(server: Any) -> tuple[dict[str, Any], float]:
    """A ``fragile`` run that failed at ``charge``, and the time after which ``charge`` succeeds. Only
    time reaches both hosts' step code: a host too slow to fail within the window (the run completed)
    gets a wider one."""
    for window in (3.0, 9.0, 27.0):
        until = time.time() + window
        run = _api(server, "POST", "/runs", {"workflow": "fragile", "input": {"until": until}})
        deadline = time.time() + 30 + window
        while run["status"] not in ("failed", "completed") and time.time() < deadline:
            time.sleep(0.1)
            run = _api(server, "GET", f"/runs/{run['id']}")
        if run["status"] != "completed" or time.time() < until:
            break
    assert run["status"] == "failed", run
    return run, until


def test_retry_and_restart_from_a_step_in_the_page(page: Page, console_server: Any) -> None:
    """A failed run shows Retry and Restart (a step picker): restart opens the new run, which says
    where it came from and did not run the steps before the chosen one; retry continues the original."""
    p = page.page
    run, until = _failed_fragile(console_server)
    _open(page, console_server, f"#/runs/{run['id']}")
    _wait_status(page, "failed")
    p.wait_for_selector("#act-retry:not([hidden]):not([disabled])")
    assert p.is_hidden("#act-pause") and p.is_hidden("#event-send")  # nothing else to do with a failed run
    options = p.eval_on_selector_all("#act-restart-step option", "os => os.map(o => o.value)")
    assert options == ["", "first#1", "second#1", "charge#1"]
    time.sleep(max(0.0, until - time.time()) + 0.3)  # the card service is back
    p.select_option("#act-restart-step", "second#1")
    p.click("#act-restart")
    p.wait_for_function("id => location.hash.startsWith('#/runs/') && !location.hash.endsWith(id)", arg=run["id"])
    p.wait_for_selector(f'#run[data-run-id]:not([data-run-id="{run["id"]}"])')
    new_id = p.get_attribute("#run", "data-run-id")
    _wait_status(page, "completed")
    p.wait_for_selector(f'.restarted-from a[href="#/runs/{run["id"]}"]')
    assert "second#1" in p.inner_text(".restarted-from")
    started = [e["name"] for e in _events(console_server, str(new_id)) if e["type"] == "step.started"]
    assert started == ["second", "charge", "last"]  # "first" was reused, not run again
    _assert_gapless(page, console_server, str(new_id))
    # back to the original: Retry continues it from its failed step, live
    p.evaluate("route => { location.hash = route; }", f"#/runs/{run['id']}")
    _wait_status(page, "failed")
    p.click("#act-retry")
    _wait_status(page, "completed")
    started = [e["name"] for e in _events(console_server, run["id"]) if e["type"] == "step.started"]
    assert started == ["first", "second", "charge", "charge", "last"]
    _assert_gapless(page, console_server, run["id"])
    assert p.is_hidden("#act-retry")
    assert not [e for e in page.errors if "Content Security Policy" in e or "uncaught" in e], page.errors


def test_sse_takes_over_when_sockets_never_open(page: Page, console_server: Any) -> None:
    """A proxy that drops upgrades: the socket closes before it opens, twice; the page moves to SSE."""
    page.page.add_init_script("""
      window.WebSocket = class {
        static OPEN = 1;
        constructor() {
          this.readyState = 0;
          setTimeout(() => this.onclose && this.onclose({code: 1006, reason: ""}), 20);
        }
        close() {}
        send() {}
      };
    """)
    run = _api(console_server, "POST", "/runs", {"workflow": "onboarding", "input": CUSTOMER})
    _open(page, console_server, f"#/runs/{run['id']}")
    page.page.wait_for_function("() => document.querySelector('#live')?.textContent.trim() === 'live (SSE)'")
    _api(console_server, "POST", f"/runs/{run['id']}/events", {"type": "approval", "payload": {}})
    page.page.wait_for_selector('#question button[data-answer="false"]')
    page.page.click('#question button[data-answer="false"]')
    _wait_status(page, "completed")
    _assert_gapless(page, console_server, run["id"])


def test_retry_from_the_page_reopens_a_failed_run_live(page: Page, console_server: Any) -> None:
    p = page.page
    bad = {"email": "not-an-address"}  # create account refuses it: NonRetryableError, the run fails
    run = _api(console_server, "POST", "/runs", {"workflow": "onboarding", "input": bad})
    _open(page, console_server, f"#/runs/{run['id']}")
    _wait_status(page, "failed")
    assert "not an email address" in p.inner_text("#run")  # the error, as the header shows it
    p.click("#act-retry")
    p.wait_for_function("() => window.flareflowConsole.seqs().length > 0 && "
                        "document.querySelector('#run-status')?.textContent.trim() === 'failed' && "
                        "[...document.querySelectorAll('#events [data-seq]')].length > 0")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        types = [e["type"] for e in _events(console_server, run["id"])]
        if types.count("run.failed") == 2:
            break
        time.sleep(0.2)
    assert types.count("run.retried") == 1 and types.count("run.failed") == 2, types
    _assert_gapless(page, console_server, run["id"])  # the reopened stream picked up every new event


def test_a_step_of_a_parallel_helper_says_which_helper_it_ran_in(page: Page, console_server: Any) -> None:
    run = _api(console_server, "POST", "/runs", {"workflow": "report"})
    _open(page, console_server, f"#/runs/{run['id']}")
    _wait_status(page, "waiting")  # its branches are done; it asks whether to publish
    page.page.click('#timeline .step-bar:has-text("fetch") >> nth=0')
    panel = page.page.wait_for_selector("#step-panel:has-text('Branch')")
    assert panel is not None and "summarise_source" in panel.inner_text()

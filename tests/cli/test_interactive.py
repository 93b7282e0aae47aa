"""The onboarding example end to end: an external event, a question, answers from other processes and
from the terminal."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from .helpers import (
    COMMON_FIELDS,
    Live,
    assert_no_traceback,
    assert_one_error_line,
    copy_project,
    describe,
    ff,
    parse_ndjson,
    settled,
    stored,
)

ONBOARDED = {"status": "onboarded", "account": "acct_ada", "crm": "crm-ok", "billing": "billing-free",
             "mail": "sent to ada@example.com"}


def _is(type_: str, **fields: Any) -> Any:
    return lambda e: e["type"] == type_ and all(e.get(k) == v for k, v in fields.items())


@pytest.fixture(scope="module")
def onboarding(scaffolded: tuple[Path, subprocess.CompletedProcess[str]],
               tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """``run onboarding --json`` in the background; approve and answer it from other processes."""
    source, created = scaffolded
    assert created.returncode == 0, created.stderr
    root = copy_project(source, tmp_path_factory.mktemp("onboarding") / "demo")
    seen: dict[str, Any] = {"root": root}
    with Live("run", "onboarding", "-i", "email=ada@example.com", "--json", cwd=root) as run:
        waiting = run.wait_event(_is("run.waiting", reason="event"), what="run.waiting for the approval event")
        run_id = seen["run_id"] = waiting["run_id"]
        seen["waiting"] = waiting
        seen["send"] = ff("send-event", run_id, "approval", '{"by":"qa"}', cwd=root)
        seen["requested"] = run.wait_event(_is("input.requested"), what="input.requested")
        run.wait_event(_is("run.waiting", reason="input"), what="run.waiting for the answer")
        seen["before_bad"] = settled(root)
        seen["bad"] = ff("answer", run_id, '"nope"', cwd=root)
        seen["after_bad"] = stored(root)
        seen["good"] = ff("answer", run_id, "true", cwd=root)
        seen["code"] = run.finish(timeout=20)
        seen["stdout"], seen["stderr"] = run.stdout, run.stderr
    return seen


def test_onboarding_waits_for_the_approval_event(onboarding: dict[str, Any]) -> None:
    waiting = onboarding["waiting"]
    assert waiting["event_type"] == "approval" and waiting["until"]  # 7-day timeout
    send = onboarding["send"]
    assert send.returncode == 0, describe(send)
    assert send.stdout.strip() == f"✓ event approval delivered to {onboarding['run_id']}"
    assert send.stderr == ""


def test_onboarding_asks_its_question(onboarding: dict[str, Any]) -> None:
    requested = onboarding["requested"]
    assert requested["prompt"] == "Send the welcome mail?"
    assert requested["schema"] == {"type": "boolean"}
    assert requested["step"] == "ask#1"


def test_an_answer_that_fails_the_schema_is_refused_and_changes_nothing(onboarding: dict[str, Any]) -> None:
    assert_one_error_line(onboarding["bad"], "boolean")
    assert onboarding["after_bad"] == onboarding["before_bad"]


def test_onboarding_completes_after_a_valid_answer(onboarding: dict[str, Any]) -> None:
    good = onboarding["good"]
    assert good.returncode == 0, describe(good)
    assert good.stdout.strip() == f"✓ answer delivered to {onboarding['run_id']}"
    assert onboarding["code"] == 0, onboarding["stdout"] + onboarding["stderr"]
    events = parse_ndjson(onboarding["stdout"])  # stdout holds nothing but wire events
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert all(tuple(e)[:4] == COMMON_FIELDS and e["run_id"] == onboarding["run_id"] for e in events)
    types = [e["type"] for e in events]
    assert types.count("input.received") == 1 and types.count("event.received") == 1
    received = next(e for e in events if e["type"] == "event.received")
    assert received["event_type"] == "approval" and received["payload"] == {"by": "qa"}
    answer = next(e for e in events if e["type"] == "input.received")
    assert answer["value"] is True and answer["step"] == "ask#1"
    assert events[-1]["type"] == "run.completed"
    assert events[-1]["output"] == ONBOARDED
    assert_no_traceback(onboarding["stdout"], onboarding["stderr"])


def test_json_mode_prompts_on_stderr_and_explains_how_to_answer(onboarding: dict[str, Any]) -> None:
    err = onboarding["stderr"]
    assert "Send the welcome mail?" in err
    assert "no terminal input; answer with: flareflow answer" in err


def test_json_mode_answer_hint_is_one_copyable_line(onboarding: dict[str, Any]) -> None:
    expected = f"flareflow answer {onboarding['run_id']} '<json>' --step 'ask#1'"
    assert any(expected in line for line in onboarding["stderr"].splitlines()), onboarding["stderr"]


def test_prompt_shows_the_yes_no_hint(onboarding: dict[str, Any]) -> None:
    assert "Send the welcome mail? [y/n]:" in onboarding["stderr"], onboarding["stderr"]


def test_answer_typed_at_the_terminal(project: Path) -> None:
    """The live view's prompt reads answers from stdin: a wrong one is refused and asked again."""
    with Live("run", "onboarding", "-i", "email=ada@example.com", cwd=project, stdin=subprocess.PIPE) as run:
        hint = run.wait_line(lambda line: "send it with: flareflow send-event" in line, what="the send-event hint")
        match = re.search(r"send-event ([0-9a-f]+) approval '\{\.\.\.\}'", hint)
        assert match, hint
        run_id = match[1]
        sent = ff("send-event", run_id, "approval", '{"by":"qa"}', cwd=project)
        assert sent.returncode == 0, describe(sent)
        run.wait_line(lambda line: line.strip() == "? Send the welcome mail?", what="the question")
        assert run.proc.stdin is not None
        run.proc.stdin.write("maybe\n")
        run.proc.stdin.flush()
        refused = run.wait_line(lambda line: "expected boolean" in line, what="the refusal of 'maybe'")
        assert "answer rejected" in refused
        run.proc.stdin.write("y\n")
        run.proc.stdin.flush()
        code = run.finish(timeout=20)
        out, err = run.stdout, run.stderr
    assert code == 0, out + err
    assert err == ""
    assert_no_traceback(out)
    lines = [line.strip() for line in out.splitlines()]
    # piped stdin is not echoed, so what follows a prompt lands on the prompt's line
    assert any(line.endswith("⇢ answer true") for line in lines), out
    assert sum(line.startswith("? Send the welcome mail?") for line in lines) == 1, out  # the question, once
    assert sum(line.startswith("↳ answer [y/n]:") for line in lines) == 2, out  # asked, asked again
    assert any(line.startswith("✓ welcome mail") for line in lines)
    done = next(i for i, line in enumerate(lines) if line.startswith("✔ completed"))
    assert json.loads("\n".join(lines[done + 1:])) == ONBOARDED
    assert "no terminal input" not in out

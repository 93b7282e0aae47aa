"""Tracebacks and step logs through the real ``flareflow`` command (issue #11 item 4).

Tried, each as a user's process in a project of its own: ``flareflow run NAME --json`` for a workflow
whose module prints when imported, whose body prints and whose steps print and log -- every stdout line
parses as JSON and the steps' output arrives as their events' ``logs``; the live view and ``runs show``
printing the failing step's frames (``at workflows/shop.py:LINE in create_account``) and each attempt's
logs; ``Retry(non_retryable=(TypeError,))`` failing a programming error at its first attempt.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from .helpers import describe, ff, ff_json

PYPROJECT = """\
[project]
name = "shop"
version = "0.1.0"

[tool.flareflow]
workflows = ["workflows"]
"""

SHOP = '''\
import logging

from flareflow import Retry, Run, workflow

print("the shop module is imported")
log = logging.getLogger("shop")
ATTEMPTS = {"n": 0}


def greet(name):
    print(f"hello {name}")
    print("a warning on stderr", file=__import__("sys").stderr)
    log.warning("greeted %s", name)
    return name.upper()


def flaky():
    ATTEMPTS["n"] += 1
    print(f"try {ATTEMPTS['n']}")
    if ATTEMPTS["n"] == 1:
        raise ConnectionError("the first call drops")
    return ATTEMPTS["n"]


def create_account(customer):
    print("creating an account for", customer)
    return customer["id"]  # CREATE-ACCOUNT-LINE


@workflow("noisy")
async def noisy(run: Run, name: str = "ada"):
    print("the workflow body prints")
    shout = await run.step("greet", greet, name)
    tries = await run.step("flaky", flaky, retry=Retry(limit=2, delay="10ms"))
    return {"shout": shout, "tries": tries}


@workflow("signup")
async def signup(run: Run, customer):
    return await run.step("create account", create_account, customer,  # SIGNUP-LINE
                          retry=Retry(limit=5, delay="1s", non_retryable=(TypeError, KeyError)))
'''


def _line(marker: str) -> int:
    return next(i for i, line in enumerate(SHOP.splitlines(), 1) if marker in line)


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    (tmp_path / "workflows").mkdir()
    (tmp_path / "pyproject.toml").write_text(PYPROJECT)
    (tmp_path / "workflows" / "shop.py").write_text(SHOP)
    return tmp_path


def _logs(event: dict[str, Any]) -> list[tuple[str, str]]:
    return [(entry["stream"], entry["text"]) for entry in event["logs"]]


def test_run_json_stdout_is_ndjson_and_step_output_comes_as_logs(shop: Path) -> None:
    result = ff("run", "noisy", "--json", cwd=shop)
    assert result.returncode == 0, describe(result)
    events = [json.loads(line) for line in result.stdout.splitlines()]  # every line, jq-style
    assert events[-1]["type"] == "run.completed", events
    completed = {e["name"]: e for e in events if e["type"] == "step.completed"}
    assert _logs(completed["greet"]) == [("stdout", "hello ada"), ("stderr", "a warning on stderr"),
                                         ("log", "greeted ada")]
    (retrying,) = [e for e in events if e["type"] == "step.retrying"]
    assert _logs(retrying) == [("stdout", "try 1")]
    assert _logs(completed["flaky"]) == [("stdout", "try 2")]
    # not a step's: out of the NDJSON, on stderr; a step's output is nowhere but in its events
    assert "the shop module is imported" in result.stderr and "the workflow body prints" in result.stderr
    for text in ("hello ada", "a warning on stderr", "greeted ada", "try 1"):
        assert text not in result.stderr, result.stderr


def test_a_failing_step_shows_the_users_frames_live_and_in_runs_show(shop: Path) -> None:
    result = ff("run", "signup", "--input", "[1, 2]", cwd=shop)
    assert result.returncode == 1, describe(result)
    where = f"at workflows/shop.py:{_line('CREATE-ACCOUNT-LINE')} in create_account"
    assert where in result.stdout, result.stdout
    assert f"at workflows/shop.py:{_line('SIGNUP-LINE')} in signup" in result.stdout, result.stdout
    assert "│ creating an account for [1, 2]" in result.stdout, result.stdout
    assert "↻" not in result.stdout  # TypeError is non-retryable here: no second attempt

    (run,) = ff_json("runs", "list", "--json", cwd=shop)
    shown = ff("runs", "show", run["id"], cwd=shop)
    assert shown.returncode == 0, describe(shown)
    assert where in shown.stdout and "attempt 1" in shown.stdout, shown.stdout
    assert "│ creating an account for [1, 2]" in shown.stdout, shown.stdout

    info = ff_json("runs", "show", run["id"], "--json", cwd=shop)
    (step,) = info["steps"]
    assert step["attempts"] == 1
    assert step["error"]["traceback"] == [{"file": "workflows/shop.py", "line": _line("CREATE-ACCOUNT-LINE"),
                                           "function": "create_account"}]
    assert [e["text"] for e in step["logs"]] == ["creating an account for [1, 2]"]
    assert info["error"]["cause"]["traceback"] == step["error"]["traceback"]


def test_runs_show_lists_each_attempts_logs(shop: Path) -> None:
    result = ff("run", "noisy", cwd=shop)
    assert result.returncode == 0, describe(result)
    assert "│ hello ada" in result.stdout and "WARNING shop: greeted ada" in result.stdout, result.stdout
    assert "the workflow body prints" in result.stdout  # without --json, stdout is the terminal's
    (run,) = ff_json("runs", "list", "--json", cwd=shop)
    shown = ff("runs", "show", run["id"], cwd=shop).stdout
    flaky = shown[shown.index("flaky#1  completed"):]
    assert flaky.index("attempt 1") < flaky.index("│ try 1") < flaky.index("attempt 2") < flaky.index("│ try 2")

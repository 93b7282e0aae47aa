"""``flareflow ai ... --url`` against ``flareflow serve --local`` (a process): authenticated the way every
``--url`` command is (the project's saved token for a loopback server, a 401 saying what to pass), and
``ai config show`` / ``clear`` over the API as well as locally."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api.hosts import LocalServer, clean_env, make_server
from tests.cli.helpers import FLAREFLOW, assert_one_error_line, copy_project, describe

from .project import write_project


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    """``serve --local --token T`` on the AI project (its provider is nobody: no call is made here)."""
    srv = make_server("local", tmp_path_factory.mktemp("ai-remote"),
                      lambda root: write_project(root, "http://127.0.0.1:9/v1"))
    yield srv
    srv.stop()


def remote(server: LocalServer, *args: str, cwd: Path, token: str | None = None) -> subprocess.CompletedProcess[str]:
    """``flareflow ARGS --url URL [--token T]`` in ``cwd``, with no token in the environment."""
    cmd = [*FLAREFLOW, *args, "--url", server.url, *(["--token", token] if token else [])]
    return subprocess.run(cmd, cwd=cwd, env=clean_env(), capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL, check=False)


def checkout(server: LocalServer, dest: Path, token: str) -> Path:
    """A copy of the served project with ``token`` saved where ``serve`` saves the one it generates."""
    here = copy_project(server.project, dest)
    saved = here / ".flareflow" / "state" / "token"
    saved.parent.mkdir(parents=True, exist_ok=True)
    saved.write_text(token + "\n")
    (here / "ai.json").write_text('{"temperature": 0.25}')
    return here


def test_ai_commands_use_the_projects_saved_token_and_a_401_says_what_to_pass(server: LocalServer,
                                                                             tmp_path: Path) -> None:
    here = checkout(server, tmp_path / "same", server.token)
    pushed = remote(server, "ai", "config", "push", "ai.json", cwd=here)  # no --token, no $FLAREFLOW_TOKEN
    assert pushed.returncode == 0, describe(pushed)
    logged = remote(server, "ai", "log", "--json", cwd=here)
    assert logged.returncode == 0, describe(logged)
    assert json.loads(logged.stdout) == []
    logged = remote(server, "ai", "log", "--run", "1a2b", cwd=here)  # the prefix lookup is authenticated too
    assert logged.returncode == 0 and "no AI calls match --run 1a2b" in logged.stdout, describe(logged)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "ai.json").write_text("{}")
    for args in (("ai", "log"), ("ai", "config", "push", "ai.json")):
        assert_one_error_line(remote(server, *args, cwd=elsewhere), "server said 401",
                              "pass --token TOKEN or set $FLAREFLOW_TOKEN")
        assert remote(server, *args, cwd=elsewhere, token=server.token).returncode == 0
    wrong = checkout(server, tmp_path / "wrong", "tok-not-this-servers-0123456789")
    for args in (("ai", "log"), ("ai", "config", "push", "ai.json")):
        assert_one_error_line(remote(server, *args, cwd=wrong), "server said 401", "this project's token was tried")

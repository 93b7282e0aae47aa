"""``flareflow ai log --run``: a unique prefix of a run id finds its calls, as ``runs show`` does;
an ambiguous one is an error naming the candidates; a filter that matches nothing says so."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.helpers import describe, ff

from .project import write_project
from .standin import StandIn, standin_server


@pytest.fixture
def standin() -> Iterator[StandIn]:
    with standin_server() as server:
        yield server


def run_id(root: Path, prompt: str) -> str:
    result = ff("run", "one", "--input", json.dumps(prompt), "--json", cwd=root, timeout=60)
    assert result.returncode == 0, describe(result)
    return str(json.loads(result.stdout.splitlines()[0])["run_id"])


def test_ai_log_run_takes_a_unique_prefix(tmp_path: Path, standin: StandIn) -> None:
    root = write_project(tmp_path / "p", standin.url)
    first, second = run_id(root, "a"), run_id(root, "b")
    common = 0
    while first[common] == second[common]:
        common += 1
    prefix = first[:common + 1]  # unique: the two ids differ at this character
    result = ff("ai", "log", "--run", prefix, "--json", cwd=root)
    assert result.returncode == 0, describe(result)
    assert [c["run_id"] for c in json.loads(result.stdout)] == [first]
    if common:  # a prefix both ids share is ambiguous
        result = ff("ai", "log", "--run", first[:common], cwd=root)
        assert result.returncode != 0, describe(result)
        assert "ambiguous" in result.stderr and first in result.stderr, describe(result)
    result = ff("ai", "log", "--run", "ffff", cwd=root)
    assert result.returncode == 0, describe(result)
    assert "no AI calls match --run ffff" in result.stdout, describe(result)


def test_an_unreachable_url_is_one_error_line_not_a_traceback(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:  # a loopback port nothing listens on
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}"
    root = write_project(tmp_path / "p", None)
    (root / "ai.json").write_text('{"temperature": 0.1}')
    for args in (("ai", "log"), ("ai", "log", "--run", "1a2b"), ("ai", "config", "push", "ai.json")):
        result = ff(*args, "--url", url, "--token", "t", cwd=root)
        assert result.returncode == 1, describe(result)
        assert "error: cannot reach the server" in result.stderr and "Traceback" not in result.stderr, describe(result)


def test_a_provider_nobody_listens_on_names_the_setting(tmp_path: Path) -> None:
    """Connection refused at base_url: the run fails (after the step's own retries) saying the server is not
    there and which setting holds its address."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}/v1"
    root = write_project(tmp_path / "p", url)
    result = ff("run", "one", "--input", '"hello"', cwd=root)
    assert result.returncode == 1, describe(result)
    text = " ".join(result.stdout.split())
    assert f"AI provider {url}" in text and "unreachable" in text, describe(result)
    assert "tool.flareflow.ai.base_url" in text, describe(result)

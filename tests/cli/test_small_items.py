"""The smaller things a new user trips over, each as the user sees it: validate and build agree,
``--url`` takes prefixes and finds the local token, typos and bare words get a hint, ``--input``
reads files and stdin, help text reads well, names and folders are checked, branches are named."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.api.hosts import LocalServer, clean_env, make_server

from .helpers import (
    FAST_WORKFLOWS,
    FLAREFLOW,
    Live,
    Terminal,
    assert_no_traceback,
    assert_one_error_line,
    cli_env,
    copy_project,
    describe,
    ff,
    run_status,
    wait_until,
)

OBJECT_ASKER = '''
from flareflow import Run, workflow


@workflow("form")
async def form(run: Run) -> dict:
    """Asks for a JSON object."""
    return await run.ask("Address?", schema={"type": "object", "required": ["city"]})
'''


@pytest.fixture()
def fast(project: Path) -> Path:
    (project / "workflows" / "fast.py").write_text(FAST_WORKFLOWS + OBJECT_ASKER, encoding="utf-8")
    return project


@pytest.fixture(scope="module")
def server(scaffolded: tuple[Path, subprocess.CompletedProcess[str]],
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    """``serve --local`` on a copy of the scaffolded project (with the fast workflows)."""
    source, created = scaffolded
    assert created.returncode == 0, created.stderr

    def write(root: Path) -> Path:
        copy_project(source, root)
        (root / "workflows" / "fast.py").write_text(FAST_WORKFLOWS, encoding="utf-8")
        return root

    srv = make_server("local", tmp_path_factory.mktemp("small-items"), write)
    yield srv
    srv.stop()


def remote(server: LocalServer, *args: str, cwd: Path, token: str | None = None) -> subprocess.CompletedProcess[str]:
    """``flareflow ARGS --url URL [--token T]`` in ``cwd``, with no token in the environment."""
    cmd = [*FLAREFLOW, *args, "--url", server.url, *(["--token", token] if token else [])]
    return subprocess.run(cmd, cwd=cwd, env=clean_env(), capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL, check=False)


def _start(server: LocalServer, workflow: str) -> str:
    import httpx

    response = httpx.post(server.url + "/runs", json={"workflow": workflow}, headers=server.headers, timeout=30)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


# -- validate checks what build checks -----------------------------------------------------------
def test_validate_rejects_a_schedule_build_rejects(fast: Path) -> None:
    flows = fast / "workflows" / "fast.py"
    flows.write_text(flows.read_text().replace('@workflow("quick")', '@workflow("quick", schedule="61 9 * * *")'))
    validated = ff("validate", cwd=fast)
    built = ff("build", cwd=fast)
    line = assert_one_error_line(validated, "workflow 'quick'", "invalid schedule '61 9 * * *'", "minute: 61")
    assert assert_one_error_line(built) == line  # the same check, the same sentence
    assert not (fast / ".flareflow" / "build").exists()


# -- --url: prefixes, the saved token --------------------------------------------------------------
def test_url_commands_take_run_id_prefixes(server: LocalServer, tmp_path: Path) -> None:
    first, second = _start(server, "quick"), _start(server, "quick")
    common = next(i for i, (a, b) in enumerate(zip(first, second, strict=True)) if a != b)
    shown = remote(server, "runs", "show", first[: common + 1], "--json", cwd=tmp_path, token=server.token)
    assert shown.returncode == 0, describe(shown)
    assert json.loads(shown.stdout)["id"] == first
    ambiguous = remote(server, "runs", "show", first[:common], cwd=tmp_path, token=server.token)
    line = assert_one_error_line(ambiguous, f"run id prefix '{first[:common]}' is ambiguous")
    assert first in line and second in line
    missing = remote(server, "runs", "show", "fffff", cwd=tmp_path, token=server.token)
    assert_one_error_line(missing, "no run 'fffff' on")


def test_url_run_at_a_terminal_exits_as_soon_as_another_process_answers(server: LocalServer,
                                                                       tmp_path: Path) -> None:
    with Terminal("run", "asker", "--url", server.url, "--token", server.token, cwd=tmp_path) as term:
        screen = term.wait_for("answer [y/n]:")
        run_id = re.search(r"run ([0-9a-f]{21})", screen)
        assert run_id, screen
        answered = remote(server, "answer", run_id[1][:12], "true", cwd=tmp_path, token=server.token)
        assert answered.returncode == 0, describe(answered)
        code = term.exit_code(timeout=15)  # no Enter typed
        screen = term.screen
    assert code == 0, screen
    assert re.search(r"answer \[y/n\]: *\n", screen) and "✔ completed" in screen, screen


def test_url_uses_the_projects_saved_token_and_a_401_says_what_to_pass(server: LocalServer, tmp_path: Path) -> None:
    here = copy_project(server.project, tmp_path / "same")  # a checkout of the project the server serves
    saved = here / ".flareflow" / "state" / "token"
    saved.parent.mkdir(parents=True, exist_ok=True)
    saved.write_text(server.token + "\n")
    listed = remote(server, "runs", "list", "--json", cwd=here)  # no --token, no $FLAREFLOW_TOKEN
    assert listed.returncode == 0, describe(listed)
    assert isinstance(json.loads(listed.stdout), list)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    bare = remote(server, "runs", "list", cwd=elsewhere)
    assert_one_error_line(bare, "server said 401", "pass --token TOKEN or set $FLAREFLOW_TOKEN")
    saved.write_text("tok-not-this-servers-0123456789\n")
    wrong = remote(server, "runs", "list", cwd=here)
    assert_one_error_line(wrong, "server said 401", "this project's token was tried")
    # a token that is not the project's (passed by hand) is told where the saved one is
    passed = remote(server, "runs", "list", cwd=here, token="tok-typo-0123456789")
    assert_one_error_line(passed, "server said 401", '--token "$(cat .flareflow/state/token)"')


# -- following, typos, bare words, invalid JSON -----------------------------------------------------
def test_runs_events_follow_without_url_streams_until_the_run_ends(fast: Path) -> None:
    started = ff("run", "waiter", "--detach", cwd=fast)
    assert started.returncode == 0, describe(started)
    run_id = started.stdout.strip()
    wait_until(lambda: run_status(fast, run_id) == "waiting", 20, "the detached run to wait")
    with Live("runs", "events", run_id[:10], "-f", cwd=fast) as follow:
        follow.wait_event(lambda e: e["type"] == "run.waiting", what="the stored run.waiting")
        assert follow.proc.poll() is None  # -f: still there, waiting for more
        sent = ff("send-event", run_id, "go", '{"n": 2}', cwd=fast)
        assert sent.returncode == 0, describe(sent)
        follow.wait_event(lambda e: e["type"] == "run.completed", what="run.completed, live")
        assert follow.finish(timeout=10) == 0
        events = [json.loads(line) for line in follow.stdout.splitlines()]
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert events[-1]["type"] == "run.completed"


def test_send_event_of_another_type_warns_and_is_kept(fast: Path) -> None:
    started = ff("run", "waiter", "--detach", cwd=fast)
    run_id = started.stdout.strip()
    wait_until(lambda: run_status(fast, run_id) == "waiting", 20, "the detached run to wait")
    typo = ff("send-event", run_id, "og", cwd=fast)
    assert typo.returncode == 0, describe(typo)
    assert typo.stderr.strip() == ("warning: the run waits for 'go', not 'og' (delivered anyway: the run "
                                   "keeps it until it waits for that type)")
    assert typo.stdout.strip() == f"✓ event og delivered to {run_id}"
    assert run_status(fast, run_id) == "waiting"
    right = ff("send-event", run_id, "go", cwd=fast)
    assert right.returncode == 0 and right.stderr == "", describe(right)
    wait_until(lambda: run_status(fast, run_id) == "completed", 20, "the run to complete")


def test_a_bare_word_answer_is_shown_how_to_quote_it(fast: Path) -> None:
    result = ff("answer", "0123456789", "yes", cwd=fast)
    assert_one_error_line(result, "VALUE_JSON is not valid JSON", """a string is quoted in JSON: '"yes"'""")


def test_invalid_json_at_a_prompt_is_called_invalid_json(fast: Path) -> None:
    with Live("run", "form", cwd=fast, stdin=subprocess.PIPE) as run:
        run.wait_line(lambda line: "? Address?" in line, what="the question")
        assert run.proc.stdin is not None
        run.proc.stdin.write("{city: Paris}\n")
        run.proc.stdin.flush()
        refused = run.wait_line(lambda line: "not valid JSON" in line, what="the refusal")
        run.proc.stdin.write('{"city": "Paris"}\n')
        run.proc.stdin.flush()
        code = run.finish(timeout=20)
        out = run.stdout
    assert code == 0, out
    assert "{city: Paris}" in refused
    assert "expected object" not in out and "got string" not in out, out
    assert '"city": "Paris"' in out


# -- --input from a file or stdin ---------------------------------------------------------------------
def test_input_from_a_file_and_from_stdin(fast: Path) -> None:
    (fast / "order.json").write_text("41")
    from_file = ff("run", "quick", "--input", "@order.json", "--json", cwd=fast)
    assert from_file.returncode == 0, describe(from_file)
    assert json.loads(from_file.stdout.splitlines()[-1])["output"] == {"total": 42}
    from_stdin = ff("run", "quick", "--input", "-", "--json", cwd=fast, input="9\n")
    assert from_stdin.returncode == 0, describe(from_stdin)
    assert json.loads(from_stdin.stdout.splitlines()[-1])["output"] == {"total": 10}
    missing = ff("run", "quick", "--input", "@nope.json", cwd=fast)
    assert_one_error_line(missing, "--input @nope.json: cannot read nope.json")
    broken = ff("run", "quick", "--input", "-", cwd=fast, input="{n: 1}")
    assert_one_error_line(broken, "--input - is not valid JSON")


# -- help -------------------------------------------------------------------------------------------
def test_help_keeps_brackets_reads_well_and_h_works(tmp_path: Path) -> None:
    run_help = ff("run", "-h", cwd=tmp_path)
    assert run_help.returncode == 0, describe(run_help)
    text = " ".join(run_help.stdout.split())
    assert "Usage: flareflow run [OPTIONS] NAME" in text
    assert "with a [tool.flareflow] pyproject" in text  # markup did not eat it
    for shown in ("--url URL", "--token TOKEN", "-i KEY=VALUE", "--input JSON|@FILE|-", "-C, --project DIR",
                  "-h, --help"):
        assert shown in text, (shown, run_help.stdout)
    assert "A task graph's ${env.KEY} for this run" in text  # an expression, not a metavar left unrendered
    bare = re.sub(r"\$\{[a-z]+\.[A-Z]+\}", "", text)
    assert "<bool>" not in bare and "<str>" not in bare and "{" not in bare, run_help.stdout
    assert "what wrangler's [build] runs" in " ".join(ff("build", "--help", cwd=tmp_path).stdout.split())
    send = " ".join(ff("send-event", "-h", cwd=tmp_path).stdout.split())
    assert "Usage: flareflow send-event [OPTIONS] RUN_ID TYPE [PAYLOAD_JSON]" in send
    nested = ff("runs", "list", "-h", cwd=tmp_path)
    assert nested.returncode == 0 and "--limit N" in nested.stdout, describe(nested)
    top = ff("-h", cwd=tmp_path)
    assert "--install-completion" in top.stdout, top.stdout
    # what the installed bash completion asks the command for `flareflow ru<TAB>`
    completion = subprocess.run(FLAREFLOW, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False,
                                env={**cli_env(), "_FLAREFLOW_COMPLETE": "complete_bash",
                                     "COMP_WORDS": "flareflow ru", "COMP_CWORD": "1"})
    assert completion.returncode == 0 and completion.stdout.split() == ["run", "runs"], describe(completion)


# -- new, no project -----------------------------------------------------------------------------------
def test_new_makes_a_valid_project_name(tmp_path: Path) -> None:
    created = ff("new", "My App!", cwd=tmp_path)
    assert created.returncode == 0, describe(created)
    assert "project name my-app (from 'My App!'" in created.stdout
    data = tomllib.loads((tmp_path / "My App!" / "pyproject.toml").read_text())
    assert data["project"]["name"] == "my-app"
    assert re.fullmatch(r"[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?", data["project"]["name"])  # PEP 508
    assert ff("validate", cwd=tmp_path / "My App!").returncode == 0


def test_runs_list_outside_a_project_says_so_and_creates_nothing(tmp_path: Path) -> None:
    result = ff("runs", "list", cwd=tmp_path)
    assert_one_error_line(result, f"no flareflow project here ({tmp_path.resolve()}", "flareflow new DIR")
    assert list(tmp_path.iterdir()) == []


# -- parallel branches are named by their helper --------------------------------------------------------
def test_parallel_helper_branches_are_labelled_by_the_helper(fast: Path) -> None:
    with Live("run", "report", cwd=fast) as run:
        hint = run.wait_line(lambda line: "answer with: flareflow answer" in line, what="the answer hint")
        run_id = re.search(r"answer ([0-9a-f]{21})", hint)
        assert run_id, hint
        answered = ff("answer", run_id[1], '"yes"', cwd=fast)
        assert answered.returncode == 0, describe(answered)
        assert run.finish(timeout=20) == 0, run.stdout + run.stderr
        out = run.stdout
    assert_no_traceback(out)
    lines = [line.strip() for line in out.splitlines()]
    for branch in (1, 2, 3):
        assert any(line.startswith(f"✓ fetch (summarise_source, branch {branch})") for line in lines), out
        assert any(line.startswith(f"✓ summarise (summarise_source, branch {branch})") for line in lines), out
    assert "(branch 2)" not in out


# -- the README's client example ------------------------------------------------------------------------
def test_the_readme_client_example_runs_as_a_script(server: LocalServer, tmp_path: Path) -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("### Python client"):]
    code = section[section.index("```python\n") + len("```python\n"):section.index("```\n", section.index("```python"))]
    assert "asyncio.run(main())" in code
    script = tmp_path / "client_example.py"
    script.write_text(code.replace('"http://127.0.0.1:8787"', repr(server.url)).replace('token="..."',
                                                                                        f"token={server.token!r}"))
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=90,
                            env=clean_env(), check=False)
    assert result.returncode == 0, describe(result)
    output: Any = ast.literal_eval(result.stdout.strip())  # what print() showed
    assert output["status"] == "onboarded", result.stdout

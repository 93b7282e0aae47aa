"""The workerd harness serves what the user's own commands prepared -- nothing more.

* ``flareflow serve`` (the real CLI, with ``FLAREFLOW_WRANGLER=harness/bin/wrangler``: the real
  pinned wrangler for ``d1 migrations apply --local``, the harness launcher for ``wrangler dev``)
  on a fresh ``flareflow new`` project: the token it generated and printed answers ``POST /runs``,
  ``flareflow run hello --url --token`` completes, ``runs list`` reads the D1 index it migrated.
* A build whose user skipped those steps fails in the harness as it fails under ``wrangler dev``:
  ``not_configured`` without ``.dev.vars``, ``no such table: runs`` without the migrations.
* An ejected project's ``npm run dev`` (``harness/bin`` first on ``PATH``): ``predev`` migrates the
  local D1 with the real wrangler, the ``[build]`` step copies the edited workflow into ``src/``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from harness import pytest_plugin
from harness.pytest_plugin import WRANGLER_SHIM, WorkerdServer

FLAREFLOW = str(Path(sys.executable).with_name("flareflow"))
GENERATED = re.compile(r"generated API token \(shown once, saved in .+?\):\s*\n\s*(\S+)")


@pytest.fixture(autouse=True)
def _harness() -> None:
    try:
        pytest_plugin.check_harness()
    except pytest_plugin.HarnessUnavailable as exc:
        pytest_plugin._unavailable(exc)  # fails under CI, skips elsewhere


def user_env(**extra: str) -> dict[str, str]:
    """A user's shell: no flareflow settings or tokens leaking in from the test runner."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLAREFLOW_", "CLOUDFLARE_"))}
    env.update(PYTHONUNBUFFERED="1", NO_COLOR="1", COLUMNS="200", WRANGLER_SEND_METRICS="false", **extra)
    return env


def new_project(tmp_path: Path) -> Path:
    done = subprocess.run([FLAREFLOW, "new", "app"], cwd=tmp_path, env=user_env(), capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return tmp_path / "app"


def ff(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([FLAREFLOW, *args], cwd=cwd, env=user_env(), capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL, check=False)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Path, WorkerdServer]]:
    project = new_project(tmp_path)
    server = WorkerdServer(project / ".flareflow" / "build", env=user_env(FLAREFLOW_WRANGLER=str(WRANGLER_SHIM)),
                           command=lambda port: [FLAREFLOW, "serve", "--port", str(port), "-C", str(project)])
    server.start()
    try:
        yield project, server
    finally:
        server.close()


def test_flareflow_serve_prepares_what_the_worker_needs(served: tuple[Path, WorkerdServer]) -> None:
    project, server = served
    output = "\n".join(server.lines)
    printed = GENERATED.search(output)
    assert printed, output
    token = printed.group(1)
    # announced once; then only in the console's ready link, in its fragment (not by wrangler either)
    assert output.count(token) == 2 and f"{server.url}/#token={token}" in output, output
    assert (project / ".flareflow" / "state" / "token").read_text().strip() == token
    assert server.token == token  # what the Worker got, from the .dev.vars flareflow serve wrote
    assert "applied index migration(s) 0001_init.sql" in output
    assert f"flareflow run hello --url {server.url} --token \"$(cat " in output, output

    with httpx.Client(base_url=server.url, timeout=60) as client:
        assert client.get("/runs").status_code == 401
        created = client.post("/runs", json={"workflow": "hello"}, headers={"authorization": f"Bearer {token}"})
        assert created.status_code == 201, created.text

    # the banner's command, as the user pastes it (the shell's $(cat ...) done by hand here)
    run = ff("run", "hello", "--json", "--url", server.url, "--token", token, cwd=project, timeout=180)
    assert run.returncode == 0, run.stdout + run.stderr + server.log()[-3000:]
    events = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    assert events[-1]["type"] == "run.completed", events[-3:]
    listed = ff("runs", "list", "--url", server.url, "--token", token, cwd=project)
    assert listed.returncode == 0, listed.stdout + listed.stderr
    assert listed.stdout.count("hello") >= 2 and "completed" in listed.stdout, listed.stdout

    # the banner's cron line, as pasted: wrangler dev's trigger path starts the scheduled workflow
    cron_url = re.search(r'curl "([^"]+/cdn-cgi/handler/scheduled\?cron=[^"]+)"', output)
    assert cron_url, output
    fired = httpx.get(cron_url.group(1), timeout=60)
    assert fired.status_code == 200, fired.text
    for _ in range(100):
        runs = httpx.get(f"{server.url}/runs", params={"workflow": "report"}, timeout=30,
                         headers={"authorization": f"Bearer {token}"}).json()["runs"]
        if runs:
            break
        time.sleep(0.2)
    assert runs, "the banner's curl started no run of the scheduled workflow"


def test_a_build_the_user_did_not_prepare_fails_as_under_wrangler_dev(tmp_path: Path) -> None:
    project = new_project(tmp_path)
    built = ff("build", cwd=project)
    assert built.returncode == 0, built.stderr
    build_dir = project / ".flareflow" / "build"
    with WorkerdServer(build_dir) as server, httpx.Client(base_url=server.url, timeout=60) as client:
        # no .dev.vars: the Worker has no token (as with a bare `wrangler dev`)
        answer = client.post("/runs", json={"workflow": "hello"}, headers={"authorization": "Bearer x" * 3})
        assert answer.status_code == 503 and answer.json()["error"]["code"] == "not_configured", answer.text
    (build_dir / ".dev.vars").write_text("FLAREFLOW_TOKEN=typed-by-hand-0123456789\n")
    with WorkerdServer(build_dir) as server, httpx.Client(base_url=server.url, timeout=60) as client:
        # a token, but nobody applied the D1 migrations: the index has no tables
        headers = {"authorization": "Bearer typed-by-hand-0123456789"}
        answer = client.get("/runs", headers=headers)
        assert answer.status_code >= 500, answer.text
        assert "no such table: runs" in answer.text + server.log(), answer.text


def test_an_ejected_project_runs_with_npm_run_dev(tmp_path: Path) -> None:
    npm = shutil.which("npm")
    assert npm, "npm comes with node, which the harness already needs"
    project = new_project(tmp_path)
    ejected = ff("eject", cwd=project)
    assert ejected.returncode == 0, ejected.stdout + ejected.stderr
    # the user's edit lands in workflows/, the one place DEPLOY.md says to edit
    hello = project / "workflows" / "hello.py"
    hello.write_text(hello.read_text().replace('return f"Hello, {name}!"', 'return f"Hi there, {name}!"'))
    assert "Hi there" in hello.read_text()
    example = (project / ".dev.vars.example").read_text()
    (project / ".dev.vars").write_text(example.replace("change-me-to-a-long-random-string", "ejected-0123456789"))

    env = user_env(PATH=f"{WRANGLER_SHIM.parent}{os.pathsep}{os.environ['PATH']}")
    server = WorkerdServer(project, env=env, command=lambda port: [
        npm, "run", "--prefix", str(project), "dev", "--", "--port", str(port)])
    server.start()
    try:
        output = server.log()
        assert "wrangler d1 migrations apply INDEX --local" in output, output  # predev
        assert "sync-workflows: workflows -> src/ (1 written, 0 removed)" in output, output  # [build]
        assert server.token == "ejected-0123456789"
        headers = {"authorization": "Bearer ejected-0123456789"}
        with httpx.Client(base_url=server.url, timeout=60, headers=headers) as client:
            created = client.post("/runs", json={"workflow": "hello", "input": "Ada"})
            assert created.status_code == 201, created.text
            run_id = created.json()["id"]
            done = ff("runs", "show", run_id, "--url", server.url, "--token", "ejected-0123456789", cwd=project)
            for _ in range(120):
                state = client.get(f"/runs/{run_id}").json()
                if state["status"] in ("completed", "failed"):
                    break
                time.sleep(0.25)
            assert state["status"] == "completed", state
            assert state["output"]["greeting"] == "Hi there, Ada!", state["output"]
            assert done.returncode == 0, done.stderr
    finally:
        server.close()

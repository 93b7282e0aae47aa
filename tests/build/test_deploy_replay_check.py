"""``flareflow deploy`` replays the deployed Worker's unfinished runs against the new code first and
refuses code that would hold them (unless ``--force``).

Cloudflare's side is a test double: `DeployedWorkerDouble`, a real HTTP server answering the
Worker's API (the same router, ``flareflow serve --local`` on a copy of the project as it was
deployed), with real runs in it; wrangler is the recording stand-in of the other deploy tests.
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from tests.api.hosts import LocalServer
from tests.cli.versions import V1, V2, V3, V3_DIVERGENCE, release, write_shop

from .cases import NO_RESOURCES
from .helpers import describe, fake_wrangler_env, ff, read_log

TOKEN = "tok-deployed-worker-double-0123456789"


class DeployedWorkerDouble(LocalServer):
    """A test double of the deployed Worker (Cloudflare's side): its HTTP API -- ``GET /runs``,
    ``GET /runs/{id}`` -- served for real by ``flareflow serve --local`` on the project as deployed."""


@pytest.fixture()
def deployed(tmp_path: Path):
    """The double, serving the project as deployed (V1) with one run napping for an hour in it."""
    root = write_shop(tmp_path / "deployed", V1)
    logs = tmp_path / "double-logs"
    logs.mkdir()
    server = DeployedWorkerDouble(root, TOKEN, logs).start()
    try:
        headers = {"authorization": f"Bearer {TOKEN}"}
        response = httpx.post(f"{server.url}/runs", json={"workflow": "order", "input": {"nap": "1 hour"}},
                              headers=headers, timeout=10)
        assert response.status_code == 201, response.text
        run_id = response.json()["id"]
        deadline = time.monotonic() + 10
        while httpx.get(f"{server.url}/runs/{run_id}", headers=headers, timeout=10).json()["status"] != "waiting":
            assert time.monotonic() < deadline, server.output()
            time.sleep(0.05)
        yield server, run_id
    finally:
        server.stop()


def deploy_calls(log: Path) -> list[list[str]]:
    return [entry["argv"] for entry in read_log(log) if entry["argv"][:1] == ["deploy"]] if log.exists() else []


def test_deploy_refuses_code_the_deployed_runs_would_not_replay_on(deployed, tmp_path: Path) -> None:
    server, run_id = deployed
    local = write_shop(tmp_path / "local", V3, NO_RESOURCES)  # the unguarded change
    log = tmp_path / "wrangler.log"
    env = fake_wrangler_env(log)

    refused = ff("deploy", "--url", server.url, "--token", TOKEN, cwd=local, env=env)
    assert refused.returncode == 1, describe(refused)
    line = next(line for line in refused.stdout.splitlines() if run_id in line)
    assert all(needle in line for needle in V3_DIVERGENCE), line
    assert "deploy refused" in refused.stderr and "--force" in refused.stderr, describe(refused)
    assert deploy_calls(log) == [], "wrangler deploy ran although the check refused"

    forced = ff("deploy", "--url", server.url, "--token", TOKEN, "--force", cwd=local, env=env)
    assert forced.returncode == 0, describe(forced)
    assert run_id in forced.stdout and deploy_calls(log) == [["deploy"]]

    release(local, V2)  # the change behind run.patched: the napping run keeps its path
    passed = ff("deploy", cwd=local, env=fake_wrangler_env(log, FLAREFLOW_DEPLOY_URL=server.url,
                                                            FLAREFLOW_TOKEN=TOKEN))
    assert passed.returncode == 0, describe(passed)
    assert f"1 run(s) on {server.url} replay on this code" in passed.stdout, describe(passed)
    assert deploy_calls(log) == [["deploy"], ["deploy"]]


def test_deploy_says_why_it_cannot_check(deployed, tmp_path: Path) -> None:
    server, _ = deployed
    local = write_shop(tmp_path / "local", V2, NO_RESOURCES)
    log = tmp_path / "wrangler.log"

    wrong = ff("deploy", "--url", server.url, "--token", "not-the-token-at-all", cwd=local, env=fake_wrangler_env(log))
    assert wrong.returncode == 1 and "server said 401" in wrong.stderr, describe(wrong)
    assert deploy_calls(log) == []

    unset = ff("deploy", cwd=local, env=fake_wrangler_env(log))  # no URL known: the check is skipped, said so
    assert unset.returncode == 0, describe(unset)
    assert "replay check skipped: no Worker URL known" in unset.stdout and deploy_calls(log) == [["deploy"]]

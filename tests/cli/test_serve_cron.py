"""``flareflow serve --local`` and cron schedules, the way a user meets them.

Tried: the scaffolded project (``report`` runs ``0 9 * * 1``) served with a generated token: the banner
lists the schedule and prints a ``curl`` command; that very command, run by a shell in the project,
starts ``report`` with ``trigger: "cron"`` on ``run.started`` (and again starts nothing new); a project
without schedules prints no cron lines; a ``* * * * *`` schedule fires by itself as the server starts,
and a SIGKILL and restart never start a second run for a minute already fired.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from .helpers import Live, wait_until

URL = re.compile(r"local server on (http://[0-9A-Za-z.:-]+)")


def _serve(project: Path) -> tuple[Live, str]:
    live = Live("serve", "--local", "--host", "127.0.0.1", "--port", "0", cwd=project)
    line = live.wait_line(lambda text: URL.search(text) is not None, 20, "the server's URL")
    found = URL.search(line)
    assert found is not None
    url = found.group(1)

    def healthy() -> bool:
        try:
            return httpx.get(f"{url}/health", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    wait_until(healthy, 20, "/health")
    return live, url


@pytest.mark.skipif(shutil.which("curl") is None or shutil.which("bash") is None, reason="needs curl and bash")
def test_banner_says_how_to_fire_a_cron_and_the_command_works(project: Path) -> None:
    live, url = _serve(project)
    with live:
        line = live.wait_line(lambda text: "fire one by hand:" in text, 10, "the manual cron line")
        assert "report (0 9 * * 1)" in live.stdout, live.stdout
        command = line.split("fire one by hand:", 1)[1].strip()
        assert command == (f'curl --oauth2-bearer "$(cat .flareflow/state/token)" '
                           f'"{url}/cdn-cgi/handler/scheduled?cron=0+9+*+*+1"'), command

        def fire() -> dict[str, object]:
            done = subprocess.run(["bash", "-c", command + " --silent --show-error --fail-with-body"],
                                  cwd=project, capture_output=True, text=True, timeout=30, check=False)
            assert done.returncode == 0, (done.stdout, done.stderr)
            return dict(json.loads(done.stdout))

        first = fire()
        assert first["outcome"] == "ok", first
        started = first["started"]
        assert isinstance(started, list) and [s["workflow"] for s in started] == ["report"], first
        assert started[0]["created"] is True
        assert started[0]["idempotency_key"].startswith("cron:report:")
        second = fire()
        assert second["started"] == [{**started[0], "created": False}], second

        token = (project / ".flareflow" / "state" / "token").read_text().strip()
        events = httpx.get(f"{url}/runs/{started[0]['run_id']}/events", timeout=10,
                           headers={"authorization": f"Bearer {token}", "accept": "application/json"})
        assert events.status_code == 200, events.text
        first_event = events.json()["events"][0]
        assert first_event["type"] == "run.started" and first_event["trigger"] == "cron", first_event
        unauthorized = httpx.get(f"{url}/cdn-cgi/handler/scheduled", params={"cron": "0 9 * * 1"}, timeout=10)
        assert unauthorized.status_code == 401, unauthorized.text


def test_no_cron_lines_without_schedules(project: Path) -> None:
    (project / "workflows" / "report.py").unlink()
    live, _ = _serve(project)
    with live:
        assert live.wait_line(lambda text: "Ctrl-C stops" in text, 10, "the banner's API line")
        time.sleep(0.5)  # the banner is printed before the server answers /health; let the reader catch up
        assert "cdn-cgi" not in live.stdout and "cron:" not in live.stdout, live.stdout


MINUTELY = '''\
from flareflow import Run, workflow


@workflow("minutely", schedule="* * * * *")
async def minutely(run: Run) -> str:
    return await run.step("tick", lambda: "ticked")
'''


def test_the_server_fires_a_due_schedule_by_itself(project: Path) -> None:
    """A schedule due in the minute the server starts fires at once (its first tick); a restart soon
    after starts nothing for a minute already fired."""
    (project / "workflows" / "minutely.py").write_text(MINUTELY)
    token = "tok-" + "5" * 16

    def cron_runs(url: str) -> list[dict[str, object]]:
        response = httpx.get(f"{url}/runs", params={"workflow": "minutely"}, timeout=10,
                             headers={"authorization": f"Bearer {token}"})
        assert response.status_code == 200, response.text
        return list(response.json()["runs"])

    def serve() -> tuple[Live, str]:
        live = Live("serve", "--local", "--host", "127.0.0.1", "--port", "0", "--token", token, cwd=project)
        line = live.wait_line(lambda text: URL.search(text) is not None, 20, "the server's URL")
        found = URL.search(line)
        assert found is not None
        return live, found.group(1)

    def minutes_since(began: float) -> set[str]:
        first, last = int(began // 60), int(time.time() // 60)
        return {time.strftime("%Y-%m-%dT%H:%MZ", time.gmtime(m * 60)) for m in range(first, last + 1)}

    began = time.time()
    live, url = serve()
    with live:  # leaving the block SIGKILLs the server: the crash case
        runs = wait_until(lambda: cron_runs(url), 20, "the minutely run")
        events = httpx.get(f"{url}/runs/{runs[0]['id']}/events", timeout=10,
                           headers={"authorization": f"Bearer {token}", "accept": "application/json"}).json()
        assert events["events"][0]["type"] == "run.started" and events["events"][0]["trigger"] == "cron"
    assert len(runs) == 1 and str(runs[0]["idempotency_key"]).split(":", 2)[2] in minutes_since(began), runs
    live, url = serve()
    with live:
        wait_until(lambda: cron_runs(url) is not None, 20, "the restarted server")
        time.sleep(0.5)  # its start-up tick has run
        again = cron_runs(url)
    keys = {str(r["idempotency_key"]).split(":", 2)[2] for r in again}
    # one run per minute at most, however often the server restarts within it
    assert len(keys) == len(again) and keys <= minutes_since(began), again
    assert runs[0]["id"] in [r["id"] for r in again]

"""The exact wrangler command lines of ``flareflow deploy`` and ``flareflow serve``, via a recording stand-in.

``FLAREFLOW_WRANGLER="<python> tests/build/fake_wrangler.py"``; the stand-in logs argv + cwd as JSON
lines and keeps the "remote" resources in a state file, so listing after creating finds them.
"""

from __future__ import annotations

import json
import re
import time
import tomllib
from pathlib import Path
from typing import Any

from flareflow.cli.build import BUILD_DIR, RESOURCES_FILE

from .cases import NO_RESOURCES, pyproject
from .helpers import (
    assert_ok,
    describe,
    fake_wrangler_env,
    ff,
    flareflow_changed_since,
    read_log,
    snapshot,
)

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
HEX32 = re.compile(r"^[0-9a-f]{32}$")

FIRST_DEPLOY = [
    ["d1", "list", "--json"],
    ["d1", "create", "demo-index"],
    ["kv", "namespace", "list"],
    ["kv", "namespace", "create", "demo-cache"],
    ["r2", "bucket", "list"],
    ["r2", "bucket", "create", "demo-payloads"],
    ["queues", "list"],
    ["queues", "create", "demo-dispatch"],
    ["queues", "list"],
    ["queues", "create", "demo-dispatch-dlq"],
    ["d1", "migrations", "apply", "demo-index", "--remote"],
    ["deploy"],
]


def _calls(log: Path, since: int = 0) -> list[list[str]]:
    return [entry["argv"] for entry in read_log(log)[since:]]


def _creates(calls: list[list[str]]) -> list[list[str]]:
    return [c for c in calls if "create" in c]


def _wrangler_config(root: Path) -> dict[str, Any]:
    return tomllib.loads((root / BUILD_DIR / "wrangler.toml").read_text(encoding="utf-8"))


def test_first_deploy_creates_resources_then_second_creates_nothing(demo: Path, tmp_path: Path) -> None:
    log = tmp_path / "wrangler.log"
    env = fake_wrangler_env(log)
    build_dir = (demo / BUILD_DIR).resolve()

    first = ff("deploy", cwd=demo, env=env)
    assert_ok(first)
    entries = read_log(log)
    assert [e["argv"] for e in entries] == FIRST_DEPLOY, describe(first)
    assert {Path(e["cwd"]).resolve() for e in entries} == {build_dir}
    for what in ("D1 database demo-index", "KV namespace demo-cache", "R2 bucket demo-payloads",
                 "queue demo-dispatch", "queue demo-dispatch-dlq"):
        assert f"created {what}" in first.stdout, describe(first)
    assert "deployed demo" in first.stdout, describe(first)

    # the ids wrangler printed are recorded and the regenerated wrangler.toml carries them
    remote = json.loads(log.with_name(log.name + ".state.json").read_text())
    d1_id, kv_id = remote["d1"][0]["uuid"], remote["kv"][0]["id"]
    assert UUID.match(d1_id) and HEX32.match(kv_id)
    recorded = json.loads((demo / RESOURCES_FILE).read_text())
    assert recorded == {"d1": {"demo-index": d1_id}, "kv": {"demo-cache": kv_id},
                        "r2": {"demo-payloads": "demo-payloads"},
                        "queues": {"demo-dispatch": "demo-dispatch", "demo-dispatch-dlq": "demo-dispatch-dlq"}}
    config = _wrangler_config(demo)
    assert config["d1_databases"][0]["database_id"] == d1_id
    assert config["kv_namespaces"][0]["id"] == kv_id
    entry = (demo / BUILD_DIR / "src" / "entry.py").read_text()
    assert entry.count("import workflows.hello  #") == 1, entry  # a second build in one process doubles nothing

    # second deploy: every id is known, so nothing is listed or created; migrations and deploy run again
    mark = len(read_log(log))
    before = snapshot(demo / BUILD_DIR, skip=(".wrangler",))
    started = time.time_ns()
    second = ff("deploy", cwd=demo, env=env)
    assert_ok(second)
    assert _calls(log, mark) == [["d1", "migrations", "apply", "demo-index", "--remote"], ["deploy"]]
    assert "all resources exist; nothing created" in second.stdout
    if not flareflow_changed_since(started):  # else someone edited flareflow meanwhile: a rebuild is right
        assert "build is up to date" in second.stdout
        assert snapshot(demo / BUILD_DIR, skip=(".wrangler",)) == before

    # --env is passed to the migrations and to deploy
    mark = len(read_log(log))
    staging = ff("deploy", "--env", "staging", cwd=demo, env=env)
    assert_ok(staging)
    assert _calls(log, mark) == [["d1", "migrations", "apply", "demo-index", "--remote", "--env", "staging"],
                                 ["deploy", "--env", "staging"]]


def test_resources_that_exist_remotely_are_found_by_listing(demo: Path, tmp_path: Path) -> None:
    log = tmp_path / "wrangler.log"
    d1_id, kv_id = "0f0e0d0c-0b0a-4909-8807-060504030201", "ffeeddccbbaa99887766554433221100"
    log.with_name(log.name + ".state.json").write_text(json.dumps({
        "d1": [{"name": "other-db", "uuid": "11111111-1111-4111-8111-111111111111"},
               {"name": "demo-index", "uuid": d1_id}],
        "kv": [{"title": "demo-cache-preview", "id": "0" * 32}, {"title": "demo-cache", "id": kv_id}],
        "r2": [{"name": "demo-payloads-old"}, {"name": "demo-payloads"}],
        "queues": [{"name": "demo-dispatch-dlq", "id": "a" * 32}, {"name": "demo-dispatch", "id": "b" * 32}],
    }))
    result = ff("deploy", cwd=demo, env=fake_wrangler_env(log))
    assert_ok(result)
    calls = _calls(log)
    assert _creates(calls) == [], calls
    assert calls == [c for c in FIRST_DEPLOY if "create" not in c]
    assert "all resources exist; nothing created" in result.stdout
    recorded = json.loads((demo / RESOURCES_FILE).read_text())
    assert recorded["d1"] == {"demo-index": d1_id} and recorded["kv"] == {"demo-cache": kv_id}
    config = _wrangler_config(demo)
    assert config["d1_databases"][0]["database_id"] == d1_id and config["kv_namespaces"][0]["id"] == kv_id


def test_similar_names_do_not_count_as_existing(demo: Path, tmp_path: Path) -> None:
    """Only the dead-letter queue exists: the main queue (a prefix of its name) is still created."""
    log = tmp_path / "wrangler.log"
    log.with_name(log.name + ".state.json").write_text(json.dumps({
        "r2": [{"name": "demo-payloads-old"}],
        "queues": [{"name": "demo-dispatch-dlq", "id": "a" * 32}],
    }))
    result = ff("deploy", cwd=demo, env=fake_wrangler_env(log))
    assert_ok(result)
    assert _creates(_calls(log)) == [["d1", "create", "demo-index"], ["kv", "namespace", "create", "demo-cache"],
                                     ["r2", "bucket", "create", "demo-payloads"],
                                     ["queues", "create", "demo-dispatch"]]


def test_deploy_without_resources_runs_only_deploy(tmp_path: Path) -> None:
    root = tmp_path / "plain"
    (root / "workflows").mkdir(parents=True)
    (root / "pyproject.toml").write_text(pyproject("plain", NO_RESOURCES))
    (root / "workflows" / "w.py").write_text("from flareflow import workflow\n\n\n@workflow('w')\n"
                                             "async def w(run):\n    return 1\n")
    log = tmp_path / "wrangler.log"
    result = ff("deploy", "--env", "prod", cwd=root, env=fake_wrangler_env(log))
    assert_ok(result)
    assert _calls(log) == [["deploy", "--env", "prod"]]
    assert not (root / RESOURCES_FILE).exists()


def test_a_failing_wrangler_command_is_one_error_line(demo: Path, tmp_path: Path) -> None:
    log = tmp_path / "wrangler.log"
    result = ff("deploy", cwd=demo, env=fake_wrangler_env(log, FAKE_WRANGLER_FAIL="kv namespace create"))
    assert result.returncode != 0, describe(result)
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "kv namespace create demo-cache" in errors[0], describe(result)
    assert "Traceback" not in result.stderr
    calls = _calls(log)
    assert calls[-1] == ["kv", "namespace", "create", "demo-cache"] and ["deploy"] not in calls
    # what was created before the failure is recorded, so the next deploy does not create it again
    assert list(json.loads((demo / RESOURCES_FILE).read_text())) == ["d1"]
    mark = len(calls)
    assert_ok(ff("deploy", cwd=demo, env=fake_wrangler_env(log)))
    assert ["d1", "create", "demo-index"] not in _calls(log, mark)
    assert ["kv", "namespace", "create", "demo-cache"] in _calls(log, mark)


def test_serve_runs_wrangler_dev_on_the_configured_port(demo: Path, tmp_path: Path) -> None:
    with (demo / "pyproject.toml").open("a") as f:
        f.write("\n[tool.flareflow.dev]\nport = 8931\n")
    log = tmp_path / "wrangler.log"
    result = ff("serve", cwd=demo, env=fake_wrangler_env(log))
    assert_ok(result)
    entries = read_log(log)
    assert [e["argv"] for e in entries][-1] == ["dev", "--port", "8931", "--ip", "127.0.0.1"]
    assert Path(entries[-1]["cwd"]).resolve() == (demo / BUILD_DIR).resolve()
    assert (demo / BUILD_DIR / "wrangler.toml").exists()  # it built first
    assert "Ready on http://127.0.0.1:8931" in result.stdout  # wrangler's output is passed through
    # --port and --host win over the settings
    again = ff("serve", "--port", "9123", "--host", "0.0.0.0", cwd=demo, env=fake_wrangler_env(log))
    assert_ok(again)
    assert _calls(log)[-1] == ["dev", "--port", "9123", "--ip", "0.0.0.0"]


def test_serve_explains_that_python_workers_need_the_network(demo: Path, tmp_path: Path) -> None:
    log = tmp_path / "wrangler.log"
    result = ff("serve", cwd=demo, env=fake_wrangler_env(log, FAKE_WRANGLER_FAIL="dev"))
    assert result.returncode != 0, describe(result)
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, describe(result)
    assert "Pyodide" in errors[0] and "flareflow serve --local" in errors[0], describe(result)
    assert _calls(log)[-1] == ["dev", "--port", "8787", "--ip", "127.0.0.1"]

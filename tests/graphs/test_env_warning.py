"""``flareflow run NAME|FILE --env KEY=...`` for a key the graph never reads (no ``${env.KEY}`` in it or in a
graph its ``workflow`` tasks run, no ``env`` default) warns with a did-you-mean; the run still goes ahead."""

from __future__ import annotations

from pathlib import Path

from tests.cli.helpers import describe, ff

from .helpers import make_project, output_of, run_json


def test_run_env_warns_of_a_key_the_graph_never_reads_and_still_runs(tmp_path: Path) -> None:
    root = make_project(tmp_path, {
        "workflows/deploy.yaml": """\
name: deploy
local_only: true
env: {REGION: eu}
tasks:
  - id: go
    type: shell
    command: "echo ${env.DEPLOY_ENABLED}-${env.REGION}"
  - id: child
    type: workflow
    workflow: notify
""",
        "workflows/notify.yaml": "name: notify\nlocal_only: true\n"
                                 "tasks:\n  - {id: n, type: shell, command: 'echo ${env.CHANNEL}'}\n"})
    result, events = run_json(root, "deploy", "--env", "DEPLOY_ENABLD=true", "--env", "REGION=us",
                              "--env", "CHANNEL=ops")
    assert result.returncode == 0, describe(result)
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert warnings == ["warning: --env DEPLOY_ENABLD: workflow 'deploy' never reads ${env.DEPLOY_ENABLD} (did you "
                        'mean "DEPLOY_ENABLED"?); the run goes ahead, and nothing in it uses this value'], result.stderr
    assert output_of(events)["tasks"]["go"]["result"] == "-us"
    by_file = ff("run", "workflows/deploy.yaml", "--env", "DEPLOY_ENABLED=true", cwd=root)
    assert by_file.returncode == 0, describe(by_file)
    assert "warning:" not in by_file.stderr, by_file.stderr

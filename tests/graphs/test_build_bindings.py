"""What the Worker would lack or the run and build refuse, said by ``flareflow build`` / ``validate``.

A Worker-bound ``database`` task whose D1 binding the Worker will not have (the default ``DB``, with
the generated wrangler.toml declaring only ``INDEX``) is a warning naming the task, not a failed run on
Cloudflare; a binding declared in a root wrangler.toml, ``INDEX``, and a ``local_only`` graph raise
none. A ``migration`` folder that is not there is a located validate error."""

from __future__ import annotations

from pathlib import Path

from tests.cli.helpers import describe, ff

from .helpers import graph, make_project

STORE = graph("store", {"id": "q", "type": "database", "query": "SELECT 1"},
              {"id": "w", "type": "database", "binding": "INDEX", "query": "SELECT 2"})
LOCAL = graph("chores", {"id": "l", "type": "database", "binding": "OTHER", "query": "SELECT 1"}, local_only=True)
ROOT_CONFIG = """\
name = "store"
main = "src/entry.py"
compatibility_flags = ["python_workers"]

[[d1_databases]]
binding = "DB"
database_name = "store"
database_id = "00000000-0000-0000-0000-000000000000"
"""


def test_an_undeclared_d1_binding_is_a_warning_naming_the_task(tmp_path: Path) -> None:
    root = make_project(tmp_path, {"workflows/store.json": STORE, "workflows/chores.json": LOCAL})
    for command in ("build", "validate"):
        result = ff(command, cwd=root)
        assert result.returncode == 0, describe(result)
        warnings = [line for line in result.stderr.splitlines() if "D1 binding" in line]
        assert len(warnings) == 1, describe(result)  # q's default DB; not INDEX, not the local-only graph
        assert warnings[0].startswith('warning: workflows/store.json: task "q" uses the D1 binding DB'), warnings


def test_a_binding_the_root_wrangler_config_declares_is_fine(tmp_path: Path) -> None:
    root = make_project(tmp_path, {"workflows/store.json": graph("store", STORE["tasks"][0]),
                                   "wrangler.toml": ROOT_CONFIG})
    result = ff("validate", cwd=root)
    assert result.returncode == 0, describe(result)
    assert 'task "q" uses the D1 binding' not in result.stderr, describe(result)


MIGRATES = graph("migrates", {"id": "schema", "type": "database", "binding": "INDEX", "migration": "db"},
                 {"id": "pick", "type": "conditional", "condition": "true",
                  "then": {"type": "database", "binding": "INDEX", "migration": "workflows/db"}})


def test_a_missing_migration_folder_is_a_located_validate_error(tmp_path: Path) -> None:
    """The run and the build refuse a migration folder that is not there; validate says so first."""
    root = make_project(tmp_path, {"workflows/migrates.json": MIGRATES})
    result = ff("validate", "--local", cwd=root)
    assert result.returncode == 1, describe(result)
    lines = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 2, describe(result)
    assert lines[0].startswith("error: workflows/migrates.json:"), lines
    assert "tasks[0].migration: migration folder 'db' does not exist" in lines[0], lines
    assert "tasks[1].then.migration: migration folder 'workflows/db' does not exist" in lines[1], lines
    (root / "db").mkdir()
    (root / "workflows/db").mkdir()
    assert ff("validate", "--local", cwd=root).returncode == 0


def test_a_local_only_graph_schedule_is_no_cron_trigger_of_the_worker(tmp_path: Path) -> None:
    """The build leaves a local-only graph out of the Worker, so its schedule too (serve --local fires it)."""
    nap = {"id": "s", "type": "sleep", "duration": 1}
    at3, at4 = {"type": "schedule", "cron": "0 3 * * *"}, {"type": "schedule", "cron": "0 4 * * *"}
    root = make_project(tmp_path, {"workflows/chores.json": graph("chores", nap, local_only=True, trigger=at3),
                                   "workflows/nightly.json": graph("nightly", nap, trigger=at4)})
    result = ff("build", cwd=root)
    assert result.returncode == 0, describe(result)
    config = (root / ".flareflow/build/wrangler.toml").read_text(encoding="utf-8")
    assert 'crons = ["0 4 * * *"]' in config, config

"""Which files of the workflow folders are task graphs, and how far one broken file reaches: real
``flareflow`` processes on a project holding a settings file, a broken graph and a Python workflow
with an unreadable schedule beside a good workflow."""

from __future__ import annotations

from pathlib import Path

from tests.cli.helpers import describe, ff

from .helpers import make_project

HELLO = '''\
from flareflow import Run, workflow


@workflow("hello")
async def hello(run: Run) -> str:
    return "hi"
'''

BAD_SCHEDULE = '''\
from flareflow import Run, workflow


@workflow("nightly", schedule="every blursday at 9")
async def nightly(run: Run) -> str:
    return "x"
'''

BROKEN_GRAPH = "name: broken\ntasks:\n  - id: a\n    type: shel\n    command: echo a\n"


def test_a_settings_file_beside_the_workflows_is_skipped_with_a_warning_from_validate(tmp_path: Path) -> None:
    root = make_project(tmp_path / "p", {"workflows/hello.py": HELLO,
                                         "workflows/settings.json": {"api_key_name": "X"},
                                         "workflows/fixture.yaml": "- 1\n- 2\n"})
    ran = ff("run", "hello", cwd=root)
    assert ran.returncode == 0 and "warning" not in ran.stderr, describe(ran)
    validate = ff("validate", "--local", cwd=root)
    assert validate.returncode == 0, describe(validate)
    assert "workflows/settings.json: not a task graph (no tasks): skipped" in validate.stderr, describe(validate)
    assert "workflows/fixture.yaml: not a task graph (no tasks): skipped" in validate.stderr, describe(validate)
    assert "1 workflow(s): hello" in validate.stdout, describe(validate)


def test_a_misspelt_tasks_key_is_still_a_graph_with_an_error(tmp_path: Path) -> None:
    root = make_project(tmp_path / "p", {"workflows/hello.py": HELLO,
                                         "workflows/deploy.yaml": "name: deploy\ntaks:\n  - id: a\n"})
    validate = ff("validate", "--local", cwd=root)
    assert validate.returncode == 1 and "workflows/deploy.yaml" in validate.stderr, describe(validate)
    assert "not a task graph" not in validate.stderr, describe(validate)


def test_one_broken_file_does_not_stop_running_or_listing_the_others_but_validate_and_build_refuse(
        tmp_path: Path) -> None:
    root = make_project(tmp_path / "p", {"workflows/hello.py": HELLO, "workflows/nightly.py": BAD_SCHEDULE,
                                         "workflows/broken.yaml": BROKEN_GRAPH})
    ran = ff("run", "hello", cwd=root)
    assert ran.returncode == 0 and '"hi"' in ran.stdout, describe(ran)
    for needle in ("warning: not loaded: workflow 'nightly'", "invalid schedule 'every blursday at 9'",
                   'warning: not loaded: workflows/broken.yaml:4 tasks[0].type: unknown task type "shel"',
                   "(see: flareflow validate)"):
        assert needle in ran.stderr, describe(ran)

    listed = ff("workflows", cwd=root)
    assert listed.returncode == 0 and "hello" in listed.stdout, describe(listed)
    assert "nightly" not in listed.stdout and "not loaded: workflow 'nightly'" in listed.stderr, describe(listed)
    assert "not loaded: workflows/broken.yaml" in listed.stderr, describe(listed)

    for name, needle in (("nightly", "invalid schedule"), ("broken", 'unknown task type "shel"')):
        failed = ff("run", name, cwd=root)  # the broken workflow itself does not run, and says why
        assert failed.returncode == 1 and f"unknown workflow '{name}'" in failed.stderr, describe(failed)
        assert needle in failed.stderr and "Traceback" not in failed.stderr, describe(failed)

    validate = ff("validate", "--local", cwd=root)
    assert validate.returncode == 1 and 'unknown task type "shel"' in validate.stderr, describe(validate)
    (root / "workflows" / "broken.yaml").unlink()
    validate = ff("validate", "--local", cwd=root)
    assert validate.returncode == 1 and "invalid schedule" in validate.stderr, describe(validate)
    build = ff("build", cwd=root)
    assert build.returncode == 1 and "invalid schedule" in build.stderr, describe(build)


def test_validate_of_a_python_file_says_file_arguments_are_task_graphs(tmp_path: Path) -> None:
    root = make_project(tmp_path / "p", {"workflows/hello.py": HELLO})
    result = ff("validate", "workflows/hello.py", cwd=root)
    assert result.returncode == 2, describe(result)
    assert "FILE arguments are task-graph files" in result.stderr, describe(result)
    assert "flareflow validate (no FILE)" in result.stderr and "not valid JSON" not in result.stderr, describe(result)

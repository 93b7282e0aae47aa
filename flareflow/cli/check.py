"""``flareflow check`` and ``flareflow runs export``: would the current code replay the recorded runs?

``check`` replays, without executing anything (`flareflow.engine.replay`), the history of every
unfinished local run and of every exported history file it is given, and reports each divergence
with the run, the step, the recorded call and the new one, and each run whose workflow is missing;
exit 1 when any run would not replay or a workflow module fails to import.
``runs export ID`` writes a run's history (the run as ``GET /runs/{id}`` shows it, steps with their
positions, and its events) as one JSON document, locally or from a server (``--url``).
``flareflow deploy`` runs the same check against the deployed Worker's unfinished runs
(`check_deployed`), read over its HTTP API.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from ..engine.registry import Registry
from ..engine.replay import check_replay, describe_problem, records_from_steps
from ..engine.status import UNFINISHED
from .backends import local_runtime, open_runs
from .common import ProjectOpt, UsageError, console, run_async
from .common import load as load_project
from .project import Project

#: The ``export`` field of an exported history: its format's version.
EXPORT_VERSION = 1
#: Runs listed per page when reading a server's unfinished runs.
PAGE = 200


async def check_local(project: Project) -> list[tuple[dict[str, Any], dict[str, Any] | None]]:
    """Every unfinished run of the project's state directory with what `check_replay` says of it.

    The runtime is opened without starting it: no alarm fires and no run is executed or taken."""
    rt = local_runtime(project)
    try:
        rt.reconcile()
        results = []
        for run_id in rt.index.ids(tuple(sorted(UNFINISHED))):
            obj = rt.get(run_id)
            run = obj.describe()
            results.append((run, await check_replay(project.registry, run, obj.store.history())))
            rt.evict(run_id, counted=False)
        return results
    finally:
        await rt.close()


async def check_file(registry: Registry, path: Path) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """An exported history (``flareflow runs export``, or ``runs show --json``) and its check."""
    try:
        run = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise UsageError(f"{path}: not a readable history export ({exc})") from None
    if not isinstance(run, dict) or not isinstance(run.get("steps"), list) or "workflow" not in run:
        raise UsageError(f"{path}: not a history export (make one with: flareflow runs export ID > FILE)")
    try:
        history = records_from_steps(run["steps"])
    except ValueError as exc:
        raise UsageError(f"{path}: {exc}") from None
    return run, await check_replay(registry, {"id": run.get("id", path.stem), **run}, history)


async def check_deployed(registry: Registry, url: str, token: str | None) -> list[tuple[dict[str, Any],
                                                                                      dict[str, Any] | None]]:
    """Every unfinished run of the server at ``url`` (``GET /runs?status=...``, paged, then
    ``GET /runs/{id}``) with what `check_replay` says of it against ``registry``."""
    from ..client import Client

    results = []
    async with Client(url, token) as client:
        for status in sorted(UNFINISHED):
            cursor = None
            while True:
                page = await client.list(status=status, limit=PAGE, cursor=cursor)
                for row in page["runs"]:
                    run = await client.get(str(row["id"]))
                    results.append((run, await check_replay(registry, run, records_from_steps(run["steps"]))))
                cursor = page.get("next_cursor")
                if not cursor:
                    break
    return results


def report(results: list[tuple[dict[str, Any], dict[str, Any] | None]], where: str, *, local: bool = False) -> int:
    """Print one line per run that would not replay, with what would let a diverging one continue (and a
    summary); how many would not. ``local``: the runs are this project's own (cancelled without --url)."""
    bad = [(run, problem) for run, problem in results if problem is not None]
    for run, problem in bad:
        console.print(f"[red]✗[/red] run {run.get('id')} ({escape(str(run.get('workflow')))}, {run.get('status')}): "
                      f"{escape(describe_problem(problem))}")
        if problem.get("advice"):  # a divergence: what the code (or the graph file) would need to continue it
            cancel = f"flareflow runs cancel {run.get('id')}" + ("" if local else " (with --url for a server)")
            console.print(f"  to continue it: {escape(str(problem['advice']))}; or cancel it: {escape(cancel)}")
    if bad:
        console.print(f"{len(bad)} of {len(results)} run(s) {where} would not replay on this code (they would "
                      "be held until it matches their history again, or until they are cancelled)")
    else:
        console.print(f"[green]✓[/green] {len(results)} run(s) {where} replay on this code")
    return len(bad)


def register(app: typer.Typer, runs_app: typer.Typer) -> None:
    """Add ``check`` to ``app`` and ``export`` to ``runs_app``."""

    @app.command()
    def check(
        files: Annotated[list[Path] | None, typer.Argument(metavar="[HISTORY_FILE]...", help="Exported histories "
                                                           "(flareflow runs export ID > FILE) to check too.")]
        = None,
        local: Annotated[bool, typer.Option("--local/--no-local", help="Check the unfinished local runs.")] = True,
        project: ProjectOpt = None,
    ) -> None:
        """Replay unfinished runs against the current code (nothing runs); exit 1 if any diverges."""
        proj = load_project(project, tolerant=True)  # a module that fails to import is a problem found

        async def go() -> int:
            # a file that fails to load; not the note on an outside graph file (its runs are reported below)
            bad = len([p for p in proj.registry.import_errors if p not in proj.outside_notes])
            if local:
                bad += report(await check_local(proj), "in the local state", local=True)
            for path in files or []:
                bad += report([await check_file(proj.registry, path)], f"in {path}")
            return bad

        raise typer.Exit(1 if run_async(go) else 0)

    @runs_app.command("export")
    def runs_export(
        run_id: Annotated[str, typer.Argument(help="Run id (or unique prefix).")],
        url: Annotated[str | None, typer.Option("--url", envvar="FLAREFLOW_URL", show_default=False,
                                                help="Read it from a flareflow server ($FLAREFLOW_URL).")] = None,
        token: Annotated[str | None, typer.Option("--token", envvar="FLAREFLOW_TOKEN", show_default=False,
                                                  help="API bearer token for --url ($FLAREFLOW_TOKEN).")] = None,
        project: ProjectOpt = None,
    ) -> None:
        """Write a run's history (run, steps with positions, events) as JSON, for flareflow check FILE."""
        info, events = open_runs(url, token, project).call(lambda r: r.describe(run_id))
        typer.echo(json.dumps({"export": EXPORT_VERSION, **info, "events": events}))

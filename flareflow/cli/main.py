"""``flareflow``: write, run and inspect durable workflows from the terminal.

Every error a user can cause ends as one readable line on stderr and a non-zero exit code; stored
runs are never touched by a command that fails.
"""

from __future__ import annotations

import json
import re
import sys
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.markup import escape
from rich.table import Table
from typer.core import TyperArgument, TyperOption

from .. import __version__
from ..engine.errors import InvalidInput
from ..engine.status import STATUSES, RunStatus
from ..migrations.runs_index import prune_filter
from . import check as checks
from . import cloud, graphs
from .ai import ai_app
from .backends import LocalRuns, Runs, detached_note, open_runs
from .common import ProjectOpt, UsageError, console, err_console, fail, json_stdout, key_value_pairs, write_json_line
from .common import guard as _guard
from .common import load as _project
from .common import run_async as _run
from .render import error_line, frame_lines, log_lines, schedule_summary, step_shown, waits_phrase
from .scaffold_ai import TEMPLATES, apply_ai_template, next_command
from .worker import IDLE_SECONDS

if TYPE_CHECKING:
    pass

T = TypeVar("T")

#: ``-h`` is ``--help``. Help is plain text (click's layout, ``rich_markup_mode=None``): rich markup
#: would eat every ``[bracketed]`` word of it (``[tool.flareflow]``, ``[build]``), and the rich layout
#: labels flags ``<bool>``.
CONTEXT = {"help_option_names": ["-h", "--help"]}

app = typer.Typer(
    name="flareflow",
    help="Durable async Python workflows: run them here, serve them, ship them to Cloudflare.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings=CONTEXT,
)
runs_app = typer.Typer(help="Inspect and control runs in the local state directory.", no_args_is_help=True,
                       rich_markup_mode=None, context_settings=CONTEXT)
app.add_typer(runs_app, name="runs")
app.add_typer(ai_app, name="ai")

UrlOpt = Annotated[
    str | None,
    typer.Option("--url", envvar="FLAREFLOW_URL", help="Talk to a flareflow server instead of the local state "
                 "($FLAREFLOW_URL).", show_default=False),
]
TokenOpt = Annotated[
    str | None,
    typer.Option("--token", envvar="FLAREFLOW_TOKEN", help="API bearer token for --url ($FLAREFLOW_TOKEN).",
                 show_default=False),
]


RUN_STATUSES = STATUSES


def parse_json(text: str, what: str) -> Any:
    """``text`` as JSON; a bare word is told how to be a JSON string (``'"yes"'``)."""
    try:
        return json.loads(text)
    except ValueError as exc:
        word = text.strip()
        hint = (f"; a string is quoted in JSON: '{json.dumps(word)}'" if word and "'" not in word
                and not word.startswith(("{", "[", '"')) else "")
        raise UsageError(f"{what} is not valid JSON ({exc}): {text[:60]}{hint}") from None


def read_input(raw: str) -> str:
    """``--input``'s text: ``-`` reads stdin, ``@FILE`` a file, anything else is the JSON itself."""
    if raw == "-":
        return sys.stdin.read()
    if raw.startswith("@"):
        path = Path(raw[1:])
        try:
            return path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise UsageError(f"--input {raw}: cannot read {path} ({reason})") from None
    return raw


def build_input(raw: str | None, pairs: list[str] | None) -> Any:
    """``--input JSON`` (or ``@FILE``, or ``-`` for stdin) or ``-i key=value`` pairs (values parsed as
    JSON when they are JSON)."""
    if raw is not None and pairs:
        raise UsageError("give either --input JSON or -i key=value pairs, not both")
    if raw is not None:
        return parse_json(read_input(raw), f"--input {raw}" if raw == "-" or raw.startswith("@") else "--input")
    if not pairs:
        return None
    data: dict[str, Any] = {}
    for key, value in key_value_pairs(pairs, "-i", "key=value").items():
        try:
            data[key] = json.loads(value)
        except ValueError:
            data[key] = value
    return data


def package_name(raw: str) -> str:
    """A valid ``[project] name`` (PEP 508) made of ``raw``: ``My App!`` is ``my-app``."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", raw).strip("-._").lower()
    return re.sub(r"-{2,}", "-", name) or "flareflow-project"


def version_callback(value: bool) -> None:
    if value:
        console.print(f"flareflow {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[bool, typer.Option("--version", callback=version_callback, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """Durable async Python workflows."""


# -- new ---------------------------------------------------------------------------------------
@app.command()
def new(
    directory: Annotated[Path, typer.Argument(help="Folder to create the project in.")],
    name: Annotated[str | None, typer.Option(help="Project name (default: the folder name).")] = None,
    force: Annotated[bool, typer.Option(help="Write into a non-empty folder (never overwrites files).")] = False,
    template: Annotated[str, typer.Option(help="default, or ai: also an AI example (run.ai, embeddings) and "
                                          "[tool.flareflow.ai].")] = "default",
) -> None:
    """Create a project with example workflows (hello, onboarding, report)."""
    if template not in TEMPLATES:
        fail(f"--template must be one of {', '.join(TEMPLATES)}, got '{template}'", 2)
    target = directory.resolve()
    if target.exists() and not target.is_dir():
        fail(f"{directory} exists and is not a folder")
    if target.exists() and any(target.iterdir()) and not force:
        fail(f"{directory} is not empty; choose a new folder or pass --force")
    project_name = package_name(name or target.name)
    if project_name != (name or target.name):
        console.print(f"project name [bold]{escape(project_name)}[/bold] (from '{escape(name or target.name)}': "
                      "a package name has letters, digits and . _ - only)")
    source = resources.files("flareflow.templates").joinpath("project")
    written: list[str] = []
    skipped: list[str] = []

    def copy(node: Any, rel: Path) -> None:
        for child in node.iterdir():
            if child.name in ("__pycache__",):
                continue
            # dot-names are stored without the dot so packaging tools never skip them
            dest_rel = rel / ({"gitignore": ".gitignore", "github": ".github"}.get(child.name, child.name))
            if child.is_dir():
                copy(child, dest_rel)
                continue
            dest = target / dest_rel
            if dest.exists():
                skipped.append(str(dest_rel))
                continue
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_text(child.read_text(encoding="utf-8").replace("__PROJECT_NAME__", project_name),
                            encoding="utf-8")
            written.append(str(dest_rel))

    copy(source, Path())
    if template == "ai":
        apply_ai_template(target, written, skipped)
    for path in sorted(written):
        console.print(f"  [green]created[/green] {path}")
    for path in sorted(skipped):
        console.print(f"  [yellow]kept[/yellow]    {path} (exists)")
    console.print(f"\nNext:\n  cd {directory}\n  {next_command(template, written)}")


# -- workflows / validate ----------------------------------------------------------------------
@app.command()
def workflows(
    project: ProjectOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the manifest as JSON.")] = False,
) -> None:
    """List the workflows the project declares (a file that does not load is a warning naming it: see
    flareflow validate)."""
    from .project import load_for_listing

    proj, broken = _guard(lambda: load_for_listing(project))
    _not_loaded(broken)
    if as_json:
        console.print_json(json.dumps(proj.registry.manifest()))
        return
    table = Table("workflow", "input", "schedule (UTC)", "description", box=None)
    fires: list[str] = []
    for defn in proj.registry:
        takes = "required" if defn.input_required else ("optional" if defn.takes_input else "none")
        summary = schedule_summary(defn.schedule, defn.schedule_text, defn.tz)
        cron, _, upcoming = summary.partition(" · ")
        if upcoming:
            fires.append(f"  {escape(defn.name)}: {escape(upcoming.removeprefix('next '))}")
        table.add_row(defn.name, takes, escape(cron), defn.description.splitlines()[0] if defn.description else "")
    console.print(table)
    if fires:
        console.print("\nNext fire times:\n" + "\n".join(fires), soft_wrap=True)


def _not_loaded(problems: list[str]) -> None:
    """The files `load_for_listing` could not load, one warning each on stderr."""
    for problem in problems:
        err_console.print(f"[yellow]warning:[/yellow] not loaded: {escape(problem)}", highlight=False,
                          soft_wrap=True)


@app.command()
def validate(
    files: Annotated[list[Path] | None, typer.Argument(
        help="Task-graph files to check on their own (even outside the workflows folder), instead of the "
             "project.", show_default=False, metavar="[FILE]...")] = None,
    project: ProjectOpt = None,
    local: Annotated[bool, typer.Option("--local", help="Check for the local runtime only: task graphs may use "
                                        "local-only task types (shell, docker, ...).")] = False,
) -> None:
    """Check the project as `flareflow build` does (settings, workflow imports, schedules, a root wrangler
    config), without building; exit 1 on the first problem. Every error of every task-graph file is
    listed (one located line each) first. Warnings go to stderr. With FILE...: check those task-graph
    files alone (what `flareflow run FILE` would refuse)."""
    from ..graphs.files import GRAPH_SUFFIXES
    from ..graphs.validate import LOCAL_ONLY_HINT
    from .build import check
    from .graphs import graph_errors, load_checked, not_graph_files, shown

    problems: list[Any]
    if files:
        problems = []
        for path in files:
            if not path.is_file():
                fail(f"{path}: no such file", 2)
            if path.suffix.lower() not in GRAPH_SUFFIXES:
                fail(f"{path}: FILE arguments are task-graph files ({', '.join(GRAPH_SUFFIXES)}); Python "
                     "workflows are checked with the whole project: flareflow validate (no FILE)", 2)
            graph, found = load_checked(path, str(path), cloudflare=not local)
            problems += found
            if graph is not None and not found:
                tasks = graph.definition.get("tasks") or []
                console.print(f"[green]✓[/green] {escape(str(path))}: workflow {escape(graph.name)}, "
                              f"{len(tasks)} task(s)")
    else:
        proj = _project(project, discover=False)
        for skipped in not_graph_files(proj):
            err_console.print(f"[yellow]warning:[/yellow] {escape(shown(proj, skipped))}: not a task graph (no "
                              "tasks): skipped", highlight=False, soft_wrap=True)
        problems = _guard(lambda: graph_errors(proj, cloudflare=not local))
    for problem in problems:
        err_console.print(f"[bold red]error:[/bold red] {escape(str(problem))}", highlight=False, soft_wrap=True)
    if any("cannot be built for Cloudflare" in problem.message for problem in problems):
        err_console.print(f"hint: {escape(LOCAL_ONLY_HINT)}", highlight=False, soft_wrap=True)
    if problems:
        raise typer.Exit(1)
    if files:
        return
    for warning in _guard(lambda: check(proj)).warnings:
        err_console.print(f"[yellow]warning:[/yellow] {escape(warning)}")
    for defn in proj.registry:
        if defn.schedule is not None:
            summary = schedule_summary(defn.schedule, defn.schedule_text, defn.tz)
            console.print(f"schedule {escape(defn.name)}: {escape(summary)}", soft_wrap=True)
    console.print(f"[green]✓[/green] {proj.root}: {len(proj.registry)} workflow(s): "
                  + ", ".join(proj.registry.names()))


# -- run -----------------------------------------------------------------------------------
@app.command()
def run(
    name: Annotated[str, typer.Argument(help="Workflow name, or a task-graph file (.json, .yaml) to run directly.")],
    input: Annotated[str | None, typer.Option("--input", metavar="JSON|@FILE|-",
                                              help="Input as JSON, read from a file (@order.json) or stdin (-).")]
    = None,
    item: Annotated[list[str] | None, typer.Option("-i", help="key=value input field (repeatable).")] = None,
    env: Annotated[list[str] | None, typer.Option("--env", metavar="KEY=VALUE",
                                                  help="A task graph's ${env.KEY} for this run (repeatable).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print events as NDJSON (the wire objects).")] = False,
    detach: Annotated[bool, typer.Option("--detach", help="Start it in the background, print its id.")] = False,
    idempotency_key: Annotated[str | None, typer.Option("--idempotency-key",
                                                        help="Same key, same run.")] = None,
    url: UrlOpt = None,
    token: TokenOpt = None,
    project: ProjectOpt = None,
) -> None:
    """Start a run (on the embedded runtime, or a server with --url) and stream it live."""
    from .graphs import env_is_for_graphs, in_workflow_folders, is_graph_file, register_file, with_env
    from .project import load_for_listing, note_outside_graph

    value = _guard(lambda: with_env(build_input(input, item), env))
    with json_stdout(as_json and not detach):  # importing the workflows may print too
        broken: list[str] = []
        runs: Runs
        if url:
            runs = open_runs(url, token, project)
        else:  # another file's error does not stop this run (validate and build stay strict)
            proj, broken = _guard(lambda: load_for_listing(project, None if is_graph_file(name) else name))
            runs = LocalRuns(proj)
        outside: Path | None = None
        if is_graph_file(name) and isinstance(runs, LocalRuns):
            file = Path(name)
            name = _guard(lambda: register_file(runs.project, str(file), detach=detach))
            outside = None if in_workflow_folders(runs.project, file) else file
        _not_loaded(broken)
        if env and isinstance(runs, LocalRuns):
            _guard(lambda: env_is_for_graphs(runs.project, name, env))
        try:
            code = runs.run(name, value, json_mode=as_json, idempotency_key=idempotency_key, detach=detach)
        except typer.Exit as exc:
            if outside is not None and isinstance(runs, LocalRuns) and exc.exit_code == 130:
                _outside_stopped(runs.project, name, outside)
            raise
        if outside is not None and isinstance(runs, LocalRuns):
            note_outside_graph(runs.project, name, outside, unfinished=False)
    raise typer.Exit(code)


def _outside_stopped(proj: Any, name: str, file: Path) -> None:
    """A run of a graph file from outside the workflow folders was left unfinished (Ctrl-C): `resume`
    cannot find its workflow by itself, so say what it needs, and record the file so the held run's
    message names it (`flareflow.cli.project.note_outside_graph`)."""
    from .project import note_outside_graph

    note_outside_graph(proj, name, file, unfinished=True)
    folders = ", ".join(f"{entry.rstrip('/')}/" for entry in proj.settings.workflows)
    err_console.print(f"[yellow]but[/yellow] {escape(str(file))} is outside the project's workflow folders "
                      f"({escape(folders)}), so flareflow resume cannot find workflow '{escape(name)}' on its "
                      "own: move the file there first, then resume (or cancel the run: flareflow runs list "
                      f"--workflow {escape(name)}, then flareflow runs cancel ID)", highlight=False, soft_wrap=True)


# -- resume --------------------------------------------------------------------------------
@app.command()
def resume(
    run_id: Annotated[str | None, typer.Argument(help="Run id (or unique prefix); default: all.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print events as NDJSON.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", help="Print nothing; just run.")] = False,
    project: ProjectOpt = None,
) -> None:
    """Continue unfinished runs after a crash or a detach, until they finish."""
    with json_stdout(as_json), detached_note():
        code = LocalRuns(_project(project, tolerant=True)).resume(run_id, json_mode=as_json, quiet=quiet)
    raise typer.Exit(code)


@app.command(hidden=True)
def worker(
    idle: Annotated[float, typer.Option(envvar="FLAREFLOW_WORKER_IDLE", min=0,
                                        help="Exit after this many seconds with nothing to execute.")]
    = IDLE_SECONDS,
    project: ProjectOpt = None,
) -> None:
    """Execute the project's detached runs in the background (started by run --detach, one per project)."""
    from .backends import local_runtime
    from .worker import main as worker_main

    proj = _project(project, tolerant=True)
    raise typer.Exit(_guard(lambda: worker_main(proj, local_runtime(proj), idle)))


# -- send-event / answer -----------------------------------------------------------------------
@app.command("send-event")
def send_event(
    run_id: Annotated[str, typer.Argument(help="Run id (or unique prefix).")],
    event_type: Annotated[str, typer.Argument(metavar="TYPE", help="Event type the run waits for.")],
    payload: Annotated[str | None, typer.Argument(metavar="[PAYLOAD_JSON]", help="Event payload.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="Deliver only; do not follow the run.")] = False,
    url: UrlOpt = None,
    token: TokenOpt = None,
    project: ProjectOpt = None,
) -> None:
    """Deliver an external event to a run."""
    value = _guard(lambda: parse_json(payload, "PAYLOAD_JSON") if payload is not None else None)
    runs = open_runs(url, token, project, discover=True)

    async def deliver(r: Runs) -> str:
        awaited = await r.awaited_events(run_id)  # before: once delivered, the run may move on
        if awaited and event_type not in awaited:  # delivered all the same: an early event is kept
            waits = " or ".join(f"'{escape(t)}'" for t in awaited)
            err_console.print(f"[yellow]warning:[/yellow] the run waits for {waits}, not "
                              f"'{escape(event_type)}' (delivered anyway: the run keeps it until it waits "
                              "for that type)")
        return await r.send_event(run_id, event_type, value, quiet)

    full = runs.call(deliver)
    console.print(f"[green]✓[/green] event [bold]{escape(event_type)}[/bold] delivered to {full}")


@app.command()
def answer(
    run_id: Annotated[str, typer.Argument(help="Run id (or unique prefix).")],
    value: Annotated[str, typer.Argument(metavar="VALUE_JSON", help="The answer, as JSON.")],
    step: Annotated[str | None, typer.Option(help="Which question, when several are open.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="Deliver only; do not follow the run.")] = False,
    url: UrlOpt = None,
    token: TokenOpt = None,
    project: ProjectOpt = None,
) -> None:
    """Answer a run's open question (validated against its schema)."""
    parsed = _guard(lambda: parse_json(value, "VALUE_JSON"))
    runs = open_runs(url, token, project, discover=True)
    full, answered = runs.call(lambda r: r.answer(run_id, parsed, step, quiet))
    console.print(f"[green]✓[/green] answer {f'to {answered} ' if answered else ''}delivered to {full}")


# -- runs ----------------------------------------------------------------------------------
@runs_app.command("list")
def runs_list(
    workflow: Annotated[str | None, typer.Option(help="Only this workflow.")] = None,
    status: Annotated[str | None, typer.Option(help="Only this status.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="How many, newest first.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    url: UrlOpt = None,
    token: TokenOpt = None,
    project: ProjectOpt = None,
) -> None:
    """List runs, newest first."""
    if status is not None and status not in RUN_STATUSES:
        fail(f"--status must be one of {', '.join(RUN_STATUSES)}, got '{status}'", 2)
    runs = open_runs(url, token, project)
    rows = runs.call(lambda r: r.list_runs(workflow, status, limit))
    if as_json:
        console.print_json(json.dumps(rows))
        return
    if not rows:
        if workflow or status:
            console.print("no runs match")
        else:
            console.print("no runs yet; start one with: flareflow run NAME")
        return
    table = Table("run", "workflow", "status", "created", "updated", "waiting for", box=None)
    colors = {RunStatus.COMPLETED: "green", RunStatus.FAILED: "red", RunStatus.CANCELLED: "yellow",
              RunStatus.WAITING: "blue"}
    for row in rows:
        color = colors.get(row["status"], "white")
        table.add_row(row["id"], row["workflow"], f"[{color}]{row['status']}[/{color}]",
                      row["created_at"][:19].replace("T", " "), row["updated_at"][:19].replace("T", " "),
                      escape(waits_phrase(row.get("waiting_for"))))
    console.print(table)


@runs_app.command("show")
def runs_show(
    run_id: Annotated[str, typer.Argument(help="Run id (or unique prefix).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    url: UrlOpt = None,
    token: TokenOpt = None,
    project: ProjectOpt = None,
) -> None:
    """Status, steps, state and events of one run."""
    info, events = open_runs(url, token, project).call(lambda r: r.describe(run_id))
    if as_json:
        console.print_json(json.dumps({**info, "events": events}))
        return
    console.print(f"[bold]run[/bold] {info['id']}  [bold]{escape(info['workflow'])}[/bold]  "
                  f"status [bold]{info['status']}[/bold]")
    console.print(f"created {info['created_at']}  updated {info['updated_at']}")
    origin = info.get("restarted_from")
    if origin:
        console.print(f"restarted from run {origin['run_id']} "
                      + (f"at step {escape(str(origin['step']))}" if origin.get("step") else "from the beginning"))
    console.print(f"input  {escape(json.dumps(info['input']))}")
    if info["status"] == RunStatus.COMPLETED:
        console.print(f"output {escape(json.dumps(info['output']))}")
    if info["error"]:
        console.print(f"error  {error_line(info['error'])}")
        for line in frame_lines(info["error"], "       "):
            console.print(line)
    console.print(f"state  {escape(json.dumps(info['state']))}")
    table = Table("step", "kind", "status", "attempts", "result / error", box=None, title="steps",
                  title_justify="left")
    for step in info["steps"]:
        detail = step["error"] if step["status"] == "failed" else step["result"]
        table.add_row(escape(step_shown(step["step"], step.get("name") or step["step"])), step["kind"],
                      step["status"], str(step["attempts"] or ""),
                      escape(json.dumps(detail)[:70]))
    console.print(table)
    for step in info["steps"]:
        _step_details(step)
    for wait in info["waiting"]:
        if wait["kind"] == "code":  # held: its workflow is missing, or the code diverges from its history
            console.print(f"[yellow]held[/yellow] for its code: {escape(str(wait.get('message')))} "
                          f"(re-checked at {wait['until']})")
            continue
        console.print(f"[blue]waiting[/blue] {wait['kind']} {escape(wait['step'])} "
                      + (f"until {wait['until']}" if wait["until"] else ""))
    console.print(f"[bold]events[/bold] ({len(events)})")
    for event in events:
        body = {k: v for k, v in event.items() if k not in ("seq", "type", "run_id", "at")}
        console.print(f"  {event['seq']:>4} {event['at']}  {event['type']:<15} {escape(json.dumps(body)[:90])}")


def _step_details(step: dict[str, Any]) -> None:
    """A step's logs, attempt by attempt, and the traceback of its failure (``runs show``)."""
    logs = step.get("logs") or []
    failed = step["status"] == "failed" and isinstance(step.get("error"), dict)
    if not logs and not failed:
        return
    console.print(f"[bold]{escape(step_shown(step['step'], step.get('name') or step['step']))}[/bold]  "
                  f"{step['status']}")
    for attempt in sorted({entry.get("attempt") for entry in logs}, key=lambda a: a or 0):
        console.print(f"  attempt {attempt}")
        for line in log_lines([e for e in logs if e.get("attempt") == attempt]):
            console.print(line)
    if failed:
        console.print(f"  [red]✗[/red] {error_line(step['error'])}")
        for line in frame_lines(step["error"]):
            console.print(line)


@runs_app.command("events")
def runs_events(
    run_id: Annotated[str, typer.Argument(help="Run id (or unique prefix).")],
    after: Annotated[int, typer.Option(min=0, help="Only events with a larger seq.")] = 0,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep streaming until the run ends (whichever "
                                         "process executes it).")] = False,
    url: UrlOpt = None,
    token: TokenOpt = None,
    project: ProjectOpt = None,
) -> None:
    """Print a run's events as NDJSON (live with --follow)."""

    async def dump(runs: Runs) -> None:
        async for event in runs.events(run_id, after, follow):
            write_json_line(event)

    open_runs(url, token, project).call(dump)


RunIdArg = Annotated[str, typer.Argument(help="Run id (or unique prefix).")]
ReasonOpt = Annotated[str | None, typer.Option(help="Recorded in the run.cancelled (run.paused) event "
                                               "[default: cancelled (paused) by user].", show_default=False)]
#: ``runs cancel|pause``: what the command does, and what it prints once done.
_CONTROLS = {
    "cancel": ("Cancel an unfinished run (wherever it executes: a detached run, serve --local).",
               "[yellow]■[/yellow] cancelled {id}"),
    "pause": ("Pause a run: its running step finishes, nothing new starts until runs resume.",
              "[yellow]‖[/yellow] paused {id}; continue it with: flareflow runs resume {id}"),
}


def _control_command(op: str) -> None:
    """Register ``runs OP RUN_ID [--reason]`` (``cancel``, ``pause``), carried out wherever the run executes."""

    def command(
        run_id: RunIdArg,
        reason: ReasonOpt = None,
        url: UrlOpt = None,
        token: TokenOpt = None,
        project: ProjectOpt = None,
    ) -> None:
        chosen = reason or ("cancelled by user" if op == "cancel" else "paused by user")
        full, _, applied = open_runs(url, token, project).call(lambda r: r.control(run_id, op, chosen))
        if not applied:
            fail(f"run {full} is executed by another flareflow process, which has not taken the {op} in yet; "
                 "it stays in the run's inbox")
        console.print(_CONTROLS[op][1].format(id=full))

    command.__doc__ = _CONTROLS[op][0]
    runs_app.command(op)(command)


_control_command("cancel")
_control_command("pause")


DetachOpt = Annotated[bool, typer.Option("--detach", help="Leave the run to the background (or the server) and "
                                         "print its id, instead of following it here.")]
JsonEventsOpt = Annotated[bool, typer.Option("--json", help="Print events as NDJSON (the wire objects).")]


def _proceed(run_id: str, op: str, from_step: str | None, as_json: bool, detach: bool, url: str | None,
             token: str | None, project: Path | None) -> None:
    with json_stdout(as_json and not detach):
        runs = open_runs(url, token, project, discover=True)
        code = runs.proceed(run_id, op, from_step=from_step, json_mode=as_json, detach=detach)
    raise typer.Exit(code)


def _continuing_command(op: str, doc: str) -> None:
    """Register ``runs OP RUN_ID`` (``resume``, ``retry``): the command, then the run followed here."""

    def command(
        run_id: RunIdArg,
        url: UrlOpt = None,
        token: TokenOpt = None,
        project: ProjectOpt = None,
        as_json: JsonEventsOpt = False,
        detach: DetachOpt = False,
    ) -> None:
        _proceed(run_id, op, None, as_json, detach, url, token, project)

    command.__doc__ = doc
    runs_app.command(op)(command)


_continuing_command("resume", "Release a paused run and follow it until it finishes.")
_continuing_command("retry", "Continue a failed run from its failed step (fresh attempts; completed steps are "
                    "not run again).")


@runs_app.command("restart")
def runs_restart(
    run_id: Annotated[str, typer.Argument(help="Run id (or unique prefix).")],
    from_step: Annotated[str | None, typer.Option("--from", metavar="STEP", help="Step key (charge#1) or name: "
                                                  "the steps before it are reused, not run again.")] = None,
    as_json: JsonEventsOpt = False,
    detach: DetachOpt = False,
    url: UrlOpt = None,
    token: TokenOpt = None,
    project: ProjectOpt = None,
) -> None:
    """Start a new run of the same workflow and input, from a step (default: from the beginning).

    The original run stays as it is; the new one records where it came from (restarted_from)."""
    _proceed(run_id, "restart", from_step, as_json, detach, url, token, project)


@runs_app.command("delete")
def runs_delete(
    run_id: Annotated[str, typer.Argument(help="Run id (or unique prefix) of a finished run.")],
    url: UrlOpt = None,
    token: TokenOpt = None,
    project: ProjectOpt = None,
) -> None:
    """Delete a finished run: its file, index row and stored payloads (cancel an unfinished one first)."""
    full = open_runs(url, token, project).call(lambda r: r.delete(run_id))
    console.print(f"[red]✗[/red] deleted {full}")


@runs_app.command("prune")
def runs_prune(
    older_than: Annotated[str, typer.Option("--older-than", metavar="AGE",
                                            help="Runs that finished longer ago than this (30d, 12h).")],
    status: Annotated[list[str] | None, typer.Option("--status", help="Only this finished status (repeatable; "
                                                     "default: completed, failed and cancelled).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List what would be deleted; delete nothing.")] = False,
    url: UrlOpt = None,
    token: TokenOpt = None,
    project: ProjectOpt = None,
) -> None:
    """Retention: delete finished runs older than an age, with their files and stored payloads."""
    try:  # an unfinished status or a bad age: a usage error, named by its option
        prune_filter(older_than, status)
    except InvalidInput as exc:
        fail(f"--{(exc.field or 'older_than').replace('_', '-')}: {exc}", 2)
    ids = open_runs(url, token, project).call(lambda r: r.prune(older_than, status, dry_run))
    for run_id in ids:
        console.print(f"  {run_id}")
    if dry_run:
        console.print(f"{len(ids)} run(s) would be deleted" + (" (the first page)" if url and ids else ""))
    else:
        console.print(f"deleted {len(ids)} run(s)")


# -- serve ---------------------------------------------------------------------------------
@app.command()
def serve(
    local: Annotated[bool, typer.Option("--local", help="Serve the embedded runtime (no Node, no network).")] = False,
    host: Annotated[str | None, typer.Option(help="Interface (default: tool.flareflow.dev.host).")] = None,
    port: Annotated[int | None, typer.Option(min=0, max=65535, help="Port (default: tool.flareflow.dev.port).")] = None,
    token: Annotated[str | None, typer.Option(help="API bearer token (default: $FLAREFLOW_TOKEN, settings, "
                                                   "or a generated one).")] = None,
    project: ProjectOpt = None,
) -> None:
    """Serve the API: `wrangler dev` on the Cloudflare build, or the embedded runtime with --local."""
    from .serve import resolve_token, serve_local

    if not local:
        from .cloud import do_build
        from .devloop import serve_wrangler

        proj = _project(project, discover=False)
        dev = proj.settings.dev
        serve_wrangler(proj, host or dev.host, dev.port if port is None else port, token, do_build)
        return
    proj = _project(project, tolerant=True)  # a broken workflow module holds its runs, not the server
    dev = proj.settings.dev
    chosen_host = host or dev.host
    chosen_port = dev.port if port is None else port
    api_token = _guard(lambda: resolve_token(proj, token, console))
    try:
        _run(lambda: serve_local(proj, chosen_host, chosen_port, api_token, console))
    except OSError as exc:
        fail(str(exc))


cloud.register(app)
checks.register(app, runs_app)
graphs.register(app)


#: Metavars that say more than the parameter's name does.
METAVARS = {"item": "KEY=VALUE", "project": "DIR", "after": "SEQ", "idle": "SECONDS", "directory": "DIR",
            "idempotency_key": "KEY", "limit": "N"}


class _PlainArgument(TyperArgument):
    """An argument shown as its metavar alone: ``NAME`` (``[NAME]`` when optional), no ``<str>``."""

    def _usage_display_name(self) -> str:
        name = self.display_name_raw
        return name if self.required or name.startswith("[") else f"[{name}]"

    def display_type_rich(self, ctx: Any) -> str | None:
        return None


def readable_metavars(command: Any) -> Any:
    """Give every argument and valued option of the command tree a metavar in capitals (``NAME``,
    ``--url URL``, ``-i KEY=VALUE``) where typer would print its type (``{name}``, ``<str>``)."""
    for param in command.params:
        if param.metavar is None and not (isinstance(param, TyperOption) and (param.is_flag or param.count)):
            param.metavar = METAVARS.get(param.name or "", (param.name or "value").upper())
        if type(param) is TyperArgument:
            param.__class__ = _PlainArgument
    for sub in getattr(command, "commands", {}).values():
        readable_metavars(sub)
    return command


def main() -> None:
    """Console-script entry point: usage mistakes end as one ``error:`` line too (exit 2)."""
    try:
        # a raised Exit comes back as its exit code here
        code = readable_metavars(typer.main.get_command(app))(standalone_mode=False)
        sys.exit(code if isinstance(code, int) else 0)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        sys.exit(130)
    except typer.TyperException as exc:  # typer's bundled click: usage errors and friends
        ctx = getattr(exc, "ctx", None)
        if type(exc).__name__ == "NoArgsIsHelpError" and ctx is not None:
            console.print(ctx.get_help())
            sys.exit(0)
        message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
        hint = f" (see: {ctx.command_path} --help)" if ctx is not None else ""
        err_console.print(f"[bold red]error:[/bold red] {escape(message)}{hint}")
        sys.exit(int(getattr(exc, "exit_code", 2)))

"""``flareflow ai``: the AI call log (``ai log``) and the layered config document (``ai config push``,
``show``, ``clear``).

Locally they read and write the state directory (the call log in ``index.db``, the ``config:ai``
document in its key-value files); with ``--url`` they go through the API (``GET /ai/calls``,
``GET`` / ``PUT /ai/config``; ``clear`` is ``PUT {}``), which on Cloudflare means D1 and KV, and
authenticate like every ``--url`` command (`flareflow.cli.backends.open_runs`).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.markup import escape
from rich.table import Table

from ..ai.config import CONFIG_KEY, DEFAULTS, PROJECT_LAYER, check_config, layered, origins
from ..client import Client
from ..engine.errors import InvalidInput
from ..local.ai import FileKv, IndexCallLog
from ..local.index import RunIndex
from .backends import RemoteRuns, Runs, open_runs
from .common import ProjectOpt, console, fail, guard
from .common import load as load_project

T = TypeVar("T")

CONTEXT = {"help_option_names": ["-h", "--help"]}
ai_app = typer.Typer(help="AI steps: the call log and the layered config.", no_args_is_help=True,
                     rich_markup_mode=None, context_settings=CONTEXT)
config_app = typer.Typer(help="The config:ai document (between [tool.flareflow.ai] and a call's arguments).",
                         no_args_is_help=True, rich_markup_mode=None, context_settings=CONTEXT)
ai_app.add_typer(config_app, name="config")

UrlOpt = Annotated[str | None, typer.Option(
    "--url", envvar="FLAREFLOW_URL", show_default=False,
    help="Talk to a flareflow server instead of the local state ($FLAREFLOW_URL).")]
TokenOpt = Annotated[str | None, typer.Option("--token", envvar="FLAREFLOW_TOKEN", show_default=False,
                                              help="API bearer token for --url ($FLAREFLOW_TOKEN).")]


def _remote(url: str, token: str | None, project: Path | None,
            fn: Callable[[Client], Coroutine[Any, Any, T]]) -> T:
    """``fn`` against the server at ``url``, authenticated and failing as every ``--url`` command does
    (`open_runs`: the project's saved token for a loopback server; a 401 says what to pass)."""
    runs = open_runs(url, token, project)
    assert isinstance(runs, RemoteRuns)

    async def call(_: Runs) -> T:
        return await fn(runs.client)

    return runs.call(call)


@ai_app.command("log")
def ai_log(
    run: Annotated[str | None, typer.Option("--run", help="Only the calls of this run (id or unique prefix).")] = None,
    model: Annotated[str | None, typer.Option(help="Only the calls of this model.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500, help="How many, newest first.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    url: UrlOpt = None,
    token: TokenOpt = None,
    project: ProjectOpt = None,
) -> None:
    """The AI call log: every run.ai call (cache hits too), newest first."""
    if url:
        async def listed(client: Client) -> tuple[str | None, list[dict[str, Any]]]:
            chosen = run
            if chosen and _is_hex(chosen) and len(chosen) <= 64:
                page = await client.list(**_prefix_params(chosen))
                chosen = _full_id(chosen, [r["id"] for r in page["runs"]])
                if len(chosen) < 8:  # no run has it and the API takes no shorter id: none, as locally
                    return chosen, []
            params: dict[str, Any] = {"limit": limit}
            params.update({k: v for k, v in (("run", chosen), ("model", model)) if v})
            return chosen, list((await client._call("GET", "/ai/calls", params=params))["calls"])

        run, calls = _remote(url, token, project, listed)
    else:
        proj = load_project(project, discover=False)
        path = proj.state_dir / "index.db"
        calls = []
        if path.exists():
            index = guard(lambda: RunIndex(path))
            try:
                if run and _is_hex(run):
                    run = _full_id(run, [r["id"] for r in index.list(**_prefix_params(run))])
                calls = asyncio.run(_listed(IndexCallLog(index), run, model, limit))
            finally:
                index.close()
    if as_json:
        console.print_json(json.dumps(calls))
        return
    if not calls:
        filters = " and ".join(f"--{k} {v}" for k, v in (("run", run), ("model", model)) if v)
        console.print(f"no AI calls match {filters}" if filters else "no AI calls yet")
        return
    table = Table("at", "run", "step", "model", "answered by", "tokens", "ms", "error", box=None)
    for call in calls:
        tokens = "/".join("-" if call.get(k) is None else str(call[k]) for k in ("prompt_tokens", "completion_tokens"))
        table.add_row(str(call["at"])[:19].replace("T", " "), str(call["run_id"]), escape(str(call["step"])),
                      escape(str(call["model"])), "cache" if call["cached"] else str(call["provider"]), tokens,
                      f"{float(call['latency_ms']):.0f}", escape(str(call.get("error") or "")[:60]))
    console.print(table)


def _is_hex(run: str) -> bool:
    return all(c in "0123456789abcdef" for c in run)


def _prefix_params(run: str) -> dict[str, Any]:
    """The run listing that finds the runs whose id starts with ``run`` (two say it is ambiguous)."""
    return {"id_prefix": run, "limit": 2}


def _full_id(run: str, matches: list[str]) -> str:
    """``--run`` as a full id: a unique prefix is completed like ``runs show``'s (an id no run has
    any more, or no hex, is kept as given: the call log outlives a deleted run)."""
    if run in matches or not _is_hex(run):
        return run
    if len(matches) > 1:
        fail(f"run id prefix '{run}' is ambiguous: {', '.join(matches)}, ...")
    return matches[0] if matches else run


async def _listed(log: IndexCallLog, run: str | None, model: str | None, limit: int) -> list[dict[str, Any]]:
    return log.list(run, model, limit)


@config_app.command("push")
def config_push(
    file: Annotated[Path, typer.Argument(help="A JSON file: temperature, max_tokens, models, cache, cache_ttl, ...")],
    url: UrlOpt = None,
    token: TokenOpt = None,
    project: ProjectOpt = None,
) -> None:
    """Write the config:ai document that every run reads once per activation (over [tool.flareflow.ai])."""
    try:
        document = json.loads(file.read_text(encoding="utf-8"))
    except OSError as exc:
        fail(f"cannot read {file}: {exc.strerror or exc}", 2)
    except ValueError as exc:
        fail(f"{file} is not JSON: {exc}", 2)
    checked = guard(lambda: check_config(document, CONFIG_KEY))
    if url:
        _remote(url, token, project, lambda client: client._call("PUT", "/ai/config", json_body=checked))
        console.print(f"pushed {CONFIG_KEY} to {url}")
        return
    proj = load_project(project, discover=False)
    FileKv(proj.state_dir / "kv").write(CONFIG_KEY, json.dumps(checked))
    console.print(f"pushed {CONFIG_KEY} to {proj.state_dir}")



@config_app.command("show")
def config_show(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON: the document and each setting's value "
                                                           "and layer.")] = False,
    url: UrlOpt = None,
    token: TokenOpt = None,
    project: ProjectOpt = None,
) -> None:
    """The config:ai document, then every setting in effect and the layer it comes from."""
    if url:
        document = _remote(url, token, project, lambda client: client._call("GET", "/ai/config"))["config"]
        table = _project_table(project)
        where = url
    else:
        proj = load_project(project, discover=False)
        text = FileKv(proj.state_dir / "kv").read(CONFIG_KEY)
        document = guard(lambda: _parsed(text))
        table, where = proj.settings.ai, str(proj.state_dir)
    problem = None
    try:
        checked = check_config(document, CONFIG_KEY) if document else None
    except InvalidInput as exc:  # stored before a check that refuses it now: runs would fail the same way
        problem, checked = str(exc), None
    config = layered(table, checked)
    sources = origins((PROJECT_LAYER, table), (CONFIG_KEY, checked))
    if as_json:
        console.print_json(json.dumps({"document": document or None, "problem": problem, "settings": {
            key: {"value": config[key], "from": sources[key]} for key in DEFAULTS}}))
        return
    if document:
        console.print(f"{CONFIG_KEY} on {escape(where)}:")
        console.print_json(json.dumps(document))
    else:
        console.print(f"{CONFIG_KEY} on {escape(where)}: none (flareflow ai config push FILE writes one)")
    if problem:
        console.print(f"[red]not used: {escape(problem)}[/red] (runs fail on it until it is pushed again or cleared)")
    pyproject = "in pyproject.toml" if table is not None else "(none here)"
    console.print(f"\nin effect (layers: default < {PROJECT_LAYER} {pyproject} < {CONFIG_KEY} < a call's own "
                  "arguments):")
    if url:
        console.print(f"  [dim]{PROJECT_LAYER} is read here; the server uses the table it was started or "
                      "built with[/dim]")
    rows = Table("setting", "value", "from", box=None)
    for key in DEFAULTS:
        rows.add_row(key, escape(json.dumps(config[key])), sources[key])
    console.print(rows)


@config_app.command("clear")
def config_clear(
    url: UrlOpt = None,
    token: TokenOpt = None,
    project: ProjectOpt = None,
) -> None:
    """Empty the config:ai document, so [tool.flareflow.ai] and the calls' arguments decide again."""
    if url:  # PUT {}: an empty document overrides nothing, on either host
        _remote(url, token, project, lambda client: client._call("PUT", "/ai/config", json_body={}))
        console.print(f"cleared {CONFIG_KEY} on {url} (runs read it at their next activation)")
        return
    proj = load_project(project, discover=False)
    FileKv(proj.state_dir / "kv").write(CONFIG_KEY, "{}")
    console.print(f"cleared {CONFIG_KEY} in {proj.state_dir}")


def _parsed(text: str | None) -> Any:
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        raise InvalidInput(f"{CONFIG_KEY}: the stored document is not JSON; flareflow ai config clear "
                           "removes it", CONFIG_KEY) from None


def _project_table(project: Path | None) -> dict[str, Any] | None:
    """The ``[tool.flareflow.ai]`` of the project here, if there is one (``--url`` works outside one)."""
    from .project import find_root, is_root
    from .settings import load_settings

    root = find_root(project or Path.cwd())
    return guard(lambda: load_settings(root))[0].ai if is_root(root) else None

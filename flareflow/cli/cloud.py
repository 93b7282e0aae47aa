"""The commands around the Cloudflare build: ``build``, ``deploy``, ``eject`` (``serve`` is in devloop)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from .build import (
    CI_WORKFLOW,
    RESOURCES_FILE,
    build,
    copy_tree_files,
    eject_plan,
    refuse_if_ejected,
    resource_names,
    worker_name,
)
from .common import ProjectOpt, console, err_console, fail
from .common import guard as _guard
from .common import load as _project
from .project import Project
from .wrangler import WranglerError, checked, ensure_resources, missing_resources, wrangler_command

#: Files eject merges into instead of replacing (so they never count as overwritten).
MERGED = {".gitignore", CI_WORKFLOW}


def _say(message: str) -> None:
    console.print(message)


def do_build(project: Project, *, force: bool = False, quiet: bool = False) -> Path:
    """Build and report; warnings always go to stderr."""
    result = _guard(lambda: build(project, force=force))
    for warning in result.warnings:
        err_console.print(f"[yellow]warning:[/yellow] {escape(warning)}")
    if not quiet:
        if result.changed:
            console.print(f"[green]✓[/green] built {len(result.workflows)} workflow(s) into {result.path} "
                          f"({len(result.written)} file(s) written, {len(result.removed)} removed, "
                          f"{result.seconds * 1000:.0f} ms)")
        else:
            console.print(f"[green]✓[/green] build is up to date ({result.path}, {result.seconds * 1000:.0f} ms)")
    return result.path


def replay_gate(project: Project, url: str | None, token: str | None, *, force: bool) -> None:
    """Before a deploy: replay the deployed Worker's unfinished runs against the project's code and
    refuse (exit 1) when any would not replay, unless ``force``. Without a URL the check is skipped,
    with a note saying how to enable it."""
    if not url:
        console.print("[dim]note: replay check skipped: no Worker URL known (--url or tool.flareflow.worker.url) "
                      "to read the unfinished runs from[/dim]")
        return
    import asyncio

    import httpx

    from ..client import ApiError
    from .check import check_deployed, report
    from .project import discover_workflows

    _guard(lambda: discover_workflows(project))
    try:
        results = asyncio.run(check_deployed(project.registry, url, token))
    except ApiError as exc:
        fail(f"cannot check the deployed runs at {url}: server said {exc.status} {exc.code}: {exc.message} "
             "(pass --token, or --force to deploy without the check)")
    except (httpx.TransportError, OSError) as exc:
        fail(f"cannot check the deployed runs: {url} is unreachable ({exc}); pass --force to deploy without "
             "the check")
    except ValueError as exc:  # a Worker deployed by an older flareflow publishes no step positions
        fail(f"cannot check the deployed runs at {url}: {exc}; pass --force to deploy without the check")
    if report(results, f"on {url}") and not force:
        fail("deploy refused: this code would hold the runs above (pass --force to deploy anyway)")


def register(app: typer.Typer) -> None:
    """Add the Cloudflare commands to ``app``."""

    @app.command("build")
    def build_cmd(
        force: Annotated[bool, typer.Option("--force", help="Rebuild even if nothing changed.")] = False,
        quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only warnings and errors.")] = False,
        project: ProjectOpt = None,
    ) -> None:
        """Generate the Cloudflare Python Workers project in .flareflow/build/ (what wrangler's [build] runs)."""
        do_build(_project(project, discover=False), force=force, quiet=quiet)

    @app.command()
    def deploy(
        env: Annotated[str | None, typer.Option("--env", help="wrangler environment.")] = None,
        dry_run: Annotated[bool, typer.Option("--dry-run", help="Validate; list what would be uploaded and "
                                                                "which resources created. Creates nothing, "
                                                                "needs no login.")] = False,
        url: Annotated[str | None, typer.Option("--url", envvar="FLAREFLOW_DEPLOY_URL", show_default=False,
                                                help="The deployed Worker's URL, whose unfinished runs are "
                                                     "replayed against the new code first (default: "
                                                     "tool.flareflow.worker.url; $FLAREFLOW_DEPLOY_URL).")] = None,
        token: Annotated[str | None, typer.Option("--token", envvar="FLAREFLOW_TOKEN", show_default=False,
                                                  help="The deployed Worker's API token ($FLAREFLOW_TOKEN).")]
        = None,
        force: Annotated[bool, typer.Option("--force", help="Deploy even if unfinished runs would not replay "
                                                            "on the new code (they are held until it matches).")]
        = False,
        project: ProjectOpt = None,
    ) -> None:
        """Check the deployed runs replay, build, create missing resources, apply D1 migrations, deploy."""
        proj = _project(project, discover=False)
        _guard(lambda: refuse_if_ejected(proj, "deploy"))
        replay_gate(proj, url or proj.settings.worker.url, token, force=force)
        out = do_build(proj)
        env_args = ["--env", env] if env else []
        try:
            wrangler = wrangler_command(out, say=_say)
            if dry_run:  # wrangler validates and bundles offline; nothing asks Cloudflare's API
                with tempfile.TemporaryDirectory(prefix="flareflow-dry-run-") as outdir:
                    console.print(checked(wrangler, ["deploy", "--dry-run", "--outdir", outdir, *env_args],
                                          out).strip())
                    files = sorted(p.relative_to(outdir).as_posix() for p in Path(outdir).rglob("*")
                                   if p.is_file())
                console.print(f"[green]✓[/green] dry run: {len(files)} file(s) would be uploaded:")
                for name in files:
                    console.print(f"  {name}")
                missing = _guard(lambda: missing_resources(proj))
                if missing:
                    console.print(f"would create {len(missing)} resource(s) not yet recorded in {RESOURCES_FILE} "
                                  "(deploy first looks for each by name and records one that already exists):")
                    for item in missing:
                        console.print(f"  + {item}")
                else:
                    console.print(f"would create no resources: all are recorded in {RESOURCES_FILE}")
                return
            created = ensure_resources(proj, wrangler, out, say=_say)
            if not created:
                console.print("all resources exist; nothing created")
            out = do_build(proj, quiet=True)
            used = resource_names(proj)
            if "d1" in used:
                checked(wrangler, ["d1", "migrations", "apply", used["d1"]["name"], "--remote", *env_args], out)
            checked(wrangler, ["deploy", *env_args], out, echo=True)  # its progress shows as it goes
            console.print(f"[green]✓[/green] deployed {worker_name(proj)}; set the API token once with: "
                          f"npx wrangler secret put FLAREFLOW_TOKEN (in {out})")
        except KeyboardInterrupt:
            raise typer.Exit(130) from None
        except WranglerError as exc:
            fail(str(exc))

    @app.command()
    def eject(
        force: Annotated[bool, typer.Option("--force", help="Overwrite files that already exist.")] = False,
        project: ProjectOpt = None,
    ) -> None:
        """Write a standalone wrangler project into the project root (no flareflow CLI needed afterwards)."""
        proj = _project(project, discover=False)
        files = _guard(lambda: eject_plan(proj))
        existing = sorted(rel for rel in files if rel not in MERGED and (proj.root / rel).exists()
                          and (proj.root / rel).read_bytes() != files[rel])
        if existing and not force:
            shown = ", ".join(existing[:8]) + (f" and {len(existing) - 8} more" if len(existing) > 8 else "")
            fail(f"eject would overwrite {len(existing)} existing file(s): {shown}; nothing was written "
                 "(pass --force to overwrite)")
        copy_tree_files(files, proj.root)
        if CI_WORKFLOW in files:
            console.print(f"  {CI_WORKFLOW} now deploys with npm run deploy (it ran flareflow deploy)")
        console.print(f"[green]✓[/green] ejected into {proj.root}: wrangler.toml, src/entry.py, src/ "
                      f"({len(files)} files in all); see DEPLOY.md. Next: npm install, "
                      "cp .dev.vars.example .dev.vars, npm run dev")


"""``flareflow serve``: the dev loop on ``wrangler dev``, with everything the Worker needs prepared.

A deployed Worker gets its token from a secret and its D1 index from ``flareflow deploy``'s remote
migrations. Under ``wrangler dev`` nothing does that, so this command does, every time it starts:

- **secrets**: ``.flareflow/build/.dev.vars`` (mode 0600) with ``FLAREFLOW_TOKEN`` — resolved exactly
  like ``serve --local`` (`choose_token`) — and each declared ``[tool.flareflow.worker].secrets``
  from the environment or the project root's ``.dev.vars``. wrangler dev reads it; it is never
  written into ``wrangler.toml`` and the token is never printed again.
- **the index**: ``wrangler d1 migrations apply INDEX --local`` in the build directory (the same files
  ``deploy`` applies with ``--remote``), into wrangler's local state ``.flareflow/build/.wrangler/``.
- **one banner** once wrangler says it is ready: the URL, where the token is, a command to try, and
  how to fire a cron (wrangler dev never fires them by itself).

The generated ``wrangler.toml`` has no ``[build]`` step: wrangler 4 runs a custom build once at start
and again when its watcher is ready (reporting ``../../workflows changed``), and it would import
the workflows in a fresh interpreter on every change. Instead this process watches the project
(the build's own fingerprint, polled), rebuilds in-process when it changes, and wrangler dev reloads
from the rewritten ``src/``. A rebuild that fails prints its error and writes nothing, so the last
good build keeps serving; one that brings a new migration file applies it before going on.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote_plus

import typer
from rich.markup import escape

from .build import (
    BUILD_DIR,
    MANIFEST,
    BuildError,
    build,
    collect_crons,
    fingerprint,
    refuse_if_ejected,
    resource_names,
)
from .common import console, err_console, fail
from .devvars import DEV_VARS, DevVarsError, read_dev_vars, render_dev_vars, write_private
from .errors import UserError
from .project import Project, discover_workflows
from .serve import TOKEN_ENV, TokenChoice, bind, choose_token, console_link
from .settings import load_settings
from .wrangler import WranglerError, explain_dev_failure, failure_message, run, wrangler_command

#: The D1 binding the index migrations go to (``migrations_dir`` of that binding in wrangler.toml).
INDEX_BINDING = "INDEX"
MIGRATIONS_DIR = "migrations/index"
POLL_SECONDS = 0.5
#: wrangler dev's "Ready on http://HOST:PORT" line (the URL it really listens on).
READY = re.compile(r"Ready on (https?://[^\s)]+)")


@dataclass
class DevState:
    """What the dev loop has prepared; the watcher updates it as rebuilds happen."""

    project: Project
    build_dir: Path
    wrangler: list[str]
    applied: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)
    token: str = ""


def dev_vars_values(project: Project, token: str, warn: Callable[[str], None]) -> dict[str, str]:
    """FLAREFLOW_TOKEN and every declared secret that has a value (environment first, then the root
    ``.dev.vars``); a missing declared secret, or a root variable that is not declared, is one warning."""
    root_file = project.root / DEV_VARS
    from_file = read_dev_vars(root_file, warn)
    values = {TOKEN_ENV: token}
    if TOKEN_ENV in from_file and from_file[TOKEN_ENV] != token:
        warn(f"{root_file}: {TOKEN_ENV} there is not used; the API token comes from --token, ${TOKEN_ENV}, "
             "[tool.flareflow.dev].token or .flareflow/state/token (the same as for serve --local)")
    declared = [name for name in project.settings.worker.secrets if name != TOKEN_ENV]
    for name in declared:
        value = os.environ.get(name, from_file.get(name))
        if value is None:
            warn(f"secret {name} (tool.flareflow.worker.secrets) has no value: set ${name} or add it to "
                 f"{root_file}; the Worker runs without it")
            continue
        values[name] = value
    for name in from_file:
        if name not in declared and name != TOKEN_ENV:
            warn(f"{root_file}: {name} is not declared in tool.flareflow.worker.secrets; not passed to the Worker")
    return values


def write_build_dev_vars(project: Project, build_dir: Path, token: str, warn: Callable[[str], None]) -> Path:
    """``.dev.vars`` of the build directory (0600), rewritten on every start."""
    values = dev_vars_values(project, token, warn)
    text = render_dev_vars(values, "Written by `flareflow serve` on every start (wrangler dev reads it); "
                                   "do not edit.\nThe token and secrets come from flareflow serve's "
                                   "--token / environment / project .dev.vars.")
    path = build_dir / DEV_VARS
    write_private(path, text)
    return path


def migration_files(build_dir: Path) -> set[str]:
    folder = build_dir / MIGRATIONS_DIR
    return {p.name for p in folder.glob("*.sql")} if folder.is_dir() else set()


def apply_local_migrations(state: DevState) -> list[str]:
    """``wrangler d1 migrations apply INDEX --local`` when the build has index migrations not yet
    applied by this process; returns the files it applied. wrangler keeps its own record
    (``d1_migrations``), so files applied by an earlier start are skipped by wrangler itself."""
    with state.lock:
        files = migration_files(state.build_dir)
        new = sorted(files - state.applied)
        if not new:
            return []
        args = ["d1", "migrations", "apply", INDEX_BINDING, "--local"]
        proc = run([*state.wrangler, *args], state.build_dir)
        if proc.returncode != 0:
            raise WranglerError(failure_message(f"applying the D1 index migrations to wrangler's local state "
                                                f"(`wrangler {' '.join(args)}`)", proc.stdout, proc.stderr,
                                                proc.returncode))
        state.applied |= files
        if "No migrations to apply" in proc.stdout + proc.stderr:
            return []  # an earlier start applied them: wrangler keeps its own record
        return new


def banner(project: Project, url: str, choice: TokenChoice, dev_vars: Path, workflows: list[str]) -> list[str]:
    """The start banner: where to reach the Worker, where the token is, what to try, how to fire a cron."""
    name = "hello" if "hello" in workflows else (sorted(workflows)[0] if workflows else "NAME")
    try_line = (f"flareflow run {name} --url {url} --token {choice.shell_reference(Path.cwd())}")
    lines = [f"[bold]flareflow[/bold] Worker on wrangler dev: [cyan]{url}[/cyan]  "
             f"({len(workflows)} workflows, build in {BUILD_DIR})",
             f"  console: {escape(console_link(url, choice.value))}",
             f"  token: {choice.where()}; handed to the Worker in {dev_vars} (mode 0600)",
             f"  try:   {try_line}"]
    crons = collect_crons(project)
    if crons:
        lines.append(f"  cron:  wrangler dev does not fire crons by itself; fire one with: "
                     f"curl \"{url}/cdn-cgi/handler/scheduled?cron={quote_plus(crons[0], safe='*')}\"")
    lines.append("  Ctrl-C stops; edits to the workflows rebuild and reload")
    return lines


def _reload_settings(state: DevState, warn: Callable[[str], None]) -> bool:
    """Re-read ``pyproject.toml`` when it changed, so a rebuild uses the settings on disk; False (and
    one error line) while it does not load."""
    try:
        settings, pyproject = load_settings(state.project.root)
    except UserError as exc:
        err_console.print(f"[bold red]error:[/bold red] {escape(str(exc))}; still serving the last good build")
        return False
    changed_secrets = settings.worker.secrets != state.project.settings.worker.secrets
    state.project.settings, state.project.pyproject = settings, pyproject
    if changed_secrets and state.token:
        write_build_dev_vars(state.project, state.build_dir, state.token, warn)
        warn("tool.flareflow.worker.secrets changed: .flareflow/build/.dev.vars rewritten; restart "
             "flareflow serve if the Worker does not see them")
    return True


def _watch(state: DevState, stop: threading.Event, baseline: str | None) -> None:
    """Rebuild when anything the build reads changes; apply new index migrations; never crash.

    ``baseline`` is the fingerprint the start-up build was made from, so an edit made while serve
    was still preparing (token, migrations, npm install) is built on the first poll."""

    def warn(message: str) -> None:
        err_console.print(f"[yellow]warning:[/yellow] {escape(message)}")

    pyproject = state.project.root / "pyproject.toml"
    last_pyproject = _stat(pyproject)
    last = baseline if baseline is not None else _fingerprint(state.project)
    while not stop.wait(POLL_SECONDS):
        seen_pyproject = _stat(pyproject)
        if seen_pyproject != last_pyproject:
            last_pyproject = seen_pyproject
            if not _reload_settings(state, warn):
                continue
        current = _fingerprint(state.project)
        if current is None or current == last:
            continue
        last = current
        try:
            result = build(state.project)
        except UserError as exc:
            err_console.print(f"[bold red]error:[/bold red] rebuild failed: {escape(str(exc))}; "
                              "still serving the last good build")
            continue
        except Exception as exc:  # a workflow module may raise anything at import; keep serving
            err_console.print(f"[bold red]error:[/bold red] rebuild failed: {type(exc).__name__}: "
                              f"{escape(str(exc))}; still serving the last good build")
            continue
        for message in result.warnings:
            warn(message)
        if result.written or result.removed:
            console.print(f"[green]✓[/green] rebuilt ({len(result.written)} file(s) written, "
                          f"{len(result.removed)} removed, {result.seconds * 1000:.0f} ms); wrangler dev reloads")
        elif result.changed:
            console.print("[green]✓[/green] rebuilt: the build is the same as before")
        try:
            applied = apply_local_migrations(state)
        except UserError as exc:
            err_console.print(f"[bold red]error:[/bold red] {escape(str(exc))}")
            continue
        if applied:
            console.print(f"[green]✓[/green] applied index migration(s) {', '.join(applied)} to the local D1")


def _stat(path: Path) -> tuple[int, int] | None:
    try:
        info = path.stat()
    except OSError:
        return None
    return info.st_size, info.st_mtime_ns


def _fingerprint(project: Project) -> str | None:
    try:
        return fingerprint(project, eject=False)
    except (OSError, BuildError):  # a file vanished mid-scan or a setting points nowhere: next poll
        return None


def _stop_on_sigterm() -> threading.Event:
    """SIGTERM (a process manager, a test host) stops like Ctrl-C: wrangler dev is ended, not orphaned."""
    terminated = threading.Event()

    def handler(signum: int, frame: object) -> None:
        terminated.set()
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)
    return terminated


def _check_port(host: str, port: int) -> None:
    """A busy port is one clear line before anything is built or migrated (wrangler's own error comes
    late and as a stack)."""
    if port == 0:
        return
    try:
        bind(host, port).close()
    except OSError as exc:
        raise UserError(f"{exc}; pass --port N or set [tool.flareflow.dev].port") from None


def _baseline(build_dir: Path) -> str | None:
    """The fingerprint the last build was made from (its record), or None."""
    try:
        record = json.loads((build_dir / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    value = record.get("fingerprint") if isinstance(record, dict) else None
    return str(value) if value else None


def serve_wrangler(project: Project, host: str, port: int, explicit_token: str | None,
                   build_and_report: Callable[[Project], Path]) -> None:
    """Build, prepare ``.dev.vars`` and the local D1, then run ``wrangler dev`` and watch the project."""
    terminated = _stop_on_sigterm()  # from the start: a SIGTERM during npm install or migrations too
    try:
        refuse_if_ejected(project, "serve")
        _check_port(host, port)
    except UserError as exc:
        fail(str(exc))
    out = build_and_report(project)
    baseline = _baseline(out)

    def warn(message: str) -> None:
        err_console.print(f"[yellow]warning:[/yellow] {escape(message)}")

    try:
        if not project.registry.names():  # a no-op build imported nothing; the banner needs the workflows
            discover_workflows(project)
        wrangler = wrangler_command(out, say=lambda message: console.print(message))
        choice = choose_token(project, explicit_token, console)
        dev_vars = write_build_dev_vars(project, out, choice.value, warn)
        state = DevState(project, out, wrangler, token=choice.value)
        if "d1" in resource_names(project):
            applied = apply_local_migrations(state)
            where = f"the local D1 ({BUILD_DIR}/.wrangler)"
            console.print(f"[green]✓[/green] applied index migration(s) {', '.join(applied)} to {where}" if applied
                          else f"[green]✓[/green] index migrations: {where} is up to date")
    except (UserError, DevVarsError) as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        raise typer.Exit(0 if terminated.is_set() else 130) from None
    workflows = project.registry.names()
    url = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
    cmd = [*wrangler, "dev", "--port", str(port), "--ip", host]
    proc = subprocess.Popen(cmd, cwd=out, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            encoding="utf-8", errors="replace")
    stop = threading.Event()
    watcher = threading.Thread(target=_watch, args=(state, stop, baseline), name="flareflow-watch", daemon=True)
    watcher.start()
    seen: list[str] = []
    shown = False
    code: int | None = None
    assert proc.stdout is not None
    try:
        for line in proc.stdout:
            sys.stdout.write(line)
            sys.stdout.flush()
            seen.append(line)
            del seen[:-200]
            ready = READY.search(line)
            if not shown and ready:
                shown = True  # wrangler's own URL: the real port, even when asked for port 0
                url = ready.group(1).rstrip("/")
                for text in banner(project, url, choice, dev_vars.relative_to(project.root), workflows):
                    console.print(text)
        code = proc.wait()
    except KeyboardInterrupt:
        raise typer.Exit(0 if terminated.is_set() else 130) from None
    finally:
        stop.set()
        if proc.poll() is None:  # whatever ended the loop, wrangler dev (and workerd) end with serve
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
    if code != 0:
        fail(explain_dev_failure("".join(seen)))

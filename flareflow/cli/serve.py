"""``flareflow serve --local``: the embedded runtime behind the HTTP / WebSocket / SSE API."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shlex
import socket
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from rich.console import Console

from .. import __version__
from .project import Project

TOKEN_ENV = "FLAREFLOW_TOKEN"
LISTEN_BACKLOG = 2048
URL_ENV = "FLAREFLOW_URL"


def token_path(project: Project) -> Path:
    """Where a generated token is kept (inside the state directory, owner-readable only)."""
    return project.state_dir / "token"


@dataclass(frozen=True)
class TokenChoice:
    """The API token and how a user refers to it in a shell without it being printed again."""

    value: str
    source: str  # "option", "environment", "settings", "saved" or "generated"
    path: Path | None = None  # the file it is saved in (saved / generated)

    def shell_reference(self, cwd: Path | None = None) -> str:
        """What to put after ``--token`` in a command line to try: the saved file or the variable."""
        if self.path is not None:
            shown = self.path
            if cwd is not None:
                with contextlib.suppress(ValueError):
                    shown = self.path.relative_to(cwd.resolve())
            return f'"$(cat {shlex.quote(str(shown))})"'
        if self.source == "environment":
            return f'"${TOKEN_ENV}"'
        return shlex.quote(self.value)  # the user typed it (--token) or wrote it (settings)

    def where(self) -> str:
        """One phrase saying where the token lives."""
        if self.path is not None:
            return f"saved in {self.path}"
        return {"option": "the --token option", "environment": f"${TOKEN_ENV}",
                "settings": "[tool.flareflow.dev].token"}.get(self.source, self.source)


def choose_token(project: Project, explicit: str | None, console: Console) -> TokenChoice:
    """--token, then $FLAREFLOW_TOKEN, then settings, then the saved one; else generate, save, print once.

    Both ``serve --local`` and ``serve`` (which hands it to the Worker in ``.dev.vars``) use this, so
    a client's token works against either server of one project.
    """
    for source, candidate in (("option", explicit), ("environment", os.environ.get(TOKEN_ENV)),
                              ("settings", project.settings.dev.token)):
        if candidate:
            return TokenChoice(candidate, source)
    path = token_path(project)
    if path.exists():
        saved = path.read_text(encoding="utf-8").strip()
        if saved:
            return TokenChoice(saved, "saved", path)
    token = secrets.token_urlsafe(32)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(token + "\n")
    console.print(f"[bold]generated API token[/bold] (shown once, saved in {path}):\n  {token}")
    return TokenChoice(token, "generated", path)


def console_link(base: str, token: str) -> str:
    """The web console's ready link: the token rides in the fragment, which a browser never sends, so
    it stays out of every server's and proxy's logs; the page keeps it and drops it from the address."""
    return f"{base.rstrip('/')}/#token={quote(token, safe='')}"


def resolve_token(project: Project, explicit: str | None, console: Console) -> str:
    """The token `choose_token` picks; says where a saved one is."""
    choice = choose_token(project, explicit, console)
    if choice.source == "saved":
        console.print(f"token: {choice.where()} (or set {TOKEN_ENV})")
    return choice.value


def bind(host: str, port: int) -> socket.socket:
    """Bind before starting uvicorn, so a busy port is one clear error instead of a log line."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # so asyncio sets TCP_NODELAY
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise OSError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.listen(LISTEN_BACKLOG)
    sock.setblocking(False)
    return sock


async def serve_local(project: Project, host: str, port: int, token: str, console: Console) -> None:
    """Run the local server until interrupted; it fires the workflows' cron schedules by itself."""
    import uvicorn
    from uvicorn.protocols.http.auto import AutoHTTPProtocol

    from ..local.backend import LocalBackend
    from ..local.guard import (
        RepeatFilter,
        budget,
        guarded_protocol,
        install_log_limits,
        raise_descriptor_limit,
    )
    from ..local.scheduler import LocalScheduler, scheduled_url
    from ..local.server import create_app
    from ..worker.router import Router
    from .backends import local_runtime
    from .codewatch import say_code_change, watch_code

    raise_descriptor_limit()  # before the runtime sizes its run budget from it
    sock = bind(host, port)
    runtime = local_runtime(project)
    backend = LocalBackend(runtime)
    router = Router(backend, token=token, max_body=project.settings.dev.max_body, version=__version__)
    scheduler = LocalScheduler(runtime)

    code_watch: list[asyncio.Future[None]] = []

    async def startup() -> None:
        runtime.start()
        resumed = await runtime.recover()
        if resumed:
            console.print(f"resumed {len(resumed)} unfinished run(s)")
        scheduler.start()  # its first tick is the catch-up of what came due while the server was down
        # held runs (their workflow missing or diverging) continue once the workflow files are fixed
        code_watch.append(asyncio.ensure_future(watch_code(project, runtime, say_code_change)))

    async def shutdown() -> None:
        for task in code_watch:
            task.cancel()
        await scheduler.close()
        await runtime.close()

    dev = project.settings.dev
    app = create_app(router, backend, scheduler=scheduler, on_startup=startup, on_shutdown=shutdown,
                     body_timeout=dev.body_timeout)
    real_port = sock.getsockname()[1]
    base = f"http://{host}:{real_port}"
    console.print(f"[bold]flareflow[/bold] local server on [cyan]{base}[/cyan]  "
                  f"({len(project.registry)} workflows, state in {project.state_dir})")
    console.print(f"  console: {console_link(base, token)}", markup=False, highlight=False, soft_wrap=True)
    console.print("  API: /health /workflows /runs /runs/{id}/events (SSE) /runs/{id}/ws  ·  "
                  "OpenAPI: /openapi.json  ·  Ctrl-C stops")
    if project.settings.ai is not None:
        console.print("  AI: POST /api/workflow {\"prompt\"}  ·  GET /ai/calls  ·  GET/PUT /ai/config",
                      markup=False, highlight=False)
    schedules = scheduler.schedules
    if schedules:
        saved = token_path(project)
        if saved.exists() and saved.read_text(encoding="utf-8").strip() == token:
            choice = TokenChoice(token, "saved", saved)
        else:
            choice = TokenChoice(token, "environment" if os.environ.get(TOKEN_ENV) == token else "option")
        listed = ", ".join(f"{name} ({schedule})" for name, schedule in schedules)
        console.print(f"  cron:  fired here at each due minute (UTC), as Cloudflare does: {listed}",
                      markup=False, highlight=False, soft_wrap=True)
        console.print(f"  fire one by hand: curl --oauth2-bearer {choice.shell_reference(Path.cwd())} "
                      f'"{scheduled_url(base, schedules[0][1])}"', markup=False, highlight=False, soft_wrap=True)
    shares = budget(dev.max_connections)
    if shares.cap < dev.max_connections:
        console.print(f"  connections: at most {shares.cap} at once (their share of the descriptor limit; raise it "
                      "with ulimit -n)", markup=False, highlight=False)
    # uvicorn has no header timeout and caps connections only after their headers came: the guarded
    # protocol does both, before a connection reaches the application (flareflow.local.guard)
    protocol = guarded_protocol(AutoHTTPProtocol, header_timeout=dev.header_timeout, cap=shares.cap,
                                max_lingering=shares.lingering)
    # no permessage-deflate: compressing every frame once per client costs more than the bytes it saves
    # on loopback and LANs (36% of server CPU in the fanout benchmark)
    config = uvicorn.Config(app, http=protocol, backlog=shares.backlog, log_level="warning", lifespan="on",
                            timeout_graceful_shutdown=3, ws_per_message_deflate=False)
    repeats = RepeatFilter()
    install_log_limits(repeats)  # after uvicorn.Config, which configures uvicorn's loggers
    server = uvicorn.Server(config)

    async def widen_backlog() -> None:
        # asyncio accepts `backlog` connections per turn and uvicorn listens with that backlog too; the
        # kernel may queue more (queued connections use no descriptor of ours), so connects under a
        # burst wait in the queue instead of timing out their SYNs
        while not server.started:
            await asyncio.sleep(0.05)
        sock.listen(LISTEN_BACKLOG)

    widen = asyncio.ensure_future(widen_backlog())
    try:
        await server.serve(sockets=[sock])
    finally:
        widen.cancel()
        repeats.flush()

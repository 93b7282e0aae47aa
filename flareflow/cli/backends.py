"""Where the CLI's runs are: the local state directory or a server (``--url``), behind one interface.

Every command that starts, inspects or controls runs is written once against `Runs`; `open_runs`
picks `LocalRuns` (the embedded runtime over ``.flareflow/state``) or `RemoteRuns` (the HTTP API
through `flareflow.client.Client`). ``resume`` is local only (`LocalRuns.resume`): a server continues
its own runs. Each backend maps its own failures to the CLI's one-line errors:
locally a `UserError` / `FlareflowError` (exit 1) or `UsageError` (exit 2); remotely an API error or an
unreachable server (exit 1).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

import typer
from rich.markup import escape

from ..engine.errors import InvalidInput, RunNotFound, StorageError
from ..engine.status import TERMINAL, RunStatus
from ..local.ai import local_ai_host
from ..local.runtime import LocalRuntime
from ..migrations.runs_index import listed, prune_filter
from .codewatch import say_code_change, watching_code
from .common import UsageError, console, err_console, guard, run_async
from .common import load as load_project
from .errors import UserError
from .project import Project
from .watch import Watcher
from .worker import WorkerFiles
from .worker import detach as detach_run

if TYPE_CHECKING:
    from ..client import Client

T = TypeVar("T")

#: Digits in a run id (`flareflow.engine.ids`); anything shorter is a prefix.
FULL_ID_LENGTH = 21

#: ``runs prune`` locally: no page limit (the embedded runtime has no request budget).
PRUNE_ALL = 1_000_000_000


def local_runtime(project: Project) -> LocalRuntime:
    """The embedded runtime of ``project`` with its settings (the one place the CLI makes one)."""
    runtime = LocalRuntime(project.state_dir, project.registry, sync=project.settings.local.sync,
                           payload_threshold=project.settings.worker.payload_threshold,
                           step_threads=project.settings.local.step_threads)
    runtime.ai = local_ai_host(project.state_dir, project.settings.ai, runtime.index, runtime.clock.now,
                               stream=runtime.live.token)
    return runtime


class Runs:
    """The runs a command works on. Use `call` to run a coroutine against them with their error mapping."""

    def call(self, fn: Callable[[Runs], Coroutine[Any, Any, T]]) -> T:  # pragma: no cover - abstract
        raise NotImplementedError

    def run(self, name: str, value: Any, *, json_mode: bool, idempotency_key: str | None, detach: bool) -> int:
        """Start a run and stream it live, answering its questions at this terminal (``detach``: print
        its id and leave it running); the exit code, 0 when the run completed."""
        raise NotImplementedError  # pragma: no cover

    async def list_runs(self, workflow: str | None, status: str | None, limit: int) -> list[dict[str, Any]]:
        raise NotImplementedError  # pragma: no cover

    async def describe(self, run_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """The run (as ``GET /runs/{id}`` shows it) and its events."""
        raise NotImplementedError  # pragma: no cover

    def events(self, run_id: str, after: int, follow: bool) -> AsyncIterator[dict[str, Any]]:
        raise NotImplementedError  # pragma: no cover

    async def send_event(self, run_id: str, event_type: str, payload: Any, quiet: bool) -> str:
        """Deliver; returns the run id as the backend knows it."""
        raise NotImplementedError  # pragma: no cover

    async def awaited_events(self, run_id: str) -> list[str]:
        """The event types the run waits for right now (none: it waits for no event)."""
        raise NotImplementedError  # pragma: no cover

    async def answer(self, run_id: str, value: Any, step: str | None, quiet: bool) -> tuple[str, str | None]:
        """Answer; returns the run id and, when the backend says, the question's step."""
        raise NotImplementedError  # pragma: no cover

    async def cancel(self, run_id: str, reason: str) -> str:
        raise NotImplementedError  # pragma: no cover

    async def control(self, run_id: str, op: str, reason: str | None) -> tuple[str, str, bool]:
        """``pause`` or ``cancel`` a run wherever it executes: (run id, its status now, whether the
        command was carried out; False: the process executing it has not taken it in yet)."""
        raise NotImplementedError  # pragma: no cover

    def proceed(self, run_id: str, op: str, *, from_step: str | None, json_mode: bool, detach: bool) -> int:
        """``resume`` (a paused run), ``retry`` (a failed one) or ``restart`` (a new run from
        ``from_step``), then follow the run until it finishes (``detach``: print its id and leave it
        to whoever executes it); the exit code, 0 when it completed (or was left running)."""
        raise NotImplementedError  # pragma: no cover

    async def delete(self, run_id: str) -> str:
        """Delete a finished run; returns its id."""
        raise NotImplementedError  # pragma: no cover

    async def prune(self, older_than: str, statuses: list[str] | None, dry_run: bool) -> list[str]:
        """Delete (``dry_run``: list) the finished runs older than ``older_than``, every one."""
        raise NotImplementedError  # pragma: no cover


class LocalRuns(Runs):
    """The embedded runtime over the project's state directory; run ids may be unique prefixes."""

    def __init__(self, project: Project) -> None:
        self.project = project
        self._rt: LocalRuntime | None = None

    @property
    def rt(self) -> LocalRuntime:
        assert self._rt is not None, "use LocalRuns.call"
        return self._rt

    def call(self, fn: Callable[[Runs], Coroutine[Any, Any, T]]) -> T:
        async def opened() -> T:
            async with local_runtime(self.project) as rt:
                self._rt = rt
                try:
                    return await fn(self)
                finally:
                    self._rt = None

        return run_async(opened)

    def run(self, name: str, value: Any, *, json_mode: bool, idempotency_key: str | None, detach: bool) -> int:
        """Here, or (``detach``) by the project's background worker (`flareflow.cli.worker`); Ctrl-C
        leaves it resumable."""
        guard(lambda: self.project.registry.get(name))

        async def go(runs: Runs) -> int:
            rt = self.rt
            obj = await rt.start_run(name, value, idempotency_key=idempotency_key, activate=False)
            run_id = obj.run_id
            if detach:
                await rt.close()  # the run's lock is released: the worker takes it
                detach_run(self.project, run_id)
                console.print(run_id)
                return 0
            watcher = Watcher(rt, run_id, console=console, json_mode=json_mode)
            try:
                final = await watcher.run()
            except asyncio.CancelledError:  # the first Ctrl-C (asyncio cancels the main task)
                raise KeyboardInterrupt from None
            return 0 if final and final["type"] == "run.completed" else 1

        with detached_note():
            return self.call(go)

    def resume(self, run_id: str | None, *, json_mode: bool, quiet: bool) -> int:
        """Continue one unfinished run or all of them until they finish, streaming each (unless
        ``quiet``) and asking their questions here; the exit code, 0 when every one completed.

        A run another process executes (the background worker) is followed instead: its events
        are shown as it commits them and answers typed here go to its inbox."""

        async def go(runs: Runs) -> int:
            rt = self.rt
            if run_id is not None:
                full = rt.resolve(run_id)
                if rt.get(full).status in TERMINAL:
                    console.print(f"run {full} already {rt.get(full).status}")
                    return 0
                resumed = await rt.recover([full])
                if not resumed and quiet:
                    raise InvalidInput(f"run {full} is being executed by another flareflow process")
                if not resumed:
                    err_console.print(f"[dim]run {full} is executed by {self._executor()}; following it "
                                      "here (answers go to its inbox)[/dim]")
                if quiet:
                    obj = await rt.until_finished(full)
                    return 0 if obj.status == RunStatus.COMPLETED else 1
                watcher = Watcher(rt, full, console=console, json_mode=json_mode)
                final = await watcher.run(start=False)
                return 0 if final and final["type"] == "run.completed" else 1
            resumed = await rt.recover()
            elsewhere = self._detached_elsewhere(resumed)
            if not quiet and elsewhere:
                err_console.print(f"[dim]{len(elsewhere)} detached run(s) executed by {self._executor()}: "
                                  f"{', '.join(elsewhere)} (follow one with: flareflow resume ID)[/dim]")
            if not resumed:
                if not quiet:
                    console.print("nothing to resume")
                return 0
            if quiet:
                results = [await rt.until_finished(r) for r in resumed]
                return 0 if all(o.status == RunStatus.COMPLETED for o in results) else 1
            console.print(f"resuming {len(resumed)} run(s): " + ", ".join(resumed))
            several = len(resumed) > 1
            # several runs share the terminal: each line says whose (workflow and the id's last digits)
            watchers = [Watcher(rt, r, console=console, json_mode=json_mode, spinner=not several,
                                label=f"[cyan]{escape(rt.get(r).info['workflow'])} …{r[-4:]}[/cyan] "
                                if several else "") for r in resumed]
            finals = await asyncio.gather(*(w.run(start=False) for w in watchers))
            if several and not json_mode:
                for r in resumed:
                    console.print(f"  {r}  {rt.get(r).info['workflow']}  {rt.get(r).status}")
            return 0 if all(f and f["type"] == "run.completed" for f in finals) else 1

        # a run held for its code continues here once the workflow files are fixed
        return self.call(watching_code(self.project, lambda: self.rt, say_code_change, go))

    def _executor(self) -> str:
        """Who executes the runs this process cannot take: the background worker, when one is alive."""
        pid = WorkerFiles(self.project.state_dir).running_pid()
        if pid is None:
            return "another flareflow process"
        return "the background worker" + (f" (pid {pid})" if pid > 0 else "")

    def _detached_elsewhere(self, resumed: list[str]) -> list[str]:
        """Detached runs still unfinished that another process (the worker) executes."""
        rt = self.rt
        out = []
        for run_id in WorkerFiles(self.project.state_dir).ids():
            if run_id in resumed or rt.owns(run_id):
                continue
            with contextlib.suppress(RunNotFound, StorageError):
                if rt.get(run_id).status not in TERMINAL:
                    out.append(run_id)
        return out

    async def list_runs(self, workflow: str | None, status: str | None, limit: int) -> list[dict[str, Any]]:
        self.rt.reconcile()
        return [listed(r) for r in self.rt.index.list(workflow=workflow, status=status, limit=limit)]

    async def describe(self, run_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        obj = self.rt.get(run_id)
        return obj.describe(), obj.events()

    async def events(self, run_id: str, after: int, follow: bool) -> AsyncIterator[dict[str, Any]]:
        """The stored events; with ``follow``, then the new ones as whichever process executes the
        run commits them (its database read every `Watcher.POLL_SECONDS`), until it finishes."""
        full = self.rt.resolve(run_id)
        while True:
            if not self.rt.owns(full) and not self.rt.open_runs.busy(full):
                self.rt.evict(full, counted=False)  # another process writes it: its status from SQL
            obj = self.rt.get(full)
            finished = obj.status in TERMINAL  # read before the events: none can follow it unseen
            for event in obj.events(after=after):  # a retried run has events after its run.failed
                after = event["seq"]
                yield event
            if not follow or finished:
                return
            await asyncio.sleep(Watcher.POLL_SECONDS)

    async def awaited_events(self, run_id: str) -> list[str]:
        return _event_types(self.rt.get(run_id).open_waits())

    async def send_event(self, run_id: str, event_type: str, payload: Any, quiet: bool) -> str:
        full = self.rt.resolve(run_id)
        await self._deliver_and_follow(full, lambda: self.rt.send_event(full, event_type, payload), quiet)
        return full

    async def answer(self, run_id: str, value: Any, step: str | None, quiet: bool) -> tuple[str, str | None]:
        full = self.rt.resolve(run_id)
        await self._deliver_and_follow(full, lambda: self.rt.answer(full, value, step), quiet)
        return full, None

    async def cancel(self, run_id: str, reason: str) -> str:
        full, _, applied = await self.control(run_id, "cancel", reason)
        if not applied:
            raise InvalidInput(f"run {full} is executed by {self._executor()}, which has not taken the cancel "
                               "in yet; it stays in the run's inbox")
        return full

    async def control(self, run_id: str, op: str, reason: str | None) -> tuple[str, str, bool]:
        obj, applied = await self.rt.command(run_id, op, reason)
        return obj.run_id, obj.status, applied

    def proceed(self, run_id: str, op: str, *, from_step: str | None, json_mode: bool, detach: bool) -> int:
        """Here when no other process executes the run (or the new run), else followed from here."""

        async def go(runs: Runs) -> int:
            rt = self.rt
            if op == "restart":
                origin = rt.resolve(run_id)
                obj = await rt.restart(origin, from_step, activate=False)
                full, after = obj.run_id, 0
                err_console.print(f"[dim]run {full} restarts run {origin} "
                                  + (f"from step {escape(str(obj.describe()['restarted_from']['step']))}"
                                     if from_step else "from the beginning") + "[/dim]")
            else:
                full = rt.resolve(run_id)
                after = rt.get(full).store.next_seq - 1
                obj, applied = await rt.command(full, op)
                if not applied:
                    raise InvalidInput(f"run {full} is executed by {self._executor()}, which has not taken the "
                                       f"{op} in yet; it stays in the run's inbox")
                after = min(after, obj.store.next_seq - 1)
            if detach:
                if rt.owns(full):
                    await rt.close()  # the run's lock is released: the worker takes it
                    detach_run(self.project, full)
                console.print(full)
                return 0
            if not rt.owns(full):
                err_console.print(f"[dim]run {full} is executed by {self._executor()}; following it here[/dim]")
            watcher = Watcher(rt, full, console=console, json_mode=json_mode)
            watcher.last = after
            final = await watcher.run(start=op == "restart")
            return 0 if final and final["type"] == "run.completed" else 1

        with detached_note():
            return self.call(go)

    async def delete(self, run_id: str) -> str:
        return await self.rt.delete(run_id)

    async def prune(self, older_than: str, statuses: list[str] | None, dry_run: bool) -> list[str]:
        seconds, chosen = prune_filter(older_than, statuses)
        if dry_run:
            return await self.rt.prune(seconds, chosen, dry_run=True, limit=PRUNE_ALL)
        return await self.rt.prune(seconds, chosen, limit=PRUNE_ALL)

    async def _deliver_and_follow(self, run_id: str, deliver: Callable[[], Coroutine[Any, Any, Any]],
                                  quiet: bool) -> None:
        """Deliver; if no other process executes the run, continue it here until it waits or finishes."""
        rt = self.rt
        await deliver()
        if rt.owns(run_id) and not quiet:
            watcher = Watcher(rt, run_id, console=console, prompt=False)
            watcher.last = rt.get(run_id).events()[-1]["seq"]
            settle = asyncio.ensure_future(rt.wait_settled(run_id))
            follow = asyncio.ensure_future(watcher.run(start=False))
            await asyncio.wait({settle, follow}, return_when=asyncio.FIRST_COMPLETED)
            follow.cancel()
            settle.cancel()
            obj = rt.get(run_id)
            if obj.status == RunStatus.WAITING:
                console.print(f"run {run_id} is waiting; [bold]flareflow resume {run_id}[/bold] keeps it going")


class RemoteRuns(Runs):
    """A flareflow server (the local server or a Worker) over its HTTP API; run ids may be unique
    prefixes (resolved with ``GET /runs?id_prefix=``)."""

    def __init__(self, url: str, token: str | None, saved_token: Path | None = None, *,
                 token_saved: bool = False) -> None:
        """``saved_token``: the project's saved token file, named in the hint a 401 gets;
        ``token_saved``: ``token`` is the project's own (nobody passed one)."""
        self.url = url
        self.token = token
        self.saved_token = saved_token
        self.token_saved = token_saved
        self._client: Client | None = None

    @property
    def client(self) -> Client:
        assert self._client is not None, "use RemoteRuns.call"
        return self._client

    def call(self, fn: Callable[[Runs], Coroutine[Any, Any, T]]) -> T:
        """API and connection errors become one line (exit 1)."""
        import httpx

        from ..client import ApiError, Client

        async def guarded() -> T:
            try:
                async with Client(self.url, self.token) as client:
                    self._client = client
                    return await fn(self)
            except ApiError as exc:
                where = f" ({exc.field})" if exc.field else ""
                raise UsageError(f"server said {exc.status} {exc.code}{where}: {exc.message}"
                                 + (self._token_hint() if exc.status == 401 else "")) from None
            except (httpx.TransportError, OSError) as exc:
                raise UsageError(f"cannot reach the server: {exc}") from None
            finally:
                self._client = None

        try:
            return run_async(guarded)
        except typer.Exit as exc:
            if exc.exit_code == 2:  # UsageError is a usage error (2); a server's refusal is not
                raise typer.Exit(1) from None
            raise

    def _token_hint(self) -> str:
        """What to do about a 401: the saved token when it was not tried, else --token."""
        if self.token_saved:
            return "; this project's token was tried and is not that server's: pass --token TOKEN"
        if self.saved_token is not None and self.saved_token.exists():
            where = os.path.relpath(self.saved_token)
            return f"; the local server's saved token: --token \"$(cat {shlex.quote(where)})\""
        return "; pass --token TOKEN or set $FLAREFLOW_TOKEN"

    async def _full(self, ref: str) -> str:
        """The run id a prefix stands for (a full id as it is); `UsageError` when none or several match."""
        if len(ref) >= FULL_ID_LENGTH or not ref or not all(c in "0123456789abcdef" for c in ref.lower()):
            return ref  # a full id, or not an id at all: the server's answer says which
        page = await self.client.list(id_prefix=ref.lower(), limit=6)
        ids = [str(r["id"]) for r in page["runs"]]
        if len(ids) == 1:
            return ids[0]
        if not ids:
            raise UsageError(f"no run '{ref}' on {self.url}")
        more = ", …" if len(ids) > 5 else ""
        raise UsageError(f"run id prefix '{ref}' is ambiguous: {', '.join(ids[:5])}{more}")

    def run(self, name: str, value: Any, *, json_mode: bool, idempotency_key: str | None, detach: bool) -> int:
        from .remote import remote_run

        async def go(runs: Runs) -> int:
            return await remote_run(self.client, name, value, console=console, json_mode=json_mode,
                                    idempotency_key=idempotency_key, detach=detach)

        return self.call(go)

    async def list_runs(self, workflow: str | None, status: str | None, limit: int) -> list[dict[str, Any]]:
        page = await self.client.list(workflow=workflow, status=status, limit=min(limit, 500))
        return list(page["runs"])

    async def describe(self, run_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        run_id = await self._full(run_id)
        return await self.client.get(run_id), [e async for e in self.client.events(run_id, follow=False)]

    async def events(self, run_id: str, after: int, follow: bool) -> AsyncIterator[dict[str, Any]]:
        async for event in self.client.events(await self._full(run_id), after=after, follow=follow):
            yield event

    async def awaited_events(self, run_id: str) -> list[str]:
        return _event_types((await self.client.get(await self._full(run_id))).get("waiting") or [])

    async def send_event(self, run_id: str, event_type: str, payload: Any, quiet: bool) -> str:
        run_id = await self._full(run_id)
        await self.client.send_event(run_id, event_type, payload)
        return run_id

    async def answer(self, run_id: str, value: Any, step: str | None, quiet: bool) -> tuple[str, str | None]:
        run_id = await self._full(run_id)
        return run_id, await self.client.answer(run_id, value, step)

    async def cancel(self, run_id: str, reason: str) -> str:
        return str((await self.client.cancel(await self._full(run_id), reason))["id"])

    async def control(self, run_id: str, op: str, reason: str | None) -> tuple[str, str, bool]:
        run_id = await self._full(run_id)
        run = await (self.client.pause(run_id, reason) if op == "pause" else self.client.cancel(run_id, reason))
        return str(run["id"]), str(run["status"]), True

    def proceed(self, run_id: str, op: str, *, from_step: str | None, json_mode: bool, detach: bool) -> int:
        """The server executes the run; this follows it (unless ``detach``) from the command on."""
        from .remote import follow

        async def go(runs: Runs) -> int:
            client = self.client
            full = await self._full(run_id)
            if op == "restart":
                run, after = await client.restart(full, from_step), 0
            else:
                after = int((await client.get(full)).get("last_seq") or 0)
                run = await (client.retry(full) if op == "retry" else client.resume(full))
            if detach:
                console.print(run["id"])
                return 0
            return await follow(client, str(run["id"]), console=console, json_mode=json_mode, after=after)

        return self.call(go)

    async def delete(self, run_id: str) -> str:
        run_id = await self._full(run_id)
        await self.client.delete(run_id)
        return run_id

    async def prune(self, older_than: str, statuses: list[str] | None, dry_run: bool) -> list[str]:
        pruned: list[str] = []
        while True:
            page = await self.client.prune(older_than, statuses, dry_run=dry_run)
            pruned.extend(page["runs"])
            if dry_run or not page["more"]:
                return pruned


def _event_types(waits: list[dict[str, Any]]) -> list[str]:
    return sorted({str(w.get("event_type") or w.get("name")) for w in waits if w.get("kind") == "event"})


@contextlib.contextmanager
def detached_note() -> Iterator[None]:
    """Ctrl-C (exit 130) while runs stream here says that they are saved and how to continue them."""
    try:
        yield
    except typer.Exit as exc:
        if exc.exit_code == 130:
            err_console.print("\n[yellow]detached[/yellow]: the run is saved; continue it with "
                              "[bold]flareflow resume[/bold]")
        raise


def open_runs(url: str | None, token: str | None, project: Path | None, *, discover: bool = False) -> Runs:
    """`RemoteRuns` with ``--url``, else `LocalRuns` on the project (loaded only then). ``discover`` (the
    commands that continue a run: ``send-event``, ``answer``, ``runs retry|restart``) imports the workflows
    tolerantly, as ``resume`` does: another file's import error is a warning, not a refusal (a run of a
    workflow that did not load is held, with the error, until it imports)."""
    if url:
        saved = _saved_token(project)
        own = token is None and saved is not None and saved[0] is not None and _loopback(url)
        if own and saved is not None:
            token = saved[0]
        return RemoteRuns(url, token, saved[1] if saved is not None else None, token_saved=own)
    return LocalRuns(load_project(project, discover=discover, tolerant=discover))


def _loopback(url: str) -> bool:
    """Whether ``url`` names this machine (a local server of some project, or ``wrangler dev``)."""
    host = urlsplit(url).hostname or ""
    return host in ("localhost", "::1") or host.startswith("127.")


def _saved_token(project: Path | None) -> tuple[str | None, Path] | None:
    """The token of the project here (its settings', else the one ``serve`` generated and saved) and
    the saved token's path; None outside a project. Nothing is created."""
    from .project import ProjectError, find_root
    from .serve import token_path
    from .settings import load_settings

    root = find_root(project or Path.cwd())
    try:
        settings, _ = load_settings(root)
    except (ProjectError, UserError, OSError):
        return None
    path = token_path(Project(root=root, settings=settings))
    if settings.dev.token:
        return settings.dev.token, path
    try:
        return path.read_text(encoding="utf-8").strip() or None, path
    except OSError:
        return None, path

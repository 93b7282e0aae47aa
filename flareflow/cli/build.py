"""``flareflow build``: turn a project into a Cloudflare Python Workers project in ``.flareflow/build/``.

The build is a pure function of its inputs (settings, workflow sources, flareflow's Worker-side code,
resource ids, an optional root ``wrangler.toml``/``wrangler.jsonc``). Their fingerprint is checked
before anything is imported, so an unchanged project rebuilds in milliseconds and says so. Files
are written only when their content changes, so ``wrangler dev``'s watcher does not loop.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
import time
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from jinja2 import Environment, StrictUndefined

from .. import __version__
from ..engine.cron import CronError, parse_cron
from .aibuild import ai_modules, override_warnings, uses_ai, worker_ai_vars
from .domaincheck import unknown_domains
from .errors import UserError
from .graphbuild import binding_warnings, graph_build, graph_sources, on_worker
from .project import Project, discover_workflows
from .vendor import download, flareflow_sources, runtime_dependencies, wheel_files

WRANGLER_VERSION = "4.86.0"
BUILD_DIR = ".flareflow/build"
RESOURCES_FILE = ".flareflow/resources.json"
MANIFEST = "flareflow-build.json"
OVERRIDES = ("wrangler.toml", "wrangler.jsonc")
#: Never removed from the build directory: wrangler's and npm's own state, serve's .dev.vars.
KEEP = {"node_modules", ".wrangler", "package-lock.json", ".dev.vars"}
SYNC_SCRIPT = "sync-workflows.mjs"
#: The GitHub Actions deploy workflow `flareflow new` writes (eject rewrites it for npm).
CI_WORKFLOW = ".github/workflows/deploy.yml"
PLACEHOLDER_D1 = "00000000-0000-0000-0000-000000000000"
PLACEHOLDER_KV = "00000000000000000000000000000000"
#: [vars] the generated wrangler.toml always sets, and the setting each comes from.
GENERATED_VARS = {"FLAREFLOW_PAYLOAD_THRESHOLD": "tool.flareflow.worker.payload_threshold",
                  "FLAREFLOW_MAX_BODY": "tool.flareflow.dev.max_body"}


class BuildError(UserError):
    """The project cannot be built; one readable line, and the previous build is left as it was."""


@dataclass
class BuildResult:
    """What a build did."""

    path: Path
    changed: bool
    written: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    workflows: list[str] = field(default_factory=list)
    seconds: float = 0.0


def slug(name: str) -> str:
    """A valid Worker name from a project name."""
    text = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")
    return (text or "flareflow-app")[:63].rstrip("-")


def worker_name(project: Project) -> str:
    return project.settings.worker.name or slug(project.name)


def resource_names(project: Project) -> dict[str, dict[str, str]]:
    """Name (and known id) of every enabled resource; ids come from ``.flareflow/resources.json``."""
    res = project.settings.resources
    name = worker_name(project)
    known = load_resource_ids(project)
    out: dict[str, dict[str, str]] = {}

    def pick(value: bool | str, default: str) -> str | None:
        if value is False:
            return None
        return default if value is True else str(value)

    if (d1 := pick(res.d1, f"{name}-index")) is not None:
        out["d1"] = {"name": d1, "id": known.get("d1", {}).get(d1, PLACEHOLDER_D1)}
    if (r2 := pick(res.r2, f"{name}-payloads")) is not None:
        out["r2"] = {"name": r2}
    if (kv := pick(res.kv, f"{name}-cache")) is not None:
        out["kv"] = {"name": kv, "id": known.get("kv", {}).get(kv, PLACEHOLDER_KV)}
    if (queue := pick(res.queues, f"{name}-dispatch")) is not None:
        out["queues"] = {"name": queue, "dlq": f"{queue}-dlq"}
    return out


def load_resource_ids(project: Project) -> dict[str, dict[str, str]]:
    path = project.root / RESOURCES_FILE
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise BuildError(f"{path}: not valid JSON ({exc}); delete it and deploy again") from None
    return data if isinstance(data, dict) else {}


# -- inputs and their fingerprint ---------------------------------------------------------------
def _source_files(project: Project) -> list[tuple[Path, str]]:
    """(file, path under src/) of every Python file the workflows may import."""
    files: list[tuple[Path, str]] = []
    seen: set[Path] = set()
    for entry in project.settings.workflows:
        path = (project.root / entry).resolve()
        if not path.exists() and not entry.endswith(".py") and "/" not in entry:
            path = _module_path(project, entry)
        if path.is_dir():
            candidates = sorted(p for p in path.rglob("*.py") if "__pycache__" not in p.parts)
        elif path.is_file():
            candidates = [path]
        else:
            raise BuildError(f"tool.flareflow.workflows: '{entry}' does not exist in {project.root}")
        for file in candidates:
            if file not in seen:
                seen.add(file)
                files.append((file, file.relative_to(project.root.resolve()).as_posix()))
    return files


def _module_path(project: Project, entry: str) -> Path:
    """The file or package folder of a dotted workflow module, looked up in the project root first.

    The root is on ``sys.path`` only once the workflows are imported (not yet when the fingerprint
    is taken, and never for the ``flareflow`` console script), so ``find_spec`` alone misses it.
    """
    top = entry.split(".")[0]
    root = project.root.resolve()
    if (root / top).is_dir():
        return root / top
    if (root / f"{top}.py").is_file():
        return root / f"{top}.py"
    spec = find_spec(top) if top else None
    origin = Path(spec.origin).resolve() if spec and spec.origin else None
    if origin is None:
        raise BuildError(f"tool.flareflow.workflows: module '{entry}' was not found in {project.root}")
    if root not in origin.parents:
        raise BuildError(f"tool.flareflow.workflows: module '{entry}' is not inside the project ({origin})")
    return origin.parent if origin.name == "__init__.py" else origin


#: The first line of an ejected project's wrangler.toml (templates/wrangler.toml.j2).
EJECTED_MARK = "# Ejected from flareflow"


def _override(project: Project) -> Path | None:
    found = [project.root / name for name in OVERRIDES if (project.root / name).exists()]
    if len(found) > 1:
        raise BuildError("both wrangler.toml and wrangler.jsonc are in the project root; keep one")
    return found[0] if found else None


def ejected(project: Project) -> bool:
    """True when the project root holds an ejected wrangler project (it builds and deploys itself)."""
    config = project.root / "wrangler.toml"
    try:
        return config.is_file() and config.read_text(encoding="utf-8").startswith(EJECTED_MARK)
    except (OSError, UnicodeDecodeError):
        return False


def refuse_if_ejected(project: Project, command: str) -> None:
    """`flareflow build` / `serve` / `deploy` on an ejected project would serve a copy of it from
    ``.flareflow/build`` where its ``[build]`` step cannot run: say what to use instead."""
    if ejected(project):
        npm = {"serve": "npm run dev", "deploy": "npm run deploy"}.get(command, "npm run dev / npm run deploy")
        raise BuildError(f"{project.root} was ejected (its wrangler.toml says so): it is a plain wrangler project "
                         f"now; use `{npm}` there (DEPLOY.md), or delete the ejected files to go back to "
                         f"`flareflow {command}`")


def fingerprint(project: Project, *, eject: bool) -> str:
    """Hash of everything the build reads, computed from file stats (no imports)."""
    digest = hashlib.sha256()
    digest.update(f"{__version__}|{eject}|{sys.executable}|{WRANGLER_VERSION}".encode())
    digest.update(project.settings.model_dump_json().encode())
    pyproject = project.root / "pyproject.toml"
    for path in [pyproject, project.root / RESOURCES_FILE, *(project.root / n for n in OVERRIDES)]:
        if path.exists():
            digest.update(path.name.encode() + path.read_bytes())
    generator = Path(__file__).resolve()
    own = [(generator, "build.py"), (generator.with_name("vendor.py"), "vendor.py")]
    templates = Path(str(resources.files("flareflow.templates")))
    own += [(t, t.name) for t in sorted(templates.glob("*.j2"))]
    for file, rel in [*_source_files(project), *graph_sources(project), *flareflow_sources(), *own]:
        stat = file.stat()
        digest.update(f"{rel}|{stat.st_size}|{stat.st_mtime_ns}".encode())
    return digest.hexdigest()


# -- rendering ----------------------------------------------------------------------------------
_env: Environment | None = None


def _templates() -> Environment:
    global _env
    if _env is None:
        _env = Environment(undefined=StrictUndefined, keep_trailing_newline=True, trim_blocks=True,
                           lstrip_blocks=True, autoescape=False)
    return _env


def render(template: str, **values: Any) -> str:
    text = resources.files("flareflow.templates").joinpath(template).read_text(encoding="utf-8")
    out = _templates().from_string(text).render(**values)
    return re.sub(r"\n{4,}", "\n\n\n", out)


def collect_crons(project: Project) -> list[str]:
    """Distinct cron expressions of all workflow schedules; a bad one names its workflow."""
    crons: list[str] = []
    for defn in project.registry:
        if defn.schedule is None or not on_worker(defn):  # a local-only graph is not in the Worker
            continue
        try:
            cron = parse_cron(defn.schedule)
        except CronError as exc:
            raise BuildError(f"workflow '{defn.name}': invalid schedule '{defn.schedule}': {exc}") from None
        expression = " ".join(cron.expression.split())  # "0  9 * * 1" is the same trigger as "0 9 * * 1"
        if expression not in crons:
            crons.append(expression)
    return crons


def manifest_of(project: Project) -> dict[str, dict[str, Any]]:
    """The Worker entry's MANIFEST: every workflow the Worker has (not a ``local_only`` graph)."""
    return {d.name: {"schedule": d.schedule, "description": d.description, "takes_input": d.takes_input,
                     "input_required": d.input_required} for d in project.registry if on_worker(d)}


def check_override(path: Path, resources_used: dict[str, dict[str, str]]) -> list[str]:
    """Warnings naming each required binding a user-supplied wrangler config lacks."""
    text = path.read_text(encoding="utf-8")
    try:
        config = tomllib.loads(text) if path.suffix == ".toml" else json.loads(_strip_jsonc(text))
    except (tomllib.TOMLDecodeError, ValueError) as exc:
        raise BuildError(f"{path.name}: cannot be parsed ({exc})") from None
    warnings = []
    if config.get("main") != "src/entry.py":
        warnings.append(f"{path.name}: main should be \"src/entry.py\" (the generated entry), "
                        f"found {config.get('main')!r}")
    if "python_workers" not in (config.get("compatibility_flags") or []):
        warnings.append(f"{path.name}: compatibility_flags lacks \"python_workers\"")
    bindings = (config.get("durable_objects") or {}).get("bindings") or []
    if not any(b.get("name") == "RUNS" and b.get("class_name") == "RunObject" for b in bindings):
        warnings.append(f"{path.name} lacks the Durable Object binding RUNS (class RunObject)")
    migrations = config.get("migrations") or []
    if not any("RunObject" in (m.get("new_sqlite_classes") or []) for m in migrations):
        warnings.append(f"{path.name} lacks a migration with new_sqlite_classes = [\"RunObject\"]")
    wanted = {
        "d1": ("d1_databases", "binding", "INDEX", "the D1 binding INDEX"),
        "r2": ("r2_buckets", "binding", "PAYLOADS", "the R2 binding PAYLOADS"),
        "kv": ("kv_namespaces", "binding", "CACHE", "the KV binding CACHE"),
    }
    for key, (table, attr, name, label) in wanted.items():
        if key in resources_used and not any(e.get(attr) == name for e in config.get(table) or []):
            warnings.append(f"{path.name} lacks {label} (tool.flareflow.resources.{key})")
    if "queues" in resources_used:
        producers = (config.get("queues") or {}).get("producers") or []
        if not any(p.get("binding") == "DISPATCH" for p in producers):
            warnings.append(f"{path.name} lacks the queue producer binding DISPATCH (tool.flareflow.resources.queues)")
    return warnings


def _strip_jsonc(text: str) -> str:
    """JSON with comments and trailing commas -> JSON (string-aware)."""
    out, i, n, in_str = [], 0, len(text), False
    while i < n:
        ch = text[i]
        if in_str:
            out.append(ch)
            if ch == "\\" and i + 1 < n:
                out.append(text[i + 1])
                i += 2
                continue
            if ch == '"':
                in_str = False
        elif ch == '"':
            in_str = True
            out.append(ch)
        elif text.startswith("//", i):
            while i < n and text[i] != "\n":
                i += 1
            continue
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            i = n if end < 0 else end + 2
            continue
        else:
            out.append(ch)
        i += 1
    return re.sub(r",(\s*[}\]])", r"\1", "".join(out))


# -- writing ------------------------------------------------------------------------------------
def _write_if_changed(path: Path, data: bytes) -> bool:
    if path.exists() and path.read_bytes() == data:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return True


@dataclass
class Checked:
    """What `check` found: the schedules' cron expressions and the warnings."""

    crons: list[str]
    warnings: list[str]


def check(project: Project, *, eject: bool = False) -> Checked:
    """Everything a build refuses (`BuildError`, `ProjectError`) or warns about, before anything is
    rendered or downloaded: the workflow modules import, every schedule is a cron expression, no
    ``[vars]`` entry collides with flareflow's own, no workflow calls a domain that does not exist
    (`flareflow.cli.domaincheck`), a root wrangler config parses and has the bindings.
    `plan` starts with it; ``flareflow validate`` is it."""
    project.modules.clear()  # discover_workflows appends; a second plan in one process must not double them
    discover_workflows(project)
    misspelt = unknown_domains(project.registry, project.root)
    if misspelt:  # every run reaching the line would fail with an AttributeError
        raise BuildError("\n".join(misspelt))
    crons = collect_crons(project)
    warnings: list[str] = []
    for var, setting in GENERATED_VARS.items():
        if var in project.settings.worker.vars:  # the template writes it too: a duplicate TOML key
            raise BuildError(f"tool.flareflow.worker.vars.{var}: set by flareflow itself (use {setting}); "
                             "remove it from vars")
    override = None if eject else _override(project)
    if override is not None:
        warnings.extend(check_override(override, resource_names(project)))
        warnings.extend(override_warnings(override, project))
    warnings.extend(binding_warnings(project, override))  # a graph's D1 binding the Worker lacks
    return Checked(crons, warnings)


def plan(project: Project, *, eject: bool = False) -> tuple[dict[str, bytes], list[str]]:
    """Every file of the build (relative path -> content) and the warnings, without writing."""
    checked = check(project, eject=eject)
    crons, warnings = checked.crons, checked.warnings
    used = resource_names(project)
    files: dict[str, bytes] = {}
    override = None if eject else _override(project)
    name = worker_name(project)
    worker = project.settings.worker.model_copy(update={"name": name, "vars": worker_ai_vars(project)})
    if override is not None:
        files[override.name] = override.read_bytes()
    else:
        # the hidden build has no [build] step (`flareflow serve` watches and rebuilds); an ejected
        # project's copies the workflow sources into src/ (`sync-workflows.mjs`)
        build_command = f"node {SYNC_SCRIPT}" if eject else None
        watch = source_tops(project) if eject else []
        # every kind present (None when disabled): the StrictUndefined template tests each one
        kinds = {kind: used.get(kind) for kind in ("d1", "r2", "kv", "queues")}
        files["wrangler.toml"] = render(
            "wrangler.toml.j2", worker=worker, resources=kinds, crons=crons, build_command=build_command,
            ejected=eject, watch_dirs=watch, pyproject_path="pyproject.toml",
            max_body=project.settings.dev.max_body, ai=uses_ai(project),
        ).encode()
    graph_modules, graph_module_files = graph_build(project)  # task graphs as JSON; local-only tasks refused
    modules = sorted(project.modules) + ai_modules(project) + graph_modules
    entries = manifest_of(project)
    lines = [f"    {name!r}: {dict(sorted(entries[name].items()))!r},\n" for name in sorted(entries)]
    manifest = "{\n" + "".join(lines) + "}"
    files["src/entry.py"] = render("entry.py.j2", modules=modules, manifest=manifest, ejected=eject,
                                   graph_ports=bool(graph_modules)).encode()
    files.update(graph_module_files)
    for source, rel in _source_files(project):
        files[f"src/{rel}"] = source.read_bytes()
    for source, rel in flareflow_sources():
        files[f"python_modules/{rel}"] = source.read_bytes()
    pyproject_deps = list(project.pyproject.get("project", {}).get("dependencies", []) or [])
    dependencies = runtime_dependencies(project.settings.worker.dependencies, pyproject_deps)
    for wheel in download(dependencies, project.root / ".flareflow" / "cache"):
        for rel, data in wheel_files(wheel):
            files[f"python_modules/{rel}"] = data
    if "d1" in used:
        index = resources.files("flareflow.migrations").joinpath("index")
        for entry in sorted(index.iterdir(), key=lambda e: e.name):
            if entry.name.endswith(".sql"):
                files[f"migrations/index/{entry.name}"] = entry.read_bytes()
    files["package.json"] = render("package.json.j2", name=name, wrangler_version=WRANGLER_VERSION,
                                   ejected=eject, d1="d1" in used).encode()
    return files, warnings


def source_tops(project: Project) -> list[str]:
    """The top-level folders (or single files) of the project that hold workflow sources."""
    return sorted({rel.split("/")[0] for _, rel in _source_files(project)})


def build(project: Project, *, force: bool = False) -> BuildResult:
    """Write ``.flareflow/build/``; a no-op (and says so) when nothing it reads has changed."""
    started = time.perf_counter()
    refuse_if_ejected(project, "build")
    out = project.root / BUILD_DIR
    stamp_path = out / MANIFEST
    stamp = fingerprint(project, eject=False)
    if not force and stamp_path.exists():
        try:
            previous = json.loads(stamp_path.read_text(encoding="utf-8"))
        except ValueError:
            previous = {}
        if previous.get("fingerprint") == stamp:
            return BuildResult(out, False, warnings=list(previous.get("warnings", [])),
                               workflows=list(previous.get("workflows", [])),
                               seconds=time.perf_counter() - started)
    files, warnings = plan(project)
    result = BuildResult(out, True, warnings=warnings,
                         workflows=[d.name for d in project.registry if on_worker(d)])
    # the files wrangler dev reloads on (entry, config) last, so it never loads a half-written build
    last = ("src/entry.py", "wrangler.toml", "wrangler.jsonc")
    for rel, data in sorted(files.items(), key=lambda item: item[0] in last):
        if _write_if_changed(out / rel, data):
            result.written.append(rel)
    expected = set(files) | {MANIFEST}
    for path in sorted(out.rglob("*"), reverse=True):
        rel = path.relative_to(out).as_posix()
        if rel.split("/")[0] in KEEP or rel in expected:
            continue
        if path.is_dir():
            if not any(path.iterdir()):
                path.rmdir()
        else:
            path.unlink()
            result.removed.append(rel)
    record = {"fingerprint": stamp, "flareflow": __version__, "workflows": result.workflows,
              "warnings": warnings, "files": sorted(files)}
    _write_if_changed(stamp_path, (json.dumps(record, indent=2) + "\n").encode())
    result.seconds = time.perf_counter() - started
    return result


def eject_plan(project: Project) -> dict[str, bytes]:
    """The files `flareflow eject` writes into the project root (``.gitignore`` is merged, see
    `merged_gitignore`).

    The workflow sources stay where they are, the one place to edit them; ``src/<folder>`` is a copy
    that wrangler's ``[build]`` step (``node sync-workflows.mjs``) refreshes before every ``wrangler
    dev`` and ``wrangler deploy``, so an edit always reaches ``npm run deploy``.
    """
    files, _ = plan(project, eject=True)
    name = worker_name(project)
    used = resource_names(project)
    tops = source_tops(project)
    secrets = [s for s in project.settings.worker.secrets if s != "FLAREFLOW_TOKEN"]
    kinds = {kind: used.get(kind) for kind in ("d1", "r2", "kv", "queues")}  # StrictUndefined: every kind
    files["DEPLOY.md"] = render("DEPLOY.md.j2", name=name, d1="d1" in used, tops=tops, secrets=secrets,
                                resources=kinds).encode()
    ci = project.root / CI_WORKFLOW
    if ci.exists() and "flareflow deploy" in ci.read_text(encoding="utf-8", errors="replace"):
        # the scaffold's CI deploy runs `flareflow deploy`, which an ejected project no longer uses
        files[CI_WORKFLOW] = render("deploy-ejected.yml.j2").encode()
    files[SYNC_SCRIPT] = render("sync-workflows.mjs.j2", sources=tops).encode()
    files[".dev.vars.example"] = render("dev.vars.example.j2", secrets=secrets).encode()
    files[".gitignore"] = merged_gitignore(project.root / ".gitignore", tops).encode()
    return files


#: What an ejected project keeps out of git: npm's and wrangler's state, local secrets.
EJECT_IGNORES = ("node_modules/", ".dev.vars", ".wrangler/")


def merged_gitignore(path: Path, tops: list[str]) -> str:
    """The project's ``.gitignore`` with the lines an ejected project needs appended (once)."""
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    present = {line.strip() for line in text.splitlines()}
    wanted = [*EJECT_IGNORES, *(f"/src/{top}" for top in tops)]
    missing = [line for line in wanted if line not in present]
    if not missing:
        return text
    if text and not text.endswith("\n"):
        text += "\n"
    header = "# wrangler project (flareflow eject); src/ copies of the workflows come from sync-workflows.mjs\n"
    return text + ("\n" if text else "") + header + "\n".join(missing) + "\n"


def copy_tree_files(files: dict[str, bytes], target: Path) -> None:
    for rel, data in files.items():
        path = target / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


__all__ = ["BuildError", "BuildResult", "build", "copy_tree_files", "eject_plan", "plan"]

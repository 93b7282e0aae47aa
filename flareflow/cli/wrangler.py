"""Everything that shells out to wrangler (and npm): serve, deploy, resource creation.

The wrangler executable is the one the build's pinned ``package.json`` installs into
``.flareflow/build/node_modules``; ``$FLAREFLOW_WRANGLER`` replaces it (tests use a recording
stand-in, since these machines have no Cloudflare account).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .build import RESOURCES_FILE, load_resource_ids, resource_names
from .errors import UserError
from .project import Project

WRANGLER_ENV = "FLAREFLOW_WRANGLER"
#: What workerd prints when it cannot fetch the Pyodide bundle for Python Workers (offline machines).
OFFLINE_SIGNS = ("pyodide", "python_workers", "getaddrinfo", "ENOTFOUND", "fetch failed")


class WranglerError(UserError):
    """wrangler or npm is missing or failed; the message says what to do."""


def wrangler_command(build_dir: Path, *, install: bool = True, say: Callable[[str], None] = print) -> list[str]:
    """The wrangler to run: $FLAREFLOW_WRANGLER, else the build's pinned one (installed on first use)."""
    override = os.environ.get(WRANGLER_ENV)
    if override:
        return shlex.split(override)
    local = build_dir / "node_modules" / ".bin" / "wrangler"
    if local.exists():
        return [str(local)]
    if shutil.which("node") is None:
        raise WranglerError("Node.js is not installed; wrangler needs it. Install Node 20+ "
                            "(https://nodejs.org) or use `flareflow serve --local`, which needs no Node")
    if shutil.which("npm") is None:
        raise WranglerError("npm is not installed (it comes with Node.js); it installs the pinned wrangler")
    if not install:
        raise WranglerError(f"wrangler is not installed in {build_dir}; run `npm install` there")
    say(f"installing the pinned wrangler into {build_dir} (npm install, once)…")
    proc = subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--loglevel=error"],
                          cwd=build_dir, capture_output=True, text=True, check=False)
    if proc.returncode != 0 or not local.exists():
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise WranglerError("npm install of wrangler failed: " + " | ".join(tail))
    return [str(local)]


def run(cmd: list[str], cwd: Path, *, capture: bool = True) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(cmd, cwd=cwd, capture_output=capture, text=True, check=False)
    except FileNotFoundError:
        raise WranglerError(f"cannot run {cmd[0]}: not found") from None


def _checked(cmd: list[str], cwd: Path) -> str:
    proc = run(cmd, cwd)
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip().splitlines()
        raise WranglerError(f"`{' '.join(cmd[-4:])}` failed: " + (" | ".join(detail[-3:]) or f"exit {proc.returncode}"))
    return proc.stdout


def explain_dev_failure(output: str) -> str:
    lowered = output.lower()
    if any(sign.lower() in lowered for sign in OFFLINE_SIGNS):
        return ("wrangler dev could not start the Python Worker: workerd downloads its Pyodide bundle "
                "from Cloudflare at start, so native Python Workers cannot start offline. Connect to the "
                "internet, or use `flareflow serve --local`")
    return "wrangler dev exited with an error (see its output above)"


# -- resources --------------------------------------------------------------------------------
def _json_list(text: str) -> list[dict[str, Any]]:
    start = text.find("[")
    try:
        data = json.loads(text[start:]) if start >= 0 else []
    except ValueError:
        return []
    return [d for d in data if isinstance(d, dict)] if isinstance(data, list) else []


def ensure_resources(project: Project, wrangler: list[str], cwd: Path,
                     say: Callable[[str], None] = print) -> list[str]:
    """Create the enabled resources that do not exist yet; record their ids. Returns what was created.

    Idempotent: ids already in ``.flareflow/resources.json`` are trusted; otherwise an existing
    resource of the same name is found by listing before anything is created.
    """
    wanted = resource_names(project)
    known = load_resource_ids(project)
    created: list[str] = []

    def remember(kind: str, name: str, value: str) -> None:
        known.setdefault(kind, {})[name] = value
        path = project.root / RESOURCES_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(known, indent=2, sort_keys=True) + "\n", encoding="utf-8")

    if "d1" in wanted:
        name = wanted["d1"]["name"]
        if name not in known.get("d1", {}):
            found = [d for d in _json_list(_checked([*wrangler, "d1", "list", "--json"], cwd)) if d.get("name") == name]
            if found:
                remember("d1", name, str(found[0].get("uuid") or found[0].get("database_id")))
            else:
                out = _checked([*wrangler, "d1", "create", name], cwd)
                match = re.search(r"database_id\W+([0-9a-fA-F-]{36})", out)
                if not match:
                    raise WranglerError(f"created D1 database {name} but found no database_id in wrangler's output")
                remember("d1", name, match.group(1))
                created.append(f"D1 database {name}")
    if "kv" in wanted:
        name = wanted["kv"]["name"]
        if name not in known.get("kv", {}):
            listing = _json_list(_checked([*wrangler, "kv", "namespace", "list"], cwd))
            found = [n for n in listing if n.get("title") == name]
            if found:
                remember("kv", name, str(found[0]["id"]))
            else:
                out = _checked([*wrangler, "kv", "namespace", "create", name], cwd)
                match = re.search(r"\bid\W+([0-9a-f]{32})", out)
                if not match:
                    raise WranglerError(f"created KV namespace {name} but found no id in wrangler's output")
                remember("kv", name, match.group(1))
                created.append(f"KV namespace {name}")
    if "r2" in wanted:
        name = wanted["r2"]["name"]
        if name not in known.get("r2", {}):
            buckets = _checked([*wrangler, "r2", "bucket", "list"], cwd)
            if not re.search(rf"(?m)^name:\s*{re.escape(name)}\s*$", buckets):
                _checked([*wrangler, "r2", "bucket", "create", name], cwd)
                created.append(f"R2 bucket {name}")
            remember("r2", name, name)
    if "queues" in wanted:
        for name in (wanted["queues"]["name"], wanted["queues"]["dlq"]):
            if name in known.get("queues", {}):
                continue
            queues = _checked([*wrangler, "queues", "list"], cwd)
            if not re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", queues):
                _checked([*wrangler, "queues", "create", name], cwd)
                created.append(f"queue {name}")
            remember("queues", name, name)
    for item in created:
        say(f"  created {item}")
    return created

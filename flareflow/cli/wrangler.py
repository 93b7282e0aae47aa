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
import sys
import tempfile
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


def run(cmd: list[str], cwd: Path, *, capture: bool = True,
        echo: bool = False) -> subprocess.CompletedProcess[str]:
    """Run ``cmd`` in ``cwd``. ``echo``: also stream its stdout to ours while capturing both streams."""
    try:
        if not echo:
            # captured: nobody sees a prompt, so stdin is closed and wrangler takes its non-interactive default
            return subprocess.run(cmd, cwd=cwd, capture_output=capture, text=True, check=False,
                                  stdin=subprocess.DEVNULL if capture else None)
        with tempfile.TemporaryFile("w+", encoding="utf-8") as err:
            proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=err, text=True)
            assert proc.stdout is not None
            seen: list[str] = []
            try:
                for line in proc.stdout:
                    sys.stdout.write(line)
                    sys.stdout.flush()
                    seen.append(line)
                code = proc.wait()
            except KeyboardInterrupt:
                proc.terminate()
                proc.wait()
                raise
            err.seek(0)
            return subprocess.CompletedProcess(cmd, code, "".join(seen), err.read())
    except FileNotFoundError:
        raise WranglerError(f"cannot run {cmd[0]}: not found") from None


def checked(wrangler: list[str], args: list[str], cwd: Path, *, echo: bool = False) -> str:
    """``wrangler ARGS`` in ``cwd``; its stdout, or a WranglerError saying what wrangler said went wrong."""
    proc = run([*wrangler, *args], cwd, echo=echo)
    if proc.returncode != 0:
        raise WranglerError(failure_message(f"`wrangler {shlex.join(args)}`", proc.stdout, proc.stderr,
                                            proc.returncode))
    return proc.stdout


# -- what a failed wrangler command said -----------------------------------------------------------
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)")
_ERROR_MARK = re.compile(r"^\s*(?:✘|X)?\s*\[ERROR\]\s*")
_WARNING_MARK = re.compile(r"^\s*(?:▲|!)?\s*\[WARNING\]")
#: wrangler's chatter around an error: banner, rules and boxes, the log file, the bug-report prompt
_NOISE = re.compile(
    r"^\s*(?:⛅️?\s*wrangler\s+\d|wrangler\s+\d+\.\d+\.\d+|[\d─━│┃┌┐└┘├┤┬┴┼╭╮╰╯═║╵╷^\s-]+$"
    r"|🪵|Logs were written to|If you think this is a bug|\? Would you like to report this error"
    r"|🤖|Using fallback value in non-interactive context|Resource location:|\[custom build\])"
)
_JS_STACK = re.compile(r"^\s+at .+[:(]|^\s*\{\s*$")
_MAX_DETAILS = 8


def _clean(output: str) -> list[str]:
    return [line.rstrip() for line in _ANSI.sub("", output).replace("\r\n", "\n").split("\n")]


def _error_blocks(lines: list[str]) -> list[list[str]]:
    """Each ``[ERROR]`` sentence with the notes indented under it (tracebacks and JS stacks left out)."""
    blocks: list[list[str]] = []
    current: list[str] | None = None
    skip_deeper: int | None = None  # in a traceback (its indent) or a JS stack (-1: the rest of the block)
    for line in lines:
        if _ERROR_MARK.match(line):
            current, skip_deeper = [], None
            blocks.append(current)
            if text := _ERROR_MARK.sub("", line).strip():
                current.append(text)
            continue
        if _WARNING_MARK.match(line):
            current = None
            continue
        if current is None or not line.strip() or _NOISE.search(line):
            continue
        indent = len(line) - len(line.lstrip())
        if skip_deeper is not None:
            if skip_deeper < 0 or indent > skip_deeper:
                continue
            skip_deeper = None
        if _JS_STACK.match(line):
            skip_deeper = -1
        elif line.lstrip().startswith("Traceback (most recent call last)"):
            skip_deeper = indent  # keep only the exception line, back at the traceback's indent
        elif indent == 0 and current:
            current = None  # wrangler indents its notes; a flush-left line is other output
        else:
            current.append(line.strip()[:400])
    return [block for block in blocks if block]


def meaningful_lines(output: str) -> list[str]:
    """What a failed wrangler command said, without its chatter, most important first.

    Each ``✘ [ERROR]`` sentence is one line, joined with its first note when that completes it
    (``A request to the Cloudflare API (…) failed.`` + ``Authentication error [code: 10000]``, but not
    with the first item of a longer list); its other notes follow, then the next errors (a repeated one
    only once). Dropped: the ``⛅️ wrangler 4.x`` banner, rules and boxes, ``🪵 Logs were written to``
    lines, the bug-report prompt, blank lines, ANSI colours, JavaScript stacks and Python traceback
    frames (the exception line is kept). Output without an ``[ERROR]`` line yields its last few
    meaningful lines.
    """
    lines = _clean(output)
    found: list[str] = []
    seen: list[list[str]] = []
    for block in _error_blocks(lines):
        if block in seen:
            continue
        seen.append(block)
        head, notes = block[0], block[1:]
        joins = len(notes) == 1 or not head.endswith(":")  # a list's intro keeps its items below it
        if notes and joins and len(head) < 200 and not notes[0].endswith(":"):
            head, notes = f"{head} {notes[0]}", notes[1:]
        found += [head, *notes]
    if not found:
        found = [line.strip()[:400] for line in lines if line.strip() and not _NOISE.search(line)
                 and not _WARNING_MARK.match(line)][-4:]
    return found


_NETWORK_SIGNS = ("ENOTFOUND", "EAI_AGAIN", "ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "getaddrinfo",
                  "fetch failed", "Unable to resolve Cloudflare's API hostname", "likely due to a connectivity",
                  "The request to Cloudflare's API timed out", "Connection error")


def failure_hint(output: str) -> str | None:
    """What to do about the common causes of a failed wrangler command, or None."""
    text = _ANSI.sub("", output)
    if re.search(r"\[code: 10000\]|Authentication error", text):
        return ("Cloudflare refused the API token; check that it may edit Workers Scripts, D1, Workers KV "
                "Storage, Workers R2 Storage and Queues, and that CLOUDFLARE_ACCOUNT_ID is its account; "
                "`npx wrangler whoami` shows both")
    if "CLOUDFLARE_API_TOKEN" in text or "You are not authenticated" in text or "Not logged in" in text:
        return ("not logged in to Cloudflare; run `npx wrangler login`, or set CLOUDFLARE_API_TOKEN, and "
                "CLOUDFLARE_ACCOUNT_ID if the token sees several accounts")
    if "CLOUDFLARE_ACCOUNT_ID" in text:
        return "set CLOUDFLARE_ACCOUNT_ID; `npx wrangler whoami` lists your accounts"
    lowered = text.lower()
    if any(sign.lower() in lowered for sign in _NETWORK_SIGNS) or (
            "A request to the Cloudflare API failed." in text and "[code: " not in text):
        return "wrangler could not reach Cloudflare's API; check the internet connection, proxy, VPN or firewall"
    return None


def failure_message(what: str, stdout: str, stderr: str, code: int) -> str:
    """The error for a failed wrangler command: ``WHAT failed: <wrangler's sentence> (hint: …)`` on the first
    line, the rest of what wrangler said on indented lines below it."""
    output = stderr + "\n" + stdout
    lines = meaningful_lines(output) or [f"exit {code}"]
    hint = failure_hint(output)
    details = lines[1:_MAX_DETAILS + 1]
    if len(lines) - 1 > len(details):
        details.append(f"… {len(lines) - 1 - len(details)} more line(s)")
    return f"{what} failed: {lines[0]}" + (f" (hint: {hint})" if hint else "") + "".join(
        f"\n  {line}" for line in details)


def explain_dev_failure(output: str) -> str:
    lowered = output.lower()
    if "address already in use" in lowered:
        return ("wrangler dev could not listen: the address is already in use (another server on that port?); "
                "pass --port N or set [tool.flareflow.dev].port")
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


def missing_resources(project: Project) -> list[str]:
    """What ``flareflow deploy`` would create, without asking Cloudflare: the enabled resources not yet
    recorded in ``.flareflow/resources.json`` (a deploy looks for each by name first and only records one
    that already exists), in the order a deploy creates them."""
    wanted = resource_names(project)
    known = load_resource_ids(project)
    missing = [f"{label} {wanted[kind]['name']}"
               for kind, label in (("d1", "D1 database"), ("kv", "KV namespace"), ("r2", "R2 bucket"))
               if kind in wanted and wanted[kind]["name"] not in known.get(kind, {})]
    if "queues" in wanted:
        missing += [f"queue {name}" for name in (wanted["queues"]["name"], wanted["queues"]["dlq"])
                    if name not in known.get("queues", {})]
    return missing


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
            listing = _json_list(checked(wrangler, ["d1", "list", "--json"], cwd))
            found = [d for d in listing if d.get("name") == name]
            if found:
                remember("d1", name, str(found[0].get("uuid") or found[0].get("database_id")))
            else:
                out = checked(wrangler, ["d1", "create", name], cwd)
                match = re.search(r"database_id\W+([0-9a-fA-F-]{36})", out)
                if not match:
                    raise WranglerError(f"created D1 database {name} but found no database_id in wrangler's output")
                remember("d1", name, match.group(1))
                created.append(f"D1 database {name}")
    if "kv" in wanted:
        name = wanted["kv"]["name"]
        if name not in known.get("kv", {}):
            listing = _json_list(checked(wrangler, ["kv", "namespace", "list"], cwd))
            found = [n for n in listing if n.get("title") == name]
            if found:
                remember("kv", name, str(found[0]["id"]))
            else:
                out = checked(wrangler, ["kv", "namespace", "create", name], cwd)
                match = re.search(r"\bid\W+([0-9a-f]{32})", out)
                if not match:
                    raise WranglerError(f"created KV namespace {name} but found no id in wrangler's output")
                remember("kv", name, match.group(1))
                created.append(f"KV namespace {name}")
    if "r2" in wanted:
        name = wanted["r2"]["name"]
        if name not in known.get("r2", {}):
            buckets = checked(wrangler, ["r2", "bucket", "list"], cwd)
            if not re.search(rf"(?m)^name:\s*{re.escape(name)}\s*$", buckets):
                checked(wrangler, ["r2", "bucket", "create", name], cwd)
                created.append(f"R2 bucket {name}")
            remember("r2", name, name)
    if "queues" in wanted:
        for name in (wanted["queues"]["name"], wanted["queues"]["dlq"]):
            if name in known.get("queues", {}):
                continue
            queues = checked(wrangler, ["queues", "list"], cwd)
            if not re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", queues):
                checked(wrangler, ["queues", "create", name], cwd)
                created.append(f"queue {name}")
            remember("queues", name, name)
    for item in created:
        say(f"  created {item}")
    return created

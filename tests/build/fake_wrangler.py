#!/usr/bin/env python3
"""A recording stand-in for the ``wrangler`` executable (these machines have no Cloudflare account).

Used as ``FLAREFLOW_WRANGLER="<python> <this file>"``. Every call appends one JSON line
``{"argv": [...], "cwd": "..."}`` to the file named by ``$FAKE_WRANGLER_LOG`` and answers the way
wrangler 4 does, closely enough for flareflow's parsing:

- ``d1 list --json``            -> a JSON array of the databases in the state file (``[]`` at first)
- ``d1 create NAME``            -> text with a ``"database_id": "<uuid>"`` snippet
- ``kv namespace list``         -> a JSON array of namespaces (``[]`` at first)
- ``kv namespace create NAME``  -> text with ``id = "<32 hex>"``
- ``r2 bucket list``            -> ``name:`` / ``creation_date:`` blocks (empty at first)
- ``queues list``               -> a box table of queues (no rows at first)
- ``r2 bucket create`` / ``queues create`` / ``d1 migrations apply`` / ``deploy`` -> success text
- ``dev --port N``              -> one line naming the port, exit 0 (after ``$FAKE_WRANGLER_DEV_SECONDS``,
  or once ``<log>.stop`` exists); the log entry also records ``.dev.vars`` as dev found it (text, mode)

Remote state (what exists) lives in the JSON file ``$FAKE_WRANGLER_STATE`` (default: the log file
plus ``.state.json``); a test can seed it to pretend resources already exist. ``$FAKE_WRANGLER_FAIL``
(a space-separated command prefix such as ``"kv namespace create"`` or ``"dev"``) makes that command
fail with exit 1; a failing ``dev`` prints what workerd prints offline.
"""

from __future__ import annotations

import json
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any


def _state_path() -> Path:
    explicit = os.environ.get("FAKE_WRANGLER_STATE")
    if explicit:
        return Path(explicit)
    return Path(os.environ["FAKE_WRANGLER_LOG"] + ".state.json")


def _load() -> dict[str, list[dict[str, Any]]]:
    path = _state_path()
    state: dict[str, list[dict[str, Any]]] = json.loads(path.read_text()) if path.exists() else {}
    for kind in ("d1", "kv", "r2", "queues"):
        state.setdefault(kind, [])
    return state


def _save(state: dict[str, list[dict[str, Any]]]) -> None:
    _state_path().write_text(json.dumps(state, indent=2))


def _table(rows: list[dict[str, Any]]) -> str:
    header = "│ id                               │ name                     │ created_on │ producers │ consumers │"
    lines = ["┌" + "─" * (len(header) - 2) + "┐", header, "├" + "─" * (len(header) - 2) + "┤"]
    for row in rows:
        lines.append(f"│ {row['id']:<32} │ {row['name']:<24} │ 2026-01-01 │ 0         │ 0         │")
    lines.append("└" + "─" * (len(header) - 2) + "┘")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    entry: dict[str, Any] = {"argv": argv, "cwd": os.getcwd()}
    dev_vars = Path(".dev.vars")
    if argv[:1] == ["dev"] and dev_vars.exists():  # what wrangler dev would read, as it finds it
        entry["dev_vars"] = dev_vars.read_text(encoding="utf-8")
        entry["dev_vars_mode"] = oct(dev_vars.stat().st_mode & 0o777)
    with open(os.environ["FAKE_WRANGLER_LOG"], "a", encoding="utf-8") as log:
        log.write(json.dumps(entry) + "\n")
    fail = os.environ.get("FAKE_WRANGLER_FAIL", "").split()
    if fail and argv[: len(fail)] == fail:
        if argv[:1] == ["dev"]:
            print("workerd: failed to fetch the Pyodide bundle: fetch failed (getaddrinfo ENOTFOUND)")
        else:
            print(f"✘ [ERROR] A request to the Cloudflare API failed ({' '.join(fail)}). [code: 10000]",
                  file=sys.stderr)
        return 1
    print(" ⛅️ wrangler 4.86.0 (fake)", file=sys.stderr)
    state = _load()
    match argv:
        case ["d1", "list", "--json", *_]:
            print(json.dumps([{"uuid": d["uuid"], "name": d["name"], "created_at": "2026-01-01T00:00:00.000Z",
                               "version": "production", "num_tables": 0, "file_size": 0}
                              for d in state["d1"]], indent=2))
        case ["d1", "create", name, *_]:
            ident = str(uuid.uuid4())
            state["d1"].append({"name": name, "uuid": ident})
            _save(state)
            print(f"✅ Successfully created DB '{name}' in region WEUR\nCreated your new D1 database.\n\n"
                  "To access your new D1 Database in your Worker, add the following snippet to your "
                  "configuration file:\n" + json.dumps(
                      {"d1_databases": [{"binding": "DB", "database_name": name, "database_id": ident}]},
                      indent=2))
        case ["d1", "migrations", "apply", name, *_]:
            print(f"Migrations to be applied to {name}:\n0001_init.sql\n🚣 Executed 1 migration(s)\n✅ done")
        case ["kv", "namespace", "list", *_]:
            print(json.dumps([{"id": n["id"], "title": n["title"], "supports_url_encoding": True}
                              for n in state["kv"]], indent=2))
        case ["kv", "namespace", "create", name, *_]:
            ident = uuid.uuid4().hex
            state["kv"].append({"title": name, "id": ident})
            _save(state)
            print(f'🌀 Creating namespace with title "{name}"\n✨ Success!\nAdd the following to your '
                  f'configuration file in your kv_namespaces array:\n[[kv_namespaces]]\nbinding = "{name}"\n'
                  f'id = "{ident}"')
        case ["r2", "bucket", "list", *_]:
            print("Listing buckets...")
            for bucket in state["r2"]:
                print(f"name:           {bucket['name']}\ncreation_date:  2026-01-01T00:00:00.000Z\n")
        case ["r2", "bucket", "create", name, *_]:
            state["r2"].append({"name": name})
            _save(state)
            print(f"Creating bucket '{name}'...\n✅ Created bucket '{name}' with default storage class of Standard.")
        case ["queues", "list", *_]:
            print(_table(state["queues"]))
        case ["queues", "create", name, *_]:
            state["queues"].append({"name": name, "id": uuid.uuid4().hex})
            _save(state)
            print(f"🌀 Creating queue '{name}'\n✅ Created queue '{name}'")
        case ["deploy", *rest] if "--dry-run" not in rest:
            print("Total Upload: 159.27 KiB / gzip: 38.58 KiB\nUploaded fake-worker (1.00 sec)\n"
                  "Deployed fake-worker triggers (0.50 sec)\n  https://fake-worker.example.workers.dev")
        case ["deploy", *rest]:
            outdir = Path(rest[rest.index("--outdir") + 1]) if "--outdir" in rest else None
            if outdir is not None:
                outdir.mkdir(parents=True, exist_ok=True)
                (outdir / "entry.py").write_text("# fake\n")
            print("--dry-run: exiting now.")
        case ["dev", "--port", port, *rest]:
            seconds = float(os.environ.get("FAKE_WRANGLER_DEV_SECONDS", "0"))
            ip = rest[rest.index("--ip") + 1] if "--ip" in rest else "localhost"  # as wrangler prints it
            print(f"[wrangler:info] Ready on http://{ip}:{port} (fake wrangler dev; "
                  f"{'exiting' if not seconds else f'up for {seconds:g} s'})", flush=True)
            stop = Path(os.environ["FAKE_WRANGLER_LOG"] + ".stop")
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline and not stop.exists():
                time.sleep(0.05)
        case _:
            print(f"✘ [ERROR] fake wrangler: unknown command {argv!r}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Start-up survives what people leave in the state directory (issue #10 item 5).

Before the fix, any file in ``runs/`` named ``*.db`` that was not ``<run id>.db`` (a backup, an
upper-case copy, ``copy of run.db``) made ``flareflow serve --local`` exit with RunNotFound from
reconcile and ``flareflow resume`` fail; a damaged ``index.db`` was fatal too. Now such files are
ignored with one warning each, and a damaged index (derived data) is rebuilt from the run files.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ..api.hosts import clean_env, flareflow_executable
from .runs import make_runs
from .servers import client, project, server, stderr

STRAYS = ("{id}-backup.db", "{ID}.db", "copy of run.db", "notes.txt", "old")


def _strays(runs: Path, run_id: str) -> list[str]:
    names = []
    for pattern in STRAYS:
        name = pattern.format(id=run_id, ID=run_id.upper())
        if name == "old":
            (runs / name).mkdir()
        elif name.endswith(".db"):
            shutil.copy(runs / f"{run_id}.db", runs / name)
        else:
            (runs / name).write_text("not a run\n")
        names.append(name)
    return names


def test_stray_files_in_runs_are_ignored_with_one_warning_each(tmp_path):
    proj = project(tmp_path)
    ids = make_runs(proj, finished=3, waiting=1)
    runs = proj / ".flareflow" / "state" / "runs"
    names = _strays(runs, ids[0])
    srv = server(proj, tmp_path / "logs").start()
    try:
        with client(srv) as http:
            listed = {r["id"]: r["status"] for r in http.get("/runs").json()["runs"]}
            assert listed == {**{i: "completed" for i in ids[:3]}, ids[3]: "waiting"}
            assert http.post(f"/runs/{ids[3]}/events", json={"type": "go"}).status_code == 202
            assert http.post(f"/runs/{ids[3]}/input", json={"value": True}).status_code == 202
            assert http.post("/runs", json={"workflow": "steps"}).status_code == 201
    finally:
        srv.stop()
    err = stderr(srv)
    for name in names:
        assert err.count(f"ignoring runs/{name}: not a run file") == 1, err
    assert "Traceback" not in err and "RunNotFound" not in err
    for name in names:  # left alone
        assert (runs / name).exists()

    done = subprocess.run([flareflow_executable(), "resume", "--project", str(proj)], capture_output=True,
                          text=True, env=clean_env(), cwd=proj, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "nothing to resume" in done.stdout
    assert done.stderr.count("not a run file") == len(names), done.stderr


@pytest.mark.parametrize("damage", ["garbage", "truncated", "foreign"])
def test_a_damaged_index_is_rebuilt_from_the_run_files(tmp_path, damage):
    proj = project(tmp_path)
    ids = make_runs(proj, finished=40, waiting=1)
    state = proj / ".flareflow" / "state"
    index = state / "index.db"
    if damage == "garbage":
        index.write_bytes(os.urandom(64 * 1024))
    elif damage == "truncated":
        data = index.read_bytes()
        index.write_bytes(data[:4096] + os.urandom(len(data) - 4096))  # header intact, pages garbage
    else:
        import sqlite3

        index.unlink()
        with sqlite3.connect(index) as conn:
            conn.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY)")
        conn.close()
    srv = server(proj, tmp_path / "logs").start()
    try:
        with client(srv) as http:
            listed = {r["id"]: r["status"] for r in http.get("/runs", params={"limit": 500}).json()["runs"]}
            assert listed == {**{i: "completed" for i in ids[:40]}, ids[40]: "waiting"}
            # idempotency keys come back with the rebuilt index: the same key is the same run
            again = http.post("/runs", json={"workflow": "steps"}, headers={"idempotency-key": "made-0"})
            assert again.status_code == 200 and again.json()["id"] == ids[0]
    finally:
        srv.stop()
    err = stderr(srv)
    assert err.count("index.db") >= 1 and err.count("rebuilding the index from the run files") == 1, err
    assert "Traceback" not in err
    assert (state / "index.db.damaged").exists()


if sys.platform != "linux":  # pragma: no cover
    pytestmark = pytest.mark.skip("counts on Linux file semantics")

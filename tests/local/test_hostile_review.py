"""Findings of an attacker-style review of the hardening: each reproduced on the real server or runtime.

- a workflow whose error, error class name or output runs user code that raises ``SystemExit`` while
  flareflow formats or encodes it: a failure of that run or step, never of the process (it used to
  kill ``serve --local`` again at every start);
- a symlink loop in ``runs/`` and an ``index.db`` that is a directory: warnings and a rebuilt index,
  not a server that cannot start.
"""

from __future__ import annotations

import os
from pathlib import Path

import httpx

from tests.api.hosts import LocalServer, make_server

HOSTILE = '''
from flareflow import Run, workflow


class _Evil(str):
    def __len__(self):
        raise SystemExit("str subclass __len__")


class EvilMessage(Exception):
    def __str__(self):
        return _Evil("boom")


class _Meta(type):
    @property
    def __name__(cls):
        raise SystemExit("metaclass __name__")


class EvilName(Exception, metaclass=_Meta):
    pass


class EvilDict(dict):
    def items(self):
        raise SystemExit("dict items")


def evil_result():
    return EvilDict(a=1)


@workflow("evil")
async def evil(run: Run, kind: str = "message"):
    if kind == "message":
        raise EvilMessage()
    if kind == "name":
        raise EvilName()
    if kind == "output":
        return EvilDict(a=1)
    from flareflow import Retry
    return await run.step("result", evil_result, retry=Retry(limit=1))
'''


def _project(root: Path) -> Path:
    (root / "workflows").mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text('[project]\nname = "evil"\nversion = "0"\n\n[tool.flareflow]\n')
    (root / "workflows" / "evil.py").write_text(HOSTILE)
    return root


def _finished(srv: LocalServer, run_id: str) -> dict:
    import time

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        run = httpx.get(f"{srv.url}/runs/{run_id}", headers=srv.headers, timeout=10).json()
        if run["status"] in ("completed", "failed", "cancelled"):
            return dict(run)
        time.sleep(0.05)
    raise AssertionError(f"run {run_id} did not finish: {srv.output()[-2000:]}")


def test_user_code_raising_while_flareflow_formats_it_never_stops_the_server(tmp_path: Path) -> None:
    srv = make_server("local", tmp_path, _project)
    try:
        ids = {}
        for kind in ("message", "name", "output", "result"):
            response = httpx.post(f"{srv.url}/runs", json={"workflow": "evil", "input": kind}, headers=srv.headers)
            assert response.status_code == 201, response.text
            ids[kind] = response.json()["id"]
        for kind, run_id in ids.items():
            run = _finished(srv, run_id)
            assert run["status"] == "failed", (kind, run)
            assert srv.alive, srv.output()[-2000:]
        assert httpx.get(f"{srv.url}/health", timeout=5).status_code == 200
        srv.restart()  # nothing to resume that could kill it again
        assert httpx.get(f"{srv.url}/health", timeout=5).status_code == 200
    finally:
        srv.stop()


def test_a_symlink_loop_in_runs_and_an_index_directory_do_not_stop_start_up(tmp_path: Path) -> None:
    srv = make_server("local", tmp_path, _project)
    try:
        state = srv.project / ".flareflow" / "state"
        srv.stop()
        os.symlink("deadbeef00.db", state / "runs" / "deadbeef00.db")  # a loop onto itself
        (state / "index.db").unlink()
        for suffix in ("-wal", "-shm"):
            (state / f"index.db{suffix}").unlink(missing_ok=True)
        (state / "index.db").mkdir()
        srv.start(srv.port)
        assert httpx.get(f"{srv.url}/runs", headers=srv.headers, timeout=10).status_code == 200
        assert (state / "index.db").is_file() and (state / "index.db.damaged").is_dir()
        assert "deadbeef00.db" in srv.output()
    finally:
        srv.stop()

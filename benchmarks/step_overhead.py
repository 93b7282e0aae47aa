"""Per-step overhead of durable no-op steps: flareflow vs a bare-sqlite3 floor vs DBOS Transact.

Workload: sequential runs (one after another, never overlapping) of a workflow of N no-op steps
(default 10), each step durably committed before the next one starts. Figures are total wall time
of the measured runs divided by the number of steps they executed, so per-run costs (creating the
run, its database file, finishing it) are amortised over the steps, identically for every system.

  (a) flareflow, LocalRuntime(sync="full"), SystemClock; start_run + await until_finished
  (b) flareflow, LocalRuntime(sync="normal") (the default)
  (c) floor: plain sqlite3 (WAL, synchronous=FULL), one database file per run with flareflow's run
      schema, and in ONE transaction per step the rows flareflow writes for a step (steps row
      upsert + step.started and step.completed events); per run also the schema, the run row +
      run.started, and the run.completed update. Connections stay open like flareflow's.
  (d) DBOS Transact on SQLite (one system database, as DBOS is designed), WAL + synchronous=FULL
      set on every connection through a SQLAlchemy `creator` passed in db_engine_kwargs, checked
      with PRAGMA queries after launch; @DBOS.workflow calling a @DBOS.step 10 times.

Targets: flareflow(full) / floor <= 1.5x;  DBOS / flareflow(full) >= 8x.

Each system runs --rounds rounds (warm-up runs excluded from timing in every round); the table
shows the median and the best round. flareflow and floor rounds are interleaved; DBOS runs last
(it is a process-wide singleton with background threads).

    python benchmarks/step_overhead.py [--runs 200] [--steps 10] [--rounds 3] [--skip-dbos]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import logging
import os
import secrets
import shutil
import sqlite3
import sys
import tempfile
import time
from importlib import resources
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import environment, fsync_probe, median, print_env, table  # noqa: E402

from flareflow import Run, workflow  # noqa: E402
from flareflow.engine.registry import Registry  # noqa: E402
from flareflow.local import LocalRuntime  # noqa: E402

FLOOR_TARGET = 1.5
DBOS_TARGET = 8.0


def noop() -> None:
    return None


# -- flareflow ----------------------------------------------------------------------------------
def flareflow_round(root: Path, sync: str, runs: int, steps: int, warmup: int) -> float:
    """µs per step of `runs` sequential runs (after `warmup` untimed ones) in a fresh state dir."""
    reg = Registry()

    @workflow("noop_steps", registry=reg)
    async def noop_steps(run: Run) -> int:
        for i in range(steps):
            await run.step(f"s{i}", noop)
        return steps

    state = Path(tempfile.mkdtemp(prefix=f"ff-{sync}-", dir=root))

    async def main() -> float:
        async with LocalRuntime(state, reg, sync=sync) as rt:
            for _ in range(warmup):
                obj = await rt.start_run("noop_steps")
                await rt.until_finished(obj.run_id)
            gc.collect()
            start = time.perf_counter()
            last = None
            for _ in range(runs):
                obj = await rt.start_run("noop_steps")
                last = await rt.until_finished(obj.run_id)
            elapsed = time.perf_counter() - start
            assert last is not None and last.status == "completed", last and last.info
            assert last.info["output"] == steps
            return elapsed

    try:
        elapsed = asyncio.run(main())
    finally:
        shutil.rmtree(state, ignore_errors=True)
    return elapsed / (runs * steps) * 1e6


# -- floor: bare sqlite3 ------------------------------------------------------------------------
RUN_SCHEMA = resources.files("flareflow.migrations").joinpath("run/0001_init.sql").read_text("utf-8")
STEP_META = json.dumps({"retry": {"limit": 3, "delay": 1.0, "backoff": "exponential", "max_delay": None}},
                       separators=(",", ":"))
UPSERT_STEP = (
    "INSERT INTO steps (key, pos, kind, name, status, attempts, failures, result, error, wake_at, "
    "started_at, meta, updated_at) VALUES (?, ?, 'step', ?, 'completed', 1, 0, 'null', NULL, NULL, ?, ?, ?) "
    "ON CONFLICT(key) DO UPDATE SET status = excluded.status, attempts = excluded.attempts, "
    "failures = excluded.failures, result = excluded.result, error = excluded.error, "
    "wake_at = excluded.wake_at, started_at = excluded.started_at, meta = excluded.meta, "
    "updated_at = excluded.updated_at"
)
INSERT_EVENT = "INSERT INTO events (seq, type, at, body) VALUES (?, ?, ?, ?)"


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def floor_run(runs_dir: Path, steps: int, keep: list[sqlite3.Connection]) -> None:
    now = time.time()
    run_id = f"{int(now * 1000):011x}{secrets.token_hex(5)}"
    conn = sqlite3.connect(runs_dir / f"{run_id}.db", isolation_level=None, check_same_thread=False)
    keep.append(conn)  # like flareflow: the connection stays open (closing the last one checkpoints)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.executescript("BEGIN IMMEDIATE;\n" + RUN_SCHEMA + "\nCOMMIT;")
    ex = conn.execute
    ex("BEGIN IMMEDIATE")
    ex("INSERT INTO run (id, workflow, status, input, state, idempotency_key, created_at, updated_at) "
       "VALUES (?, 'noop_steps', 'running', 'null', '{}', NULL, ?, ?)", (run_id, now, now))
    ex(INSERT_EVENT, (1, "run.started", now, _dumps({"workflow": "noop_steps", "input": None})))
    ex("COMMIT")
    seq = 2
    for i in range(steps):
        key, name = f"s{i}#1", f"s{i}"
        t0 = time.time()
        noop()
        now = time.time()
        ex("BEGIN IMMEDIATE")
        ex(UPSERT_STEP, (key, str(i), name, t0, STEP_META, now))
        ex(INSERT_EVENT, (seq, "step.started", t0, _dumps({"step": key, "name": name, "attempt": 1})))
        ex(INSERT_EVENT, (seq + 1, "step.completed", now,
                          _dumps({"step": key, "name": name, "attempt": 1, "duration_ms": 0.001,
                                  "result": None, "patch": []})))
        ex("COMMIT")
        seq += 2
    now = time.time()
    ex("BEGIN IMMEDIATE")
    ex("UPDATE run SET status = 'completed', output = ?, updated_at = ?", (_dumps(steps), now))
    ex("DELETE FROM timers")
    ex(INSERT_EVENT, (seq, "run.completed", now, _dumps({"output": steps, "patch": []})))
    ex("COMMIT")


def floor_round(root: Path, runs: int, steps: int, warmup: int) -> float:
    state = Path(tempfile.mkdtemp(prefix="floor-", dir=root))
    runs_dir = state / "runs"
    runs_dir.mkdir()
    keep: list[sqlite3.Connection] = []
    try:
        for _ in range(warmup):
            floor_run(runs_dir, steps, keep)
        gc.collect()
        start = time.perf_counter()
        for _ in range(runs):
            floor_run(runs_dir, steps, keep)
        elapsed = time.perf_counter() - start
        check = keep[-1]
        assert check.execute("PRAGMA synchronous").fetchone()[0] == 2
        assert check.execute("SELECT count(*) FROM events").fetchone()[0] == 2 * steps + 2
    finally:
        for conn in keep:
            conn.close()
        shutil.rmtree(state, ignore_errors=True)
    return elapsed / (runs * steps) * 1e6


# -- DBOS Transact ------------------------------------------------------------------------------
class DbosBench:
    """Launches DBOS once (it is a process-wide singleton) on a SQLite system database."""

    def __init__(self, root: Path, journal: str, steps: int) -> None:
        from dbos import DBOS

        self.DBOS = DBOS
        self.dir = Path(tempfile.mkdtemp(prefix="dbos-", dir=root))
        self.path = str(self.dir / "dbos_sys.sqlite")
        self.journal = journal
        self.connections: list[sqlite3.Connection] = []
        path, conns = self.path, self.connections

        def creator() -> sqlite3.Connection:
            # SQLAlchemy calls this for every new pooled connection; DBOS's own "connect" listener
            # (isolation_level=IMMEDIATE, busy_timeout, foreign_keys) still runs on top of it.
            conn = sqlite3.connect(path, check_same_thread=False)
            if journal == "wal":
                conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = FULL")
            conns.append(conn)
            return conn

        for name in ("dbos", "sqlalchemy"):
            logging.getLogger(name).setLevel(logging.WARNING)
        DBOS(config={  # type: ignore[typeddict-item]
            "name": "flareflow-bench",
            "system_database_url": f"sqlite:///{path}",
            "db_engine_kwargs": {"creator": creator},
            "log_level": "WARNING",
        })

        @DBOS.step()
        def dbos_noop() -> None:
            return None

        @DBOS.workflow()
        def dbos_noop_steps() -> int:
            for _ in range(steps):
                dbos_noop()
            return steps

        self.wf = dbos_noop_steps
        self.steps = steps
        DBOS.launch()

    def pragmas(self) -> tuple[list[tuple[str, str]], bool]:
        """PRAGMA synchronous / journal_mode as seen through DBOS's own engine and each raw connection."""
        names = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}
        rows: list[tuple[str, str]] = []
        ok = True
        engine = None
        with contextlib.suppress(Exception):
            from dbos import _dbos as dbos_module

            engine = dbos_module._dbos_global_instance._sys_db.engine  # type: ignore[union-attr]
        if engine is not None:
            with engine.connect() as conn:
                sync = conn.exec_driver_sql("PRAGMA synchronous").scalar()
                mode = conn.exec_driver_sql("PRAGMA journal_mode").scalar()
            rows.append(("DBOS system-db engine", f"synchronous={names.get(sync, sync)}, journal_mode={mode}"))
            ok = ok and sync == 2
        syncs = set()
        for conn in self.connections:
            with contextlib.suppress(sqlite3.ProgrammingError):  # closed by the pool
                syncs.add(conn.execute("PRAGMA synchronous").fetchone()[0])
        rows.append((f"{len(self.connections)} pooled sqlite3 connection(s)",
                     "synchronous=" + ",".join(names.get(s, str(s)) for s in sorted(syncs))))
        ok = ok and syncs == {2}
        return rows, ok

    def round(self, runs: int, warmup: int) -> float:
        for _ in range(warmup):
            self.wf()
        gc.collect()
        start = time.perf_counter()
        for _ in range(runs):
            result = self.wf()
        elapsed = time.perf_counter() - start
        assert result == self.steps
        return elapsed / (runs * self.steps) * 1e6

    def close(self) -> None:
        self.DBOS.destroy(destroy_registry=True)
        shutil.rmtree(self.dir, ignore_errors=True)


# -- main ---------------------------------------------------------------------------------------
def fmt(us: float) -> str:
    return f"{us:,.1f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=200, help="timed runs per round (default 200)")
    parser.add_argument("--steps", type=int, default=10, help="no-op steps per run (default 10)")
    parser.add_argument("--warmup", type=int, default=10, help="untimed runs before each round (default 10)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per system; median reported (default 3)")
    parser.add_argument("--dbos-runs", type=int, default=None,
                        help="timed DBOS runs per round (default: --runs)")
    parser.add_argument("--dbos-journal", choices=("wal", "delete"), default="wal",
                        help="DBOS system-db journal mode (default wal, like flareflow; 'delete' is "
                             "the SQLite default DBOS gets when left alone)")
    parser.add_argument("--skip-dbos", action="store_true", help="do not run the DBOS comparison")
    parser.add_argument("--dir", default=None, help="parent directory for temp state (default: system temp)")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="flareflow-bench-", dir=args.dir))
    try:
        env = environment(root)
        env.append(("fsync probe", f"{fsync_probe(root):.0f} µs per 4 KiB write+fsync in the temp dir"))
        with contextlib.suppress(ImportError):
            import importlib.metadata as md

            env.append(("dbos", md.version("dbos")))
        print_env(env)
        print(f"Workload: {args.rounds} round(s) x {args.runs} sequential runs x {args.steps} no-op steps "
              f"(+{args.warmup} warm-up runs per round, untimed)\n")

        results: dict[str, list[float]] = {"ff_full": [], "ff_normal": [], "floor": [], "dbos": []}
        for r in range(args.rounds):
            results["floor"].append(floor_round(root, args.runs, args.steps, args.warmup))
            results["ff_full"].append(flareflow_round(root, "full", args.runs, args.steps, args.warmup))
            results["ff_normal"].append(flareflow_round(root, "normal", args.runs, args.steps, args.warmup))
            print(f"  round {r + 1}: floor {fmt(results['floor'][-1])}  flareflow(full) "
                  f"{fmt(results['ff_full'][-1])}  flareflow(normal) {fmt(results['ff_normal'][-1])} µs/step",
                  flush=True)

        pragma_rows: list[tuple[str, str]] = []
        pragma_ok = True
        if not args.skip_dbos:
            dbos_runs = args.dbos_runs or args.runs
            bench = DbosBench(root, args.dbos_journal, args.steps)
            try:
                pragma_rows, pragma_ok = bench.pragmas()
                for r in range(args.rounds):
                    results["dbos"].append(bench.round(dbos_runs, args.warmup))
                    print(f"  round {r + 1}: DBOS {fmt(results['dbos'][-1])} µs/step", flush=True)
            finally:
                bench.close()
        print()

        labels = [
            ("floor", "(c) floor: sqlite3 WAL+FULL, 1 tx/step"),
            ("ff_full", '(a) flareflow sync="full"'),
            ("ff_normal", '(b) flareflow sync="normal" (default)'),
            ("dbos", f"(d) DBOS Transact, SQLite {args.dbos_journal.upper()}+FULL"),
        ]
        floor_med = median(results["floor"])
        rows = []
        for key, label in labels:
            vals = results[key]
            if not vals:
                continue
            med = median(vals)
            rows.append([label, fmt(med), fmt(min(vals)), f"{1e6 / med:,.0f}", f"{med / floor_med:.2f}x"])
        print("Per-step cost (wall time / steps, per-run costs amortised)")
        print(table(["system", "µs/step median", "µs/step best", "steps/s", "vs floor"], rows))
        print()

        if pragma_rows:
            print("DBOS SQLite settings in force (PRAGMA queries after launch)")
            for what, value in pragma_rows:
                print(f"  {what}: {value}")
            print()

        verdicts = []
        ff_full = median(results["ff_full"])
        ratio = ff_full / floor_med
        verdicts.append(["flareflow(full) / floor", f"{ratio:.2f}x", f"<= {FLOOR_TARGET}x",
                         "PASS" if ratio <= FLOOR_TARGET else "FAIL"])
        if results["dbos"]:
            ratio = median(results["dbos"]) / ff_full
            verdict = "PASS" if ratio >= DBOS_TARGET else "FAIL"
            if not pragma_ok:
                verdict += " (synchronous=FULL not verified!)"
            verdicts.append(["DBOS / flareflow(full)", f"{ratio:.2f}x", f">= {DBOS_TARGET}x", verdict])
        print("Targets (on the medians)")
        print(table(["ratio", "measured", "target", "verdict"], verdicts))
        return 0
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())

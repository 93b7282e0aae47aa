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

All four run in one process and take turns in blocks of --block runs (order rotated every block),
so a disk or CPU stall on a shared box hits them alike; --warmup untimed runs each come first.
Before each block an untimed os.sync() flushes what the previous block left unsynced (sync="normal"
never fsyncs; on ext4 the next fsync by anyone would otherwise pay for those writes).
Besides µs/step from the totals, the table shows per-block statistics, and every ratio is given
both as a ratio of totals and as the median of per-block ratios (adjacent blocks of the two
systems), which is robust to the occasional multi-millisecond fsync stall of virtual disks.

    python benchmarks/step_overhead.py [--runs 200] [--steps 10] [--block 10] [--warmup 10]
                                       [--dbos-journal wal|delete] [--skip-dbos] [--dir PATH]
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
from _common import environment, fsync_probe, load_average, median, percentile, print_env, table

from flareflow import Run, workflow
from flareflow.engine.registry import Registry
from flareflow.local import LocalRuntime

FLOOR_TARGET = 1.5
DBOS_TARGET = 8.0


def noop() -> None:
    return None


# -- flareflow ----------------------------------------------------------------------------------
class FlareflowBench:
    """One LocalRuntime (kept open across blocks) running sequential no-op-step runs."""

    def __init__(self, root: Path, sync: str, steps: int) -> None:
        self.steps = steps
        self.state = Path(tempfile.mkdtemp(prefix=f"ff-{sync}-", dir=root))
        reg = Registry()

        @workflow("noop_steps", registry=reg)
        async def noop_steps(run: Run) -> int:
            for i in range(steps):
                await run.step(f"s{i}", noop)
            return steps

        self.rt = LocalRuntime(self.state, reg, sync=sync)
        self.rt.start()

    async def runs(self, count: int) -> float:
        """Seconds for ``count`` runs started one after another, each awaited to completion."""
        if count <= 0:
            return 0.0
        rt = self.rt
        start = time.perf_counter()
        for _ in range(count):
            obj = await rt.start_run("noop_steps")
            last = await rt.until_finished(obj.run_id)
        elapsed = time.perf_counter() - start
        assert last.status == "completed" and last.info["output"] == self.steps, last.info
        return elapsed

    def check(self) -> str:
        obj = self.rt.get(next(iter(self.rt.objects)))
        sync = obj.sql.conn.execute("PRAGMA synchronous").fetchone()[0]
        mode = obj.sql.conn.execute("PRAGMA journal_mode").fetchone()[0]
        return f"journal_mode={mode}, synchronous={SYNC_NAMES.get(sync, sync)} (after the last commit)"

    async def close(self) -> None:
        await self.rt.close()
        shutil.rmtree(self.state, ignore_errors=True)


SYNC_NAMES = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}


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


class FloorBench:
    """Bare sqlite3 writing flareflow's rows, one transaction per step, one file per run."""

    def __init__(self, root: Path, steps: int) -> None:
        self.steps = steps
        self.state = Path(tempfile.mkdtemp(prefix="floor-", dir=root))
        self.runs_dir = self.state / "runs"
        self.runs_dir.mkdir()
        self.keep: list[sqlite3.Connection] = []

    def runs(self, count: int) -> float:
        if count <= 0:
            return 0.0
        start = time.perf_counter()
        for _ in range(count):
            floor_run(self.runs_dir, self.steps, self.keep)
        elapsed = time.perf_counter() - start
        assert self.keep[-1].execute("SELECT count(*) FROM events").fetchone()[0] == 2 * self.steps + 2
        return elapsed

    def check(self) -> str:
        conn = self.keep[-1]
        sync = conn.execute("PRAGMA synchronous").fetchone()[0]
        mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
        return f"journal_mode={mode}, synchronous={SYNC_NAMES.get(sync, sync)}"

    def close(self) -> None:
        for conn in self.keep:
            conn.close()
        shutil.rmtree(self.state, ignore_errors=True)


# -- DBOS Transact ------------------------------------------------------------------------------
class DbosBench:
    """Launches DBOS once (it is a process-wide singleton) on a SQLite system database."""

    def __init__(self, root: Path, journal: str, steps: int) -> None:
        from dbos import DBOS

        self.DBOS = DBOS
        self.steps = steps
        self.dir = Path(tempfile.mkdtemp(prefix="dbos-", dir=root))
        self.path = str(self.dir / "dbos_sys.sqlite")
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
        DBOS.launch()

    def runs(self, count: int) -> float:
        if count <= 0:
            return 0.0
        start = time.perf_counter()
        for _ in range(count):
            result = self.wf()
        elapsed = time.perf_counter() - start
        assert result == self.steps
        return elapsed

    def check(self) -> tuple[str, bool]:
        """PRAGMA synchronous / journal_mode through DBOS's own engine and on every raw connection."""
        parts, ok = [], True
        engine = None
        with contextlib.suppress(Exception):
            from dbos import _dbos as dbos_module

            engine = dbos_module._dbos_global_instance._sys_db.engine  # type: ignore[union-attr]
        if engine is not None:
            with engine.connect() as conn:
                sync = conn.exec_driver_sql("PRAGMA synchronous").scalar()
                mode = conn.exec_driver_sql("PRAGMA journal_mode").scalar()
            parts.append(f"via DBOS's engine: journal_mode={mode}, synchronous={SYNC_NAMES.get(sync, sync)}")
            ok = sync == 2
        syncs = set()
        for conn in self.connections:
            with contextlib.suppress(sqlite3.ProgrammingError):  # closed by the pool
                syncs.add(conn.execute("PRAGMA synchronous").fetchone()[0])
        parts.append(f"on all {len(self.connections)} pooled connection(s): synchronous="
                     + ",".join(SYNC_NAMES.get(s, str(s)) for s in sorted(syncs)))
        return "; ".join(parts), ok and syncs == {2}

    def close(self) -> None:
        self.DBOS.destroy(destroy_registry=True)
        shutil.rmtree(self.dir, ignore_errors=True)


# -- main ---------------------------------------------------------------------------------------
LABELS = {
    "floor": "(c) floor: sqlite3 WAL+FULL, 1 tx/step",
    "ff_full": '(a) flareflow sync="full"',
    "ff_normal": '(b) flareflow sync="normal" (default)',
    "dbos": "(d) DBOS Transact on SQLite",
}


SHORT = {"floor": "(c) floor", "ff_full": "(a) flareflow full", "ff_normal": "(b) flareflow normal",
         "dbos": "(d) DBOS"}


def fmt(us: float) -> str:
    return f"{us:,.1f}"


async def measure(
    args: argparse.Namespace, root: Path
) -> tuple[dict[str, float], dict[str, list[float]], dict[str, str], bool]:
    """Interleave blocks of runs of every system, so all see the same disk conditions."""
    floor = FloorBench(root, args.steps)
    ff_full = FlareflowBench(root, "full", args.steps)
    ff_normal = FlareflowBench(root, "normal", args.steps)
    try:
        dbos = None if args.skip_dbos else DbosBench(root, args.dbos_journal, args.steps)
    except BaseException:
        floor.close()
        await ff_full.close()
        await ff_normal.close()
        raise
    runners: dict[str, Any] = {
        "floor": lambda n: _sync(floor.runs, n),
        "ff_full": ff_full.runs,
        "ff_normal": ff_normal.runs,
    }
    if dbos is not None:
        runners["dbos"] = lambda n: _sync(dbos.runs, n)
    blocks: dict[str, list[float]] = {key: [] for key in runners}  # µs/step of each block
    totals: dict[str, float] = {key: 0.0 for key in runners}  # seconds
    try:
        for run in runners.values():  # warm-up, untimed
            await run(args.warmup)
        gc.collect()
        done = 0
        order = list(runners)
        n_blocks = -(-args.runs // args.block)
        for b in range(n_blocks):
            count = min(args.block, args.runs - done)
            for key in order:
                if not args.no_flush:
                    os.sync()  # untimed: flush other systems' unsynced writes so nobody pays for them
                elapsed = await runners[key](count)
                totals[key] += elapsed
                blocks[key].append(elapsed / (count * args.steps) * 1e6)
            order = order[1:] + order[:1]  # rotate, so no system always follows another
            done += count
            if n_blocks >= 4 and (b + 1) % (n_blocks // 4) == 0:
                print(f"  {done}/{args.runs} runs done", flush=True)
        checks = {"floor": floor.check(), "ff_full": ff_full.check(), "ff_normal": ff_normal.check()}
        ok = True
        if dbos is not None:
            checks["dbos"], ok = dbos.check()
        return totals, blocks, checks, ok
    finally:
        floor.close()
        await ff_full.close()
        await ff_normal.close()
        if dbos is not None:
            dbos.close()


async def _sync(fn: Any, n: int) -> float:
    return float(fn(n))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=200, help="timed runs per system (default 200)")
    parser.add_argument("--steps", type=int, default=10, help="no-op steps per run (default 10)")
    parser.add_argument("--warmup", type=int, default=10, help="untimed runs per system first (default 10)")
    parser.add_argument("--block", type=int, default=10,
                        help="runs per interleaved block: systems take turns every BLOCK runs (default 10)")
    parser.add_argument("--dbos-journal", choices=("wal", "delete"), default="wal",
                        help="DBOS system-db journal mode (default wal, like flareflow; 'delete' is what "
                             "DBOS gets when left alone, also at synchronous=FULL)")
    parser.add_argument("--no-flush", action="store_true",
                        help="do not os.sync() (untimed) before each block; by default every block starts "
                             "with no dirty pages left by another system (ext4 journal commits otherwise "
                             "make the next fsync pay for the previous block's unsynced writes)")
    parser.add_argument("--skip-dbos", action="store_true", help="do not run the DBOS comparison")
    parser.add_argument("--dir", default=None, help="parent directory for temp state (default: system temp)")
    args = parser.parse_args()
    if args.runs < 1 or args.steps < 1 or args.block < 1 or args.warmup < 0:
        parser.error("sizes must be positive")

    root = Path(tempfile.mkdtemp(prefix="flareflow-bench-", dir=args.dir))
    try:
        env = environment(root)
        env.append(("fsync probe", f"{fsync_probe(root):.0f} µs per 4 KiB write+fsync in the temp dir"))
        if not args.skip_dbos:
            import importlib.metadata as md

            env.append(("dbos", md.version("dbos")))
        env.append(("load average", f"{load_average()} (1/5/15 min, before start; other work skews figures)"))
        print_env(env)
        print(f"Workload: {args.runs} sequential runs x {args.steps} no-op steps per system, in interleaved "
              f"blocks of {args.block} runs (+{args.warmup} untimed warm-up runs each)\n")

        totals, blocks, checks, pragma_ok = asyncio.run(measure(args, root))
        print()

        total = {key: totals[key] / (args.runs * args.steps) * 1e6 for key in blocks}
        floor_us = total["floor"]
        rows = []
        for key in ("floor", "ff_full", "ff_normal", "dbos"):
            if key not in blocks:
                continue
            label = LABELS[key] + (f" {args.dbos_journal.upper()}+FULL" if key == "dbos" else "")
            rows.append([label, fmt(total[key]), fmt(median(blocks[key])), fmt(min(blocks[key])),
                         fmt(percentile(blocks[key], 90)), f"{1e6 / total[key]:,.0f}",
                         f"{total[key] / floor_us:.2f}x"])
        print("Per-step cost: total wall time / total steps (per-run costs amortised over the steps)")
        print(table(["system", "µs/step", "block median", "block min", "block p90", "steps/s", "vs floor"],
                    rows))
        print()
        print("SQLite settings in force (PRAGMA queries at the end)")
        for key, text in checks.items():
            print(f"  {SHORT[key]:<20} {text}")
        print()

        def paired(num: str, den: str) -> float:
            """Median over blocks of the ratio of two systems' block figures (adjacent in time)."""
            return median([a / b for a, b in zip(blocks[num], blocks[den], strict=True)])

        def row(label: str, num: str, den: str, target: str = "", ok: Any = None) -> list[str]:
            by_total, by_block = total[num] / total[den], paired(num, den)
            verdict = "" if ok is None else " / ".join("PASS" if ok(r) else "FAIL" for r in (by_total, by_block))
            return [label, f"{by_total:.2f}x", f"{by_block:.2f}x", target, verdict]

        verdicts = [row("flareflow(full) / floor", "ff_full", "floor", f"<= {FLOOR_TARGET}x",
                        lambda r: r <= FLOOR_TARGET)]
        if "dbos" in total:
            verdicts.append(row("DBOS / flareflow(full)", "dbos", "ff_full", f">= {DBOS_TARGET}x",
                                lambda r: r >= DBOS_TARGET))
            if not pragma_ok:
                verdicts[-1][-1] += " (DBOS synchronous=FULL NOT verified)"
            verdicts.append(row("(info) DBOS / floor", "dbos", "floor"))
        verdicts.append(row("(info) flareflow(normal) / floor", "ff_normal", "floor"))
        print("Targets. Verdicts on both: the ratio of totals, and the paired-block median (median over")
        print("blocks of the ratio of the two systems' adjacent blocks: robust to disk/CPU stalls)")
        print(table(["ratio", "totals", "paired-block median", "target", "verdict (totals / paired)"],
                    verdicts))
        return 0
    finally:
        shutil.rmtree(root, ignore_errors=True)
        print(f"\nload average (1/5/15 min) at the end: {load_average()}")


if __name__ == "__main__":
    raise SystemExit(main())

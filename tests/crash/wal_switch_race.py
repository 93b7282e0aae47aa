"""Reproduce: two processes opening the same *fresh* database with `SqliteSql` at once; one may fail.

``PRAGMA journal_mode = WAL`` on a new file needs an exclusive lock. When two connections both hold
the shared lock and both try to escalate, SQLite returns SQLITE_BUSY to one of them at once (deadlock
avoidance: the busy handler and ``busy_timeout`` are not consulted), and `SqliteSql.__init__` turns that
into ``StorageError: ...: not a readable SQLite database (database is locked)``. In flareflow this hits
``index.db`` when the first two commands on a fresh project start together (the crash test's two
concurrent ``flareflow run`` processes failed this way once in ~12 runs before it staggered them).

Not collected by pytest. Run: ``/work/venv/bin/python tests/crash/wal_switch_race.py [PAIRS] [--fixed]``;
``--fixed`` retries the switch on "database is locked" (the suggested fix) and should report no failure.
"""

from __future__ import annotations

import multiprocessing as mp
import shutil
import sqlite3
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from flareflow.local.sqlite import SqliteSql


def _open_fixed(path: str) -> None:
    """The suggested fix: retry the WAL switch while another opener holds the lock."""
    conn = sqlite3.connect(path, isolation_level=None, timeout=10.0)
    deadline = time.monotonic() + 10.0
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL").fetchone()
            break
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.005)
    conn.close()


def _worker(path: str, start: float, fixed: bool, out: mp.Queue) -> None:  # type: ignore[type-arg]
    while time.time() < start:
        pass
    try:
        if fixed:
            _open_fixed(path)
        else:
            SqliteSql(path).close()
        out.put("ok")
    except Exception as exc:
        out.put(f"{type(exc).__name__}: {str(exc).split(': ', 1)[-1]}")


def main() -> None:
    pairs = int(next((a for a in sys.argv[1:] if a.isdigit()), "200"))
    fixed = "--fixed" in sys.argv
    seen: Counter[str] = Counter()
    for _ in range(pairs):
        folder = tempfile.mkdtemp()
        path = str(Path(folder) / "index.db")
        out: mp.Queue = mp.Queue()  # type: ignore[type-arg]
        start = time.time() + 0.2  # both workers spin until the same instant
        procs = [mp.Process(target=_worker, args=(path, start, fixed, out)) for _ in range(2)]
        for proc in procs:
            proc.start()
        for proc in procs:
            proc.join()
            seen[out.get()] += 1
        shutil.rmtree(folder)
    print(f"sqlite {sqlite3.sqlite_version}, {'fixed' if fixed else 'SqliteSql'}: {dict(seen)}")


if __name__ == "__main__":
    main()

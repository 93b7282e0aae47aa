"""The files of the embedded runtime's runs: one SQLite database per run under ``runs/``.

A new run's database starts as a copy of a migrated template (far cheaper than creating a schema per
run); with ``sync="full"`` the copy and its directory entry are fsynced. Files in ``runs/`` that are
not named ``<run id>.db`` (or their companions, `RUN_COMPANION`) are not flareflow's.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
from pathlib import Path

from ..durable_objects.migrate import migrate, migrations
from ..engine.errors import StorageError
from .sqlite import SqliteSql

#: A run file's name: the run id (lowercase hex) and ``.db``. Anything else in ``runs/`` is not ours.
RUN_FILE = re.compile(r"([0-9a-f]{8,64})\.db")
#: Companions of a run file that flareflow itself writes there (SQLite's, and the per-run log that
#: ``run --detach`` wrote before the background worker, whose log is ``<state>/worker.log``).
RUN_COMPANION = re.compile(r"[0-9a-f]{8,64}\.(db-wal|db-shm|db-journal|log)")

#: The tables of a run database (anything else in one means it is not flareflow's).
OWN_TABLES = frozenset({"_flareflow_migrations", "run", "steps", "events", "timers", "inbox", "blobs",
                        "step_logs", "sqlite_sequence"})


class RunFiles:
    """Creating run databases in ``runs_dir`` from the template kept in ``state_dir``."""

    def __init__(self, state_dir: Path, runs_dir: Path, sync: str) -> None:
        self.state_dir = state_dir
        self.runs_dir = runs_dir
        self.sync = sync
        self._template_path: Path | None = None

    def path(self, run_id: str) -> Path:
        """Where the run's database is (``runs/<run id>.db``)."""
        return self.runs_dir / f"{run_id}.db"

    def template(self) -> Path:
        """An empty run database with the current schema, in WAL mode; new runs start as a copy.

        Copying ~40 KB is far cheaper than creating a database and its schema for every run. The
        name carries a hash of the migrations, so a flareflow upgrade makes a new template.
        """
        if self._template_path is not None and self._template_path.exists():
            return self._template_path
        digest = hashlib.sha256("".join(text for _, _, text in migrations("run")).encode()).hexdigest()[:12]
        path = self.state_dir / f"template-{digest}.db"
        if not path.exists():
            tmp = self.state_dir / f".template-{digest}-{os.getpid()}.db"
            try:
                sql = SqliteSql(tmp, sync="normal", label=tmp.name)
                try:
                    migrate(sql, "run")
                    sql.exec("PRAGMA wal_checkpoint(TRUNCATE)")
                finally:
                    sql.close()
                for suffix in ("-wal", "-shm"):
                    Path(f"{tmp}{suffix}").unlink(missing_ok=True)
                os.replace(tmp, path)
            except (OSError, StorageError) as exc:
                for suffix in ("", "-wal", "-shm"):
                    with contextlib.suppress(OSError):
                        Path(f"{tmp}{suffix}").unlink()
                if isinstance(exc, StorageError):
                    raise
                raise StorageError(f"cannot create the run template ({exc.strerror or exc})") from None
        self._template_path = path
        return path

    def create(self, path: Path) -> None:
        """Copy the template; with ``sync="full"`` make the file and its directory entry durable too,
        since the WAL's fsyncs do not cover the main file a power cut could otherwise leave empty.
        A full disk (or any OS error) is a `StorageError` naming the run, not the path."""
        try:
            shutil.copyfile(self.template(), path)
            if self.sync == "full":
                fd = os.open(path, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
                dir_fd = os.open(self.runs_dir, os.O_RDONLY)
                try:
                    os.fsync(dir_fd)
                finally:
                    os.close(dir_fd)
        except OSError as exc:
            raise StorageError(f"cannot create runs/{path.name} ({exc.strerror or exc})") from None

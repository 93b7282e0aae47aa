"""The embedded runtime's open runs: run objects and their connections, at most `max_open` at once.

Each open run costs file descriptors (`budget`), and however many runs are on disk, only a few may be
open. Nothing about a run lives only in memory, so a run can be closed whenever no activation is in
flight and rebuilt from SQL when next used. `OpenRuns` keeps the open ones in least recently used
order, closes idle ones to make room, and remembers what it needs to notice writes to a run it owns
(its file's size and time while it is closed, ``PRAGMA data_version`` while it is open), which the
inbox poller (`inbox`) asks about.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path

from ..durable_objects.coordinator import RunCoordinator
from ..engine.errors import StorageError
from ..engine.status import TERMINAL
from .locks import Ownership
from .runfiles import RunFiles
from .sqlite import SqliteSql

#: Makes a run's object on its freshly opened connection (the runtime wires in its ports).
Factory = Callable[[str, SqliteSql], RunCoordinator]


def signature(path: Path) -> tuple[int, ...]:
    """Size and modification time of a run's database and WAL: changes when any process writes."""
    out: list[int] = []
    for name in (str(path), f"{path}-wal"):
        try:
            st = os.stat(name)
        except OSError:
            out += [-1, -1]
        else:
            out += [st.st_size, st.st_mtime_ns]
    return tuple(out)


class OpenRuns:
    """The open run objects (least recently used first) and their connections, under `max_open`."""

    def __init__(self, files: RunFiles, sync: str, max_open: int, ownership: Ownership,
                 factory: Factory) -> None:
        self.files = files
        self.sync = sync
        self.max_open = max_open
        self.ownership = ownership
        self.factory = factory
        self.objects: dict[str, RunCoordinator] = {}  # least recently used first
        self._sql: dict[str, SqliteSql] = {}
        self._busy: dict[str, int] = {}  # runs with an activation in flight: never closed under it
        #: Owned runs closed while unfinished: their file's `signature` when closed.
        self.watched: dict[str, tuple[int, ...]] = {}
        self._versions: dict[str, int] = {}  # the data_version last looked at, per open run

    def __len__(self) -> int:
        """How many run databases are open."""
        return len(self._sql)

    def connect(self, run_id: str) -> SqliteSql:
        """The run's connection, opened if it is not open."""
        sql = self._sql.get(run_id)
        if sql is None:
            sql = SqliteSql(self.files.path(run_id), sync=self.sync, label=f"runs/{run_id}.db")
            self._sql[run_id] = sql
            self.watched.pop(run_id, None)  # open again: no longer watched by signature (nor kept)
        return sql

    def build(self, run_id: str) -> RunCoordinator:
        """A run object on a fresh connection, not yet kept; the connection is closed again if
        building fails."""
        self._make_room(run_id)
        try:
            return self.factory(run_id, self.connect(run_id))
        except BaseException:
            self.close(run_id)
            raise

    def get(self, run_id: str) -> RunCoordinator:
        """The run's object (a full run id), built from SQL if it is not open."""
        obj = self.objects.pop(run_id, None)
        if obj is None:
            obj = self.build(run_id)
            if not obj.exists:
                self.close(run_id)
                raise StorageError(f"runs/{run_id}.db: holds no run (damaged or foreign file)")
        self.keep(run_id, obj)
        return obj

    def keep(self, run_id: str, obj: RunCoordinator) -> None:
        """Keep ``obj`` open as the most recently used run."""
        self.objects[run_id] = obj

    def close(self, run_id: str) -> None:
        """Forget the run's object and close its connection (not watched: a start undone, a bad file)."""
        self.objects.pop(run_id, None)
        sql = self._sql.pop(run_id, None)
        if sql is not None:
            sql.close()

    def evict(self, run_id: str) -> None:
        """Close the run; an owned unfinished one is watched through its file's size and time, an
        owned finished one is let go (so a process that retries it can take it)."""
        obj = self.objects.get(run_id)
        self.close(run_id)
        self._versions.pop(run_id, None)
        if self.ownership.holds(run_id) and obj is not None and obj.exists and obj.status not in TERMINAL:
            self.watched[run_id] = signature(self.files.path(run_id))
        elif obj is not None and obj.exists and obj.status in TERMINAL and not self.busy(run_id):
            self.ownership.release(run_id)

    def close_all(self) -> None:
        for sql in self._sql.values():
            sql.close()
        self._sql.clear()
        self.objects.clear()

    def _make_room(self, opening: str) -> None:
        """Close the least recently used idle runs until one more fits in `max_open`.

        Idle: no activation in flight. A closed run is rebuilt from SQL when next used; an owned
        unfinished one is watched for deliveries from other processes. When every open run is busy,
        one more opens (reads of other runs never wait; the runtime lets fewer activations run at
        once than `max_open`).
        """
        if len(self._sql) < self.max_open:
            return
        for run_id in list(self.objects):
            if len(self._sql) < self.max_open:
                return
            if run_id == opening or self.busy(run_id):
                continue
            obj = self.objects[run_id]
            finished = not obj.exists
            self.evict(run_id)  # lets a finished run go
            if finished:
                self.ownership.release(run_id)

    # -- activations in flight -------------------------------------------------------------
    @contextlib.contextmanager
    def in_use(self, run_id: str) -> Iterator[None]:
        """Mark an activation of the run in flight: the run is not closed to make room meanwhile."""
        self._busy[run_id] = self._busy.get(run_id, 0) + 1
        try:
            yield
        finally:
            left = self._busy.pop(run_id, 1) - 1
            if left:
                self._busy[run_id] = left

    def busy(self, run_id: str) -> bool:
        return bool(self._busy.get(run_id))

    # -- writes by any process -------------------------------------------------------------
    def open_object(self, run_id: str) -> RunCoordinator | None:
        """The run's object if it is open (without making it the most recently used)."""
        return self.objects.get(run_id) if run_id in self._sql else None

    def written_while_closed(self, run_id: str) -> bool:
        """Whether a watched run (closed while unfinished) was written since it closed, by any process.

        True once: the run is no longer watched (the activation the caller schedules opens it). A run
        with an activation in flight stays watched.
        """
        seen = self.watched.get(run_id)
        if seen is None or signature(self.files.path(run_id)) == seen or self.busy(run_id):
            return False
        del self.watched[run_id]
        return True

    def written_since_looked(self, run_id: str) -> bool:
        """Whether any connection committed to the open run since the last look (``PRAGMA data_version``)."""
        version = self._sql[run_id].data_version()
        if self._versions.get(run_id) == version:
            return False
        self._versions[run_id] = version
        return True

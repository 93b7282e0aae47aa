"""Which process executes which run: POSIX byte-range locks, one per run, on one file per state dir.

The kernel releases a lock however its process dies (a SIGKILL included), so a run whose lock is free
is a run nobody executes: the next runtime may take it over (`flareflow resume`, a server start).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from pathlib import Path
from typing import ClassVar


class RunLocks:
    """Per-run ownership: POSIX byte-range locks on one file per state directory.

    One lock file (instead of one per run) keeps run creation cheap. POSIX locks belong to the
    process and vanish when *any* descriptor of the file closes, so every runtime of this process
    on the same directory shares one descriptor, and ownership inside the process is tracked here.
    """

    _shared: ClassVar[dict[str, RunLocks]] = {}

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        self.users = 0
        self.owners: dict[str, int] = {}

    @classmethod
    def acquire(cls, state_dir: Path) -> RunLocks:
        key = str(state_dir.resolve())
        locks = cls._shared.get(key)
        if locks is None:
            locks = cls._shared[key] = RunLocks(state_dir / "runs.lock")
        locks.users += 1
        return locks

    def release_all(self, owner: int) -> None:
        for run_id in [r for r, o in self.owners.items() if o == owner]:
            self.unlock(run_id, owner)
        self.users -= 1
        if self.users == 0:
            os.close(self.fd)
            self._shared.pop(str(self.path.parent.resolve()), None)

    @staticmethod
    def _offset(run_id: str) -> int:
        return int(hashlib.sha256(run_id.encode()).hexdigest()[:15], 16) + 1

    def lock(self, run_id: str, owner: int) -> bool:
        holder = self.owners.get(run_id)
        if holder is not None:
            return holder == owner
        try:
            fcntl.lockf(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, self._offset(run_id), os.SEEK_SET)
        except OSError:
            return False
        self.owners[run_id] = owner
        return True

    def unlock(self, run_id: str, owner: int) -> None:
        if self.owners.get(run_id) == owner:
            del self.owners[run_id]
            fcntl.lockf(self.fd, fcntl.LOCK_UN, 1, self._offset(run_id), os.SEEK_SET)


class Ownership:
    """The runs one runtime executes: its view of the shared `RunLocks` of its state directory.

    ``take`` locks a run for this runtime (False while another live process holds it), ``release``
    gives it back, ``holds`` says whether this runtime executes it; ``release_all`` at close.
    """

    def __init__(self, state_dir: Path) -> None:
        self._locks = RunLocks.acquire(state_dir)
        self.held: set[str] = set()

    def take(self, run_id: str) -> bool:
        if run_id in self.held:
            return True
        if not self._locks.lock(run_id, id(self)):
            return False
        self.held.add(run_id)
        return True

    def release(self, run_id: str) -> None:
        if run_id in self.held:
            self.held.discard(run_id)
            self._locks.unlock(run_id, id(self))

    def holds(self, run_id: str) -> bool:
        return run_id in self.held

    def release_all(self) -> None:
        self._locks.release_all(id(self))
        self.held.clear()

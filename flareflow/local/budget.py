"""How many run databases the embedded runtime keeps open at once: a budget of file descriptors.

The number of runs on disk must not matter: each open run costs `FDS_PER_RUN` descriptors, so the
runtime opens runs lazily, closes idle ones, and never holds more than `open_budget` at a time.
"""

from __future__ import annotations

import resource

#: At most this many run databases open at once, however many descriptors the process may have.
MAX_OPEN = 256
#: Descriptors an open run costs: its database, its WAL and its shared-memory index.
FDS_PER_RUN = 3
#: Descriptors kept out of the budget for everything else (stdio, the index, the lock, the loop).
FD_RESERVE = 64


def open_budget(limit: int | None = None) -> int:
    """How many run databases may be open at once under a descriptor limit (default: this process's
    soft RLIMIT_NOFILE): half of what `FD_RESERVE` leaves, at `FDS_PER_RUN` each, between 4 and
    `MAX_OPEN`. The other half stays free for client connections (``ulimit -n 256``: 32 runs)."""
    if limit is None:
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        limit = soft if soft != resource.RLIM_INFINITY else 1 << 20
    return max(4, min(MAX_OPEN, (limit - FD_RESERVE) // 2 // FDS_PER_RUN))

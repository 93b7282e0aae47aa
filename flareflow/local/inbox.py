"""Deliveries from other processes: events and answers left in the inbox of a run this process owns.

Any process may write to a run's database (``flareflow send-event`` or ``answer``, a second server);
only the process holding the run's lock executes it, so the owner has to notice such writes. Nothing
signals across processes, so `InboxPoller` looks every `POLL_SECONDS` at each run it owns: an open
run's ``PRAGMA data_version`` (then its unacknowledged inbox rows), a closed one's file size and time
(then the activation opens it and ingests the inbox). Operators' commands (``runs cancel``, ``pause``,
``resume``, ``retry`` from another process) come the same way and are carried out at once, a
finished run's retry included.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from ..engine.errors import StorageError
from ..engine.status import TERMINAL
from .locks import Ownership
from .objects import OpenRuns

POLL_SECONDS = 0.25


class InboxPoller:
    """Schedules an activation of an owned run when another process left something in its inbox."""

    def __init__(self, runs: OpenRuns, ownership: Ownership, schedule: Callable[[str], None],
                 each_round: Callable[[], object]) -> None:
        """``each_round`` is called at the start of every round (the runtime retries index writes
        a refusing store kept pending)."""
        self.runs = runs
        self.ownership = ownership
        self.schedule = schedule
        self.each_round = each_round

    async def run(self) -> None:
        """Poll until cancelled."""
        while True:
            await asyncio.sleep(POLL_SECONDS)
            self.each_round()
            for run_id in list(self.ownership.held):
                try:
                    self.poll(run_id)
                except StorageError:
                    continue  # the store refuses even reads: the next round tries again

    def poll(self, run_id: str) -> None:
        """Look once at an owned run; schedule it if a delivery may be waiting."""
        obj = self.runs.open_object(run_id)
        if obj is None:  # closed while unfinished: has any process written since?
            if self.runs.written_while_closed(run_id):
                self.schedule(run_id)  # opens it; the activation ingests the inbox
            return
        if not obj.exists:
            return
        if self.runs.written_since_looked(run_id) and obj.store.unacked():
            obj.apply_commands()  # at once: a cancel interrupts the step running now
            if obj.status not in TERMINAL:
                self.schedule(run_id)

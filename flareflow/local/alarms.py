"""The embedded runtime's alarms: one per run, multiplexed on one loop of the runtime's clock.

Each run's coordinator keeps its single alarm at its earliest pending timer (the `Alarm` port);
`Alarms` holds every run's wish and, when one falls due, hands the run to the runtime to activate.
The clock is injectable (`flareflow.local.ManualClock` in tests), so alarms follow skipped time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from ..durable_objects.ports import Clock


class Alarms:
    """Every run's next alarm; `run` fires them in time order through ``fire(run_id)``."""

    def __init__(self, clock: Clock, fire: Callable[[str], None]) -> None:
        self.clock = clock
        self.fire = fire
        self._at: dict[str, float] = {}
        self._changed = asyncio.Event()

    def set(self, run_id: str, at: float | None) -> None:
        """The run's alarm at ``at`` (seconds since the epoch), or none."""
        if at is None:
            self._at.pop(run_id, None)
        else:
            self._at[run_id] = at
        self._changed.set()

    def port(self, run_id: str) -> RunAlarm:
        """The `Alarm` port of one run's coordinator."""
        return RunAlarm(self, run_id)

    def next(self) -> float | None:
        """When the earliest alarm is due, if any."""
        return min(self._at.values()) if self._at else None

    async def run(self) -> None:
        """Fire due alarms until cancelled; wakes early when an alarm is set or moved."""
        while True:
            self._changed.clear()
            if not self._at:
                await self._changed.wait()
                continue
            run_id, at = min(self._at.items(), key=lambda item: item[1])
            delay = at - self.clock.now()
            if delay <= 0:
                self._at.pop(run_id, None)
                self.fire(run_id)
                await asyncio.sleep(0)
                continue
            sleeper = asyncio.ensure_future(self.clock.sleep(delay))
            changed = asyncio.ensure_future(self._changed.wait())
            try:
                await asyncio.wait({sleeper, changed}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                sleeper.cancel()
                changed.cancel()


class RunAlarm:
    """The `Alarm` port of one run: forwards its wish to `Alarms`."""

    def __init__(self, alarms: Alarms, run_id: str) -> None:
        self.alarms = alarms
        self.run_id = run_id

    def set(self, at: float | None) -> None:
        self.alarms.set(self.run_id, at)

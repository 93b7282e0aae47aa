"""The per-run coordinator (host-agnostic, `RunCoordinator`) and its thin Cloudflare Durable Object shell
(`cloudflare.RunObjectBase`, imported only inside a Worker).

Standard library + engine only: this code is vendored into the Worker.
"""

from .coordinator import RunCoordinator
from .ports import Alarm, Clock, Sql, SystemClock

__all__ = ["Alarm", "Clock", "RunCoordinator", "Sql", "SystemClock"]

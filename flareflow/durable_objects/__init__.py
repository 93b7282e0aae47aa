"""The per-run coordinator (host-agnostic) and, later, its thin Cloudflare DurableObject shell.

Standard library + engine only: this code is vendored into the Worker.
"""

from .coordinator import RunObject
from .ports import Alarm, Clock, Sql, SystemClock

__all__ = ["Alarm", "Clock", "RunObject", "Sql", "SystemClock"]

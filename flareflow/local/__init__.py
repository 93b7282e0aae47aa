"""The embedded runtime: per-run objects in-process on sqlite3, one alarm each, no network.

Also the place for local stand-ins of Cloudflare resources as they arrive (D1 index, R2, KV, Queues).
"""

from .clock import ManualClock
from .runtime import LocalRuntime

__all__ = ["LocalRuntime", "ManualClock"]

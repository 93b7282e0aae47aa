"""The HTTP API (host-agnostic router) and, later, the thin Cloudflare WorkerEntrypoint shell.

Standard library + engine only: this code is vendored into the Worker.
"""

from .backend import Backend
from .http import ApiError, Request, Response, StreamRequest
from .router import Router

__all__ = ["ApiError", "Backend", "Request", "Response", "Router", "StreamRequest"]

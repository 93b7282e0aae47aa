"""The HTTP API: the host-agnostic router both hosts serve, and the thin Cloudflare WorkerEntrypoint
shell (`cloudflare.WorkerBase`, imported only inside a Worker).

Standard library + engine only: this code is vendored into the Worker.
"""

from .backend import Backend
from .http import HttpError, Request, Response, StreamRequest
from .router import Router

__all__ = ["Backend", "HttpError", "Request", "Response", "Router", "StreamRequest"]

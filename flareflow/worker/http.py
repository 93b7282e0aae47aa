"""Plain request/response values the router speaks, so any host (ASGI, Workers) can adapt to them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Request:
    """What the router needs of an HTTP request. Header names are lower-case."""

    method: str
    path: str
    query: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


@dataclass(frozen=True)
class Response:
    """A JSON response, or with a ``bytes`` body the body as it is (its ``content-type`` in ``headers``)."""

    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class StreamRequest:
    """An authorised, validated request for a live event stream; the host does the streaming."""

    kind: str  # "sse" | "ws"
    run_id: str
    after: int
    follow: bool = True


class HttpError(Exception):
    """An error the API reports as ``{"error": {"code", "message", "field"}}``."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None, *,
                 retry_after: int | None = None, allow: list[str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        #: Seconds for a ``Retry-After`` header (503: the store refused, try again later).
        self.retry_after = retry_after
        #: The methods a path does answer (405's ``Allow`` header).
        self.allow = allow

    def response(self) -> Response:
        headers = {"www-authenticate": 'Bearer realm="flareflow"'} if self.status == 401 else {}
        if self.retry_after is not None:
            headers["retry-after"] = str(self.retry_after)
        if self.allow:
            headers["allow"] = ", ".join(self.allow)
        return Response(self.status, {"error": {"code": self.code, "message": self.message,
                                                "field": self.field}}, headers)

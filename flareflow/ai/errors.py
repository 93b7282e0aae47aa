"""What an AI call can fail with, and which failures a retry can cure.

A rate limit (429) or a server error (5xx), a dropped connection or a malformed answer is
`AiUnavailable`: the step's retry policy tries again with its backoff. Any other 4xx means the
request itself is wrong (a bad model name, a bad key), so `AiRequestRefused` fails the step at once,
as does `AiNotConfigured` (no provider) and `AiSchemaError` (answers that kept failing their schema).
"""

from __future__ import annotations

from ..engine.errors import FlareflowError, NonRetryableError


class AiUnavailable(FlareflowError):
    """The provider did not answer usefully this time (429, 5xx, network, malformed body): retried."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class AiRequestRefused(NonRetryableError):
    """The provider refused the request (a 4xx other than 429): retrying the same request cannot help."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class AiNotConfigured(NonRetryableError):
    """No provider is configured for this host; the message names the setting."""


class AiSchemaError(NonRetryableError):
    """The model's answers kept failing the schema; the message quotes the last validation failure."""


def classify(status: int, detail: str) -> FlareflowError:
    """The error for an HTTP answer ``status`` of a provider (``detail``: what its body said)."""
    text = f"AI provider answered HTTP {status}: {detail[:300]}"
    if status == 429 or status >= 500:
        return AiUnavailable(text, status)
    return AiRequestRefused(text, status)

"""What an AI call can fail with, and which failures a retry can cure.

A rate limit (429) or a server error (5xx), a dropped connection (`AiUnreachable`) or a malformed
answer is `AiUnavailable`: the step's retry policy tries again with its backoff. Any other 4xx means the
request itself is wrong (a bad model name, a bad key), so `AiRequestRefused` fails the step at once,
as does `AiNotConfigured` (no provider) and `AiSchemaError` (answers that kept failing their schema).
"""

from __future__ import annotations

import re

from ..engine.errors import FlareflowError, NonRetryableError


class AiUnavailable(FlareflowError):
    """The provider did not answer usefully this time (429, 5xx, network, malformed body): retried."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class AiUnreachable(AiUnavailable):
    """No connection to the provider's address (refused, unresolvable, timed out): retried like any
    `AiUnavailable`; the step's error then says which setting, in which layer, holds the address."""


class AiRequestRefused(NonRetryableError):
    """The provider refused the request (a 4xx other than 429): retrying the same request cannot help."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class AiNotConfigured(NonRetryableError):
    """No provider is configured for this host; the message names the setting."""


class AiSchemaError(NonRetryableError):
    """The model's answers kept failing the schema; the message quotes the last validation failure."""


#: What the Workers AI binding's errors say when a retry can help: a rate limit or capacity error (3040,
#: 429), an upstream or internal failure (a 5xx, InferenceUpstreamError, 3043), a timeout.
_TRANSIENT = re.compile(r"\b(429|5\d\d|3040|3043)\b|InferenceUpstreamError|[Cc]apacity|[Rr]ate limit|[Tt]imed? ?out")


def classify_binding_error(text: str) -> FlareflowError:
    """The error for what the Workers AI binding threw (it has no status code, only its message)."""
    if _TRANSIENT.search(text):
        return AiUnavailable(f"Workers AI: {text[:300]}")
    return AiRequestRefused(f"Workers AI refused the request: {text[:300]}")


def classify(status: int, detail: str, where: str = "") -> FlareflowError:
    """The error for an HTTP answer ``status`` of a provider (``detail``: what its body said; ``where``:
    the URL and model asked, so a wrong ``base_url`` or model name shows in the message)."""
    text = f"AI provider {where + ' ' if where else ''}answered HTTP {status}: {detail[:300]}"
    if status == 404:
        text += " (is base_url right? OpenAI-compatible servers usually answer under /v1)"
    if status == 429 or status >= 500:
        return AiUnavailable(text, status)
    return AiRequestRefused(text, status)

"""Which provider failures a retry can cure (`flareflow.ai.errors`): HTTP statuses of an
OpenAI-compatible server, and the messages the Workers AI binding throws (it gives no status)."""

from __future__ import annotations

import pytest

from flareflow.ai.errors import AiRequestRefused, AiUnavailable, classify, classify_binding_error
from flareflow.engine.errors import NonRetryableError


@pytest.mark.parametrize(("status", "retried"), [(429, True), (500, True), (503, True), (400, False),
                                                 (401, False), (404, False), (422, False)])
def test_http_statuses(status: int, retried: bool) -> None:
    error = classify(status, "detail")
    assert isinstance(error, AiUnavailable if retried else AiRequestRefused)
    assert isinstance(error, NonRetryableError) is not retried
    assert f"HTTP {status}" in str(error) and "detail" in str(error)


@pytest.mark.parametrize(("message", "retried"), [
    ("AiError: 3040: Capacity temporarily exceeded, please try again. (429)", True),
    ("InferenceUpstreamError: 502 bad gateway", True),
    ("AiError: 3043: Internal server error", True),
    ("AiError: 5007: No such model @cf/nope (400)", False),  # 5007 is not a 5xx
    ("AiError: 5006: Input validation failed", False),
    ("Error: request timed out", True),
])
def test_binding_messages(message: str, retried: bool) -> None:
    error = classify_binding_error(message)
    assert isinstance(error, AiUnavailable if retried else AiRequestRefused), message

"""The Sockets port both hosts use: client frames, close reasons, error frames, SSE framing, catch-up."""

from __future__ import annotations

import json

import pytest

from flareflow.engine.errors import RunFinished
from flareflow.engine.sockets import (
    FrameError,
    catch_up,
    close_reason,
    error_frame,
    oversized,
    parse_client_frame,
    sse_frame,
)


def test_good_frames() -> None:
    assert parse_client_frame('{"type": "input", "value": true}') == {"type": "input", "value": True, "step": None}
    assert parse_client_frame(b'{"type": "event", "event_type": "go", "payload": [1]}') == {
        "type": "event", "event_type": "go", "payload": [1]}


@pytest.mark.parametrize(("text", "field"), [
    ("not json", None), ("[1]", None), ('{"type": "input"}', "value"), ('{"type": "input", "value": 1, "step": 2}',
                                                                        "step"),
    ('{"type": "event", "event_type": " "}', "event_type"), ('{"type": "nope"}', "type"),
    ('{"type": "event", "event_type": "go", "payload": "\\ud800"}', "payload"), ("[" * 300 + "]" * 300, None),
])
def test_bad_frames_name_what_is_wrong(text: str, field: str | None) -> None:
    with pytest.raises(FrameError) as info:
        parse_client_frame(text)
    assert info.value.field == field and info.value.code == "invalid_frame" and str(info.value)


def test_limits_and_reasons() -> None:
    assert oversized("ab", 2) is None and oversized("abc", 2) == "frame is larger than 2 bytes"
    assert oversized("é", 1) is not None  # bytes, not characters
    reason = close_reason("é" * 100)
    assert len(reason.encode()) <= 123 and reason == "é" * 61


def test_error_frames_carry_the_wire_form() -> None:
    frame = json.loads(error_frame(RunFinished("the run has finished")))
    assert frame == {"type": "error", "error": {"code": "run_finished", "message": "the run has finished",
                                                "field": None}}
    assert json.loads(error_frame(ValueError("x")))["error"]["code"] == "internal_error"


def test_sse_and_catch_up() -> None:
    assert sse_frame(7, "step.completed", "{}") == "id: 7\nevent: step.completed\ndata: {}\n\n"
    events = [{"seq": n, "type": "step.completed"} for n in range(1, 5)] + [{"seq": 5, "type": "run.completed"}]
    batch, last, done = catch_up(events, 2)
    assert [e["seq"] for e in batch] == [3, 4, 5] and last == 5 and done
    batch, last, done = catch_up(events[:3] + events[:3], 0)  # repeats are delivered once
    assert [e["seq"] for e in batch] == [1, 2, 3] and last == 3 and not done

"""`error_body`: the JSON an error is stored as -- never raises, never stores more than a few KiB."""

from __future__ import annotations

import json

from flareflow.engine.errors import MAX_MESSAGE, StepFailed, error_body


class Unprintable(Exception):
    def __str__(self) -> str:
        raise ValueError("no __str__ for you")


class Unrepresentable(Unprintable):
    def __repr__(self) -> str:
        raise SystemExit("nor __repr__")


class NotAString(Exception):
    def __str__(self) -> str:
        return 42  # type: ignore[return-value]


def test_plain_error() -> None:
    assert error_body(RuntimeError("boom")) == {"type": "RuntimeError", "message": "boom", "traceback": []}
    assert error_body(KeyboardInterrupt()) == {"type": "KeyboardInterrupt", "message": "KeyboardInterrupt",
                                               "traceback": []}
    assert error_body(SystemExit(3)) == {"type": "SystemExit", "message": "3", "traceback": []}


def test_str_that_raises_falls_back_to_repr() -> None:
    body = error_body(Unprintable("detail"))
    assert body["type"] == "Unprintable"
    assert body["message"].startswith("Unprintable('detail')"), body
    assert "__str__ raised ValueError" in body["message"], body


def test_str_and_repr_that_raise_still_give_a_message() -> None:
    body = error_body(Unrepresentable())
    assert body["type"] == "Unrepresentable"
    assert "Unrepresentable" in body["message"] and "raised" in body["message"], body
    assert error_body(NotAString())["type"] == "NotAString"
    json.dumps(error_body(NotAString()))


def test_long_message_is_capped_with_a_marker_and_its_length() -> None:
    body = error_body(RuntimeError("x" * 3_000_000))
    message = body["message"]
    assert message.startswith("x" * MAX_MESSAGE)
    assert message[MAX_MESSAGE:] == "… [truncated: 3,000,000 characters in all]"
    assert MAX_MESSAGE == 4096
    assert error_body(RuntimeError("y" * MAX_MESSAGE))["message"] == "y" * MAX_MESSAGE


def test_long_type_name_is_capped() -> None:
    cls = type("E" * 10_000, (Exception,), {})
    assert error_body(cls("m"))["type"].startswith("E" * 200) and len(error_body(cls("m"))["type"]) < 250


def test_step_failed_keeps_the_capped_cause_and_a_capped_message() -> None:
    cause = error_body(RuntimeError("z" * 1_000_000))
    body = error_body(StepFailed("s" * 100_000, cause))
    assert body["cause"] == cause
    assert len(body["step"]) <= MAX_MESSAGE + 100
    assert len(json.dumps(body)) < 4 * MAX_MESSAGE

"""Errors carry their wire form once: the router's answer and the Worker's reading of it are one table."""

from __future__ import annotations

import pytest

from flareflow.engine.errors import (
    WIRE_ERRORS,
    FlareflowError,
    InvalidInput,
    ReplayDivergence,
    RunFinished,
    RunNotFound,
    RunStateConflict,
    StorageError,
    WorkflowNotFound,
    error_from_wire,
    wire_error,
)
from flareflow.worker.router import api_error

EXPECTED = {
    RunNotFound: (404, "run_not_found", "run_id"),
    WorkflowNotFound: (404, "workflow_not_found", "workflow"),
    RunFinished: (409, "run_finished", None),
    RunStateConflict: (409, "run_state_conflict", "run_id"),
    InvalidInput: (400, "invalid_input", None),
    StorageError: (503, "storage_error", None),
}


def test_the_table_is_derived_from_the_classes() -> None:
    assert {cls: (cls.http_status, cls.code, cls.default_field) for cls in WIRE_ERRORS.values()} == EXPECTED


@pytest.mark.parametrize("cls", sorted(EXPECTED, key=lambda c: c.__name__))
def test_router_answer_reads_back_as_the_same_error(cls: type[FlareflowError]) -> None:
    exc = InvalidInput("bad value", "input.n") if cls is InvalidInput else cls("it went wrong")
    response = api_error(exc).response()
    status, body, headers = wire_error(exc) or (0, {}, {})
    assert (response.status, response.body) == (status, body)
    assert {k: v for k, v in response.headers.items() if k == "retry-after"} == headers
    back = error_from_wire(response.status, response.body["error"])
    assert type(back) is cls and str(back) == str(exc) and back.field == exc.field


def test_errors_without_a_wire_form() -> None:
    assert wire_error(ReplayDivergence("differs")) is None
    assert api_error(ReplayDivergence("differs")).status == 500
    assert isinstance(error_from_wire(418, {"code": "teapot", "message": "?"}), InvalidInput)
    assert isinstance(error_from_wire(502, {}), StorageError)
    assert StorageError("full").retry_after == 5 and api_error(StorageError("full")).response().headers[
        "retry-after"] == "5"

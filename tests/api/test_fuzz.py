"""Property-based fuzzing of the live server with schemathesis (4.x), driven by the shipped OpenAPI.

Tried first: schemathesis's pytest integration (``schemathesis.pytest.from_fixture`` +
``@schema.parametrize()``), which would let the fuzzing share the ``server`` fixture. It does not run
under the installed pytest 9.2: schemathesis 4.32.5 reads ``request.node._nodeid``, which pytest 9
removed (AttributeError before any request is sent). So the tests use schemathesis's Python API
directly: the operations are read from ``flareflow/worker/openapi.json`` at collection time (the
served document equals it -- see test_openapi.py), each (operation, positive|negative) pair is a pytest
test, and each draws cases from ``APIOperation.as_strategy(mode)`` under Hypothesis's ``@given``.
Every request carries the bearer token and a 10 s timeout, so a hang fails as loudly as a 5xx.

* random ids: schemathesis's data everywhere, run ids random (mostly the 404 paths).
* real runs: ``run_id`` pointed at real runs so bodies reach the backend -- a finished run for the
  streaming GETs (a live run's SSE stream would rightly never end) and, for everything else, a live
  `approval` run of its own per operation (so fuzzing /cancel does not starve /input).
* ``test_schemathesis_cli``: ``st run`` with its coverage phase (~400 deterministic boundary and
  malformed values per parameter and body), ``--checks not_a_server_error``; exit code must be 0.
  (Its fuzzing phase duplicates the tests above; the stateful phase needs OpenAPI links we lack.)

Check: ``not_a_server_error`` (status / schema conformance of good requests is in test_openapi.py).
Found before these fuzzers ran (by hand): a body nested ~1000 deep gave 500 -- fixed in router.py.
Since then: no operation produced a 5xx, a crash or a hang.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from .helpers import arun, http, start, wait_finished, wait_for_type
from .test_openapi import shipped_document

SCHEMA = schemathesis.openapi.from_dict(shipped_document())
OPERATIONS = {op.label: op for op in (result.ok() for result in SCHEMA.get_all_operations())}
EXAMPLES = 15
# Until cli/serve.py sets TCP_NODELAY (see test_latency.py), every keep-alive request costs a 40 ms
# delayed ACK; fresh connections do not, and fuzzing is about 5xx, not connection reuse.
NO_KEEPALIVE = {"Connection": "close"}
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="session")
def real_runs(server):
    """A finished run, and a factory of fresh live (waiting) runs, one per label."""
    live: dict[str, str] = {}

    async def finished() -> str:
        async with http(server) as client:
            run_id = await start(client, "steps", {"n": 2})
            await wait_finished(client, run_id)
            return run_id

    async def waiting() -> str:
        async with http(server) as client:
            run_id = await start(client, "approval")
            await wait_for_type(client, run_id, "run.waiting")
            return run_id

    def live_run(label: str) -> str:
        if label not in live:
            live[label] = arun(waiting())
        return live[label]

    return {"done": arun(finished()), "live": live_run}


def _fuzz(operation: Any, mode: GenerationMode, server: Any, run_id: str | None = None) -> int:
    calls = 0

    @FUZZ
    @given(case=operation.as_strategy(mode))
    def check(case: Any) -> None:
        nonlocal calls
        if run_id is not None:
            case.path_parameters = {**(case.path_parameters or {}), "run_id": run_id}
        response = case.call(base_url=server.url, headers={**server.headers, **NO_KEEPALIVE}, timeout=10)
        calls += 1
        assert response.status_code < 500, f"{case.method} {case.formatted_path}: {response.status_code} " \
                                           f"{response.text[:300]}\n{case.as_curl_command()}"
        case.validate_response(response, checks=[not_a_server_error])

    check()
    return calls


def _can_be_negative(operation: Any) -> bool:
    return bool(list(operation.iter_parameters())) or bool(operation.body)


CASES = [pytest.param(label, mode, id=f"{label}-{mode.value}")
         for label, operation in OPERATIONS.items()
         for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
         if mode.is_positive or _can_be_negative(operation)]


@pytest.mark.parametrize(("label", "mode"), CASES)
def test_fuzz_random_ids(server, label, mode):
    assert _fuzz(OPERATIONS[label], mode, server) > 0


@pytest.mark.parametrize(("label", "mode"), [c for c in CASES if "{run_id}" in c.values[0]])
def test_fuzz_real_runs(server, real_runs, label, mode):
    operation = OPERATIONS[label]
    streaming = operation.method.upper() == "GET" and operation.path.endswith(("/events", "/ws"))
    run_id = real_runs["done"] if streaming else real_runs["live"](label)
    assert _fuzz(operation, mode, server, run_id) > 0


def test_schemathesis_cli(server, tmp_path: Path):
    st = Path(sys.executable).with_name("st")
    cmd = [str(st), "run", f"{server.url}/openapi.json", "--checks", "not_a_server_error",
           "-H", f"Authorization: Bearer {server.token}", "-H", "Connection: close",
           "--max-examples", "5", "--phases", "coverage",
           "--request-timeout", "10", "--no-color", "--seed", "1"]
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "", "HYPOTHESIS_STORAGE_DIRECTORY": str(tmp_path / "hyp")}
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-3000:]

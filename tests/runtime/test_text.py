"""Stored text always encodes: a lone surrogate (``"\\ud800"``) is never written into a run.

Python strings may hold lone surrogates (``json.loads('"\\\\ud800"')``, ``bytes.decode(errors=
"surrogateescape")``); they cannot be encoded as UTF-8, so a run holding one could not be served
back. Tried through the embedded runtime (the API's router rejects them earlier, see
tests/api/test_hostile.py): a run input, an event payload, an answer, a step result, a workflow
output, tracked state and an exception message.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from flareflow.engine import Run, workflow
from flareflow.engine.errors import InvalidInput, NonRetryableError
from flareflow.local import LocalRuntime

from .helpers import finished, wait_until

LONE = "a\ud800b"


def _encodes(value: Any) -> None:
    json.dumps(value, ensure_ascii=False).encode("utf-8")  # raises UnicodeEncodeError otherwise


def test_lone_surrogates_from_clients_are_refused_before_anything_is_stored(runtime):
    @workflow("gate", registry=runtime.registry)
    async def gate(run: Run, inp: Any = None) -> Any:
        got = await run.wait_for_event("go")
        ok = await run.ask("ok?", schema={"type": "string"}, name="ok")
        return [got, ok]

    async def main(rt: LocalRuntime) -> None:
        with pytest.raises(InvalidInput, match="surrogate") as info:
            await rt.start_run("gate", {"name": LONE})
        assert info.value.field == "input"
        assert rt.index.list(limit=10) == []
        run_id = (await rt.start_run("gate", {"name": "ok"})).run_id
        await wait_until(lambda: rt.get(run_id).status == "waiting", "the run to wait")
        stored = rt.get(run_id).events()
        with pytest.raises(InvalidInput, match="surrogate") as info:
            await rt.send_event(run_id, "go", [LONE])
        assert info.value.field == "payload"
        assert rt.get(run_id).events() == stored
        await rt.send_event(run_id, "go", 1)
        await wait_until(lambda: rt.get(run_id).open_waits() and rt.get(run_id).open_waits()[0]["kind"]
                         == "input", "the question")
        stored = rt.get(run_id).events()
        with pytest.raises(InvalidInput, match="surrogate") as info:
            await rt.answer(run_id, LONE)
        assert info.value.field == "value"
        assert rt.get(run_id).events() == stored
        await rt.answer(run_id, "fine")
        assert (await finished(rt, run_id)).info["output"] == [1, "fine"]

    runtime.run(main)


@pytest.mark.parametrize("where", ["result", "output", "state", "error"])
def test_lone_surrogates_from_workflow_code_fail_the_run_readably(runtime, where):
    @workflow("leaky", registry=runtime.registry)
    async def leaky(run: Run) -> Any:
        if where == "state":
            run.state["name"] = LONE
        if where == "error":
            await run.step("boom", _raise)
        value = await run.step("fetch", lambda: LONE if where == "result" else "ok")
        return LONE if where == "output" else value

    async def main(rt: LocalRuntime) -> None:
        run_id = (await rt.start_run("leaky")).run_id
        done = await finished(rt, run_id)
        info = done.describe()
        events = done.events()
        _encodes(info)
        _encodes(events)
        assert done.status == "failed", info
        if where != "error":
            cause = info["error"].get("cause", info["error"])
            assert cause["type"] == "InvalidInput" and "surrogate" in cause["message"], info["error"]
        else:
            assert "\ufffd" in json.dumps(info["error"], ensure_ascii=False), info["error"]

    runtime.run(main)


def _raise() -> None:
    raise NonRetryableError("cannot read " + LONE)

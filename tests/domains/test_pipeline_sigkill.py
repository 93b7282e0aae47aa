"""A pipeline is one checkpoint: ``flareflow run`` SIGKILLed inside the chain, then ``flareflow resume``,
re-runs the whole chain once -- never only its rest -- and the step before it not at all (real processes,
real SQLite)."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

from tests.cli.helpers import Live, wait_until

FLOW = '''\
import os
import time
from typing import Any

from flareflow import Domain, Run, workflow


def effect(name: str) -> None:
    """Appends "<name> <pid>" to $PIPE_EFFECTS (fsynced): what ran, in which process."""
    fd = os.open(os.environ["PIPE_EFFECTS"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{name} {os.getpid()}\\n".encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def fetch(order: dict[str, Any]) -> dict[str, Any]:
    effect("fetch")
    return order


def validate(order: dict[str, Any]) -> dict[str, Any]:
    effect("validate")
    return {**order, "valid": True}


def enrich(order: dict[str, Any]) -> dict[str, Any]:
    effect("enrich")
    time.sleep(1.5)  # the test kills the process in here
    return {**order, "customer": "ACME"}


def process(order: dict[str, Any]) -> dict[str, Any]:
    effect("process")
    return {**order, "charged": True}


Order = Domain("Order", fetch=fetch, validate=validate, enrich=enrich, process=process)


@workflow("pipe")
async def pipe(run: Run, order: dict[str, Any]) -> Any:
    fetched = await run.Order(order).fetch()
    return await run.Order(fetched).validate().enrich().process()
'''


def test_sigkill_inside_a_pipeline_reruns_the_whole_chain_once(tmp_path: Path, monkeypatch) -> None:
    project = tmp_path / "proj"
    (project / "workflows").mkdir(parents=True)
    (project / "pyproject.toml").write_text('[project]\nname = "pipeproj"\n\n[tool.flareflow]\n'
                                            'workflows = ["workflows"]\n', encoding="utf-8")
    (project / "workflows" / "pipe.py").write_text(FLOW, encoding="utf-8")
    effects = tmp_path / "effects.txt"
    monkeypatch.setenv("PIPE_EFFECTS", str(effects))

    def ran() -> list[tuple[str, int]]:
        text = effects.read_text(encoding="utf-8") if effects.exists() else ""
        return [(name, int(pid)) for name, pid in (line.split() for line in text.splitlines())]

    with Live("run", "pipe", "--input", '{"id": 7}', "--json", cwd=project) as first:
        started = first.wait_event(lambda e: e["type"] == "run.started", what="run.started")
        wait_until(lambda: any(name == "enrich" for name, _ in ran()), 15, "enrich to start")
        os.kill(first.proc.pid, signal.SIGKILL)
        first.finish()
    killed = first.proc.pid
    assert ran() == [("fetch", killed), ("validate", killed), ("enrich", killed)]

    with Live("resume", started["run_id"], "--json", cwd=project) as again:
        assert again.finish(timeout=30) == 0, again.stderr
    events = [json.loads(line) for line in again.out if line.startswith("{")]
    done = [e for e in events if e["type"] == "run.completed"]
    assert done and done[-1]["output"] == {"id": 7, "valid": True, "customer": "ACME", "charged": True}, events
    resumed = {pid for _, pid in ran()} - {killed}
    assert len(resumed) == 1
    assert ran()[3:] == [(name, next(iter(resumed))) for name in ("validate", "enrich", "process")], ran()
    chain = [e for e in events if e["type"] == "step.completed" and e["name"] == "Order.validate.enrich.process"]
    assert len(chain) == 1 and chain[0]["attempt"] == 2  # the killed attempt counts as the chain's first

"""The project the conformance tests serve on every host (written into a temp dir, built for workerd).

* ``nap``      -- a step, a durable ``run.sleep("nap", "2s")``, a step; returns ``{"sum": 3}``.
* ``many``     -- ``n`` steps (default 20), each sleeping ``delay`` seconds; returns ``{"n", "total"}``.
* ``gated``    -- waits for the event ``go``, then ``n`` steps (default 5); returns the payload and ``n``.
* ``tiny``     -- one instant step (only the paging test starts it, so its listing is the test's own).
* ``nightly``  -- ``schedule="*/10 * * * *"``: what a cron trigger starts.
* ``big``      -- large JSON everywhere: input, a step result, an event payload and the output (~50 KiB each).
* ``fragile``  -- two steps, then ``charge`` that fails (one attempt) until the time ``until`` in its input,
  then a step whose ~12 KiB result is offloaded; what the recovery commands (retry, restart) work on.
* ``faulty``   -- two parallel steps printing in turns, then a step that prints, logs and raises
  ``ValueError`` (non-retryable in its policy) at the line marked ``FAIL-LINE``; the run fails.
* ``deployable`` -- a step, a wait for the event ``go``, a step; in a module of its own
  (`DEPLOYABLE_MODULE`), which the held-run test removes and restores (a deployment mistake).
* ``versioned`` -- in `VERSIONED_MODULE`, as released three times (`VERSIONED`): v1 is a step, a wait
  for ``go``, a step; v2 adds a step before them without a guard (a v1 run diverges); v3 puts it
  behind ``run.patched("audit-first")``. The project is written with v1.

No ``max_body`` setting: the default (1 MiB) lets the ~50 KiB payloads through; the payload threshold
stays at its default (10 KiB), so the Worker offloads them to R2.
"""

from __future__ import annotations

from pathlib import Path

PYPROJECT = """\
[project]
name = "flareflow-conformance"
version = "0.1.0"

[tool.flareflow]
workflows = ["workflows"]
"""

#: The ``fragile`` workflow (it needs ``ident``, ``Retry``, ``Run`` and ``workflow``; the console tests
#: write it into their project too).
FRAGILE = '''
def charge(until):
    import time

    if time.time() < until:
        raise ValueError("the card service is down for a moment")
    return "charged"


@workflow("fragile")
async def fragile(run: Run, inp):
    """first, second, charge (fails until `until`, one attempt), then a large step result."""
    done = [await run.step("first", ident, "first"), await run.step("second", ident, "second"),
            await run.step("charge", charge, inp["until"], retry=Retry(limit=1))]
    padding = await run.step("last", ident, "x" * 12_000)
    return {"done": done, "size": len(padding)}

'''

WORKFLOWS = '''\
"""Workflows for the conformance tests."""

import asyncio
import logging

from flareflow import Retry, Run, workflow

log = logging.getLogger("conformance")


def ident(value):
    return value


async def tick(i, delay):
    if delay:
        await asyncio.sleep(delay)
    return i


def shout(data):
    """A large step result derived from the (large) input."""
    return {"upper": data["text"].upper(), "items": list(reversed(data["items"]))}


@workflow("nap")
async def nap(run: Run, inp=None):
    """A step, a durable two-second nap, a step."""
    a = await run.step("before", ident, 1)
    await run.sleep("nap", "2s")
    b = await run.step("after", ident, 2)
    return {"sum": a + b}


@workflow("many")
async def many(run: Run, inp=None):
    """n steps, each sleeping `delay` seconds."""
    inp = inp if isinstance(inp, dict) else {}
    n = int(inp.get("n", 20))
    delay = float(inp.get("delay", 0))
    total = 0
    for i in range(n):
        total += await run.step(f"s{i}", tick, i, delay)
    return {"n": n, "total": total}


@workflow("gated")
async def gated(run: Run, inp=None):
    """Waits for `go`, then n steps."""
    inp = inp if isinstance(inp, dict) else {}
    got = await run.wait_for_event("go")
    n = int(inp.get("n", 5))
    for i in range(n):
        await run.step(f"g{i}", tick, i, float(inp.get("delay", 0)))
    return {"event": got, "n": n}


@workflow("tiny")
async def tiny(run: Run, inp=None):
    """One instant step."""
    return {"i": await run.step("only", ident, inp)}


@workflow("nightly", schedule="*/10 * * * *")
async def nightly(run: Run):
    """Started by the cron trigger."""
    return {"ticked": await run.step("tick", ident, True)}


def decline(order):
    print(f"charging order {order}")
    log.warning("card for order %s declined", order)
    raise ValueError(f"order {order} declined")  # FAIL-LINE


async def chatter(word):
    for i in range(3):
        print(f"{word} {i}")
        await asyncio.sleep(0)
    return word


@workflow("faulty")
async def faulty(run: Run, order=7):
    """Parallel chatter, then a step that fails at once with the user's traceback."""
    await run.parallel(run.step("left", chatter, "left"), run.step("right", chatter, "right"))
    policy = Retry(limit=3, delay="1s", non_retryable=(ValueError,))
    return await run.step("charge", decline, order, retry=policy)  # CHARGE-LINE


''' + FRAGILE + '''

@workflow("big")
async def big(run: Run, data):
    """Large values through every path: input, step result, event payload, output."""
    shouted = await run.step("shout", shout, data)
    event = await run.wait_for_event("payload")
    return {"text_len": len(data["text"]), "shouted_len": len(shouted["upper"]), "event": event,
            "reversed": event["text"][::-1]}
'''


def _flow_module(about: str, name: str, body: str, returned: str = "") -> str:
    """A module of one workflow ``name``: ``body``, then a step, a wait for ``go`` and a step, whose
    results it returns (after ``returned``, more entries of the returned dict)."""
    return (f'"""{about}"""\n\nfrom flareflow import Run, workflow\n\n\ndef ident(value):\n    return value\n\n\n'
            f'@workflow("{name}")\nasync def {name}(run: Run, inp=None):\n{body}'
            '    first = await run.step("first", ident, 1)\n    got = await run.wait_for_event("go")\n'
            f'    return {{{returned}"first": first, "got": got, "second": await run.step("second", ident, 2)}}\n')


#: The module of ``deployable`` (relative to the project), and its code.
DEPLOYABLE_MODULE = "workflows/deployable_flows.py"
DEPLOYABLE = _flow_module("A workflow the held-run test deploys without, then with again.", "deployable",
                          '    """A step, a wait for `go`, a step."""\n')

#: The module of ``versioned`` and its releases; each says which it is in its docstring (GET
#: /workflows shows it once a host serves it).
VERSIONED_MODULE = "workflows/versioned_flows.py"
_AUDITS = {"v1": "None", "v2": 'await run.step("audit", ident, "audited")',
           "v3": 'await run.step("audit", ident, "audited") if run.patched("audit-first") else None'}
VERSIONED = {release: _flow_module("A workflow the divergence test releases three times.", "versioned",
                                   f'    """release {release}"""\n    audit = {audit}\n', '"audit": audit, ')
             for release, audit in _AUDITS.items()}


def line_of(marker: str) -> int:
    """The line of ``workflows/conformance_flows.py`` that carries the comment ``marker``."""
    return next(i for i, line in enumerate(WORKFLOWS.splitlines(), 1) if f"# {marker}" in line)


def write_project(root: Path) -> Path:
    """Write the conformance project into ``root`` (created if needed) and return it."""
    (root / "workflows").mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text(PYPROJECT, encoding="utf-8")
    (root / "workflows" / "conformance_flows.py").write_text(WORKFLOWS, encoding="utf-8")
    (root / DEPLOYABLE_MODULE).write_text(DEPLOYABLE, encoding="utf-8")
    (root / VERSIONED_MODULE).write_text(VERSIONED["v1"], encoding="utf-8")
    return root

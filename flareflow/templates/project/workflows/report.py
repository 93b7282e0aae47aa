"""report: parallel branches, each a small pipeline of its own, with retries and a schedule."""

import asyncio
from typing import Any

from flareflow import Retry, Run, workflow

tries: dict[str, int] = {}


async def fetch(source: str) -> list[int]:
    """'support' is slow the first time it is asked, to show a retry inside one branch."""
    tries[source] = tries.get(source, 0) + 1
    await asyncio.sleep(0.1)
    if source == "support" and tries[source] == 1:
        raise TimeoutError(f"{source} was slow")
    return [len(source) * i for i in range(1, 6)]


async def summarise(values: list[int]) -> dict[str, Any]:
    return {"count": len(values), "total": sum(values)}


async def summarise_source(run: Run, source: str) -> dict[str, Any]:
    values = await run.step("fetch", fetch, source, retry=Retry(limit=4, delay="500ms", backoff="linear"))
    summary: dict[str, Any] = await run.step("summarise", summarise, values)
    return summary


@workflow("report", schedule="0 9 * * 1")
async def report(run: Run, sources: list[str] | None = None) -> dict[str, Any]:
    """Summarises several sources in parallel; every Monday at 09:00 UTC (serve --local and Cloudflare)."""
    names = sources or ["sales", "support", "marketing"]
    summaries = await run.parallel(*(summarise_source(run, name) for name in names))
    run.state["sources"] = len(names)
    answer = await run.ask("Publish the report?", schema={"type": "string", "enum": ["yes", "no"]},
                           timeout="1 day")
    return {"published": answer == "yes", "summaries": dict(zip(names, summaries, strict=True))}

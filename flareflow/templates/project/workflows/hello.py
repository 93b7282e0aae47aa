"""hello: a few steps, a flaky one that retries, a short durable sleep and two parallel steps."""

import asyncio
from typing import Any

from flareflow import Retry, Run, workflow

attempts = {"fetch": 0}


async def greet(name: str) -> str:
    await asyncio.sleep(0.2)
    return f"Hello, {name}!"


async def fetch_weather() -> dict[str, Any]:
    """Fails on the first attempt to show a retry with backoff."""
    attempts["fetch"] += 1
    await asyncio.sleep(0.1)
    if attempts["fetch"] == 1:
        raise ConnectionError("weather service did not answer")
    return {"sky": "clear", "celsius": 21}


async def count_letters(text: str) -> int:
    await asyncio.sleep(0.15)
    return sum(c.isalpha() for c in text)


async def shout(text: str) -> str:
    await asyncio.sleep(0.1)
    return text.upper()


@workflow("hello")
async def hello(run: Run, name: str = "world") -> dict[str, Any]:
    """Greets someone; completes with no input."""
    greeting = await run.step("greet", greet, name)
    run.state["greeting"] = greeting
    weather = await run.step("fetch weather", fetch_weather, retry=Retry(limit=3, delay="1s"))
    await run.sleep("pause", "1 second")
    letters, loud = await run.parallel(
        run.step("count letters", count_letters, greeting),
        run.step("shout", shout, greeting),
    )
    run.state["done"] = True
    return {"greeting": greeting, "loud": loud, "letters": letters, "weather": weather}

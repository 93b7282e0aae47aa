"""The ``config:ai`` document is read once per activation (`flareflow.ai.steps.RunAi`), not per call:
on the embedded runtime, in-process, with the state directory's key-value store counting its reads."""

from __future__ import annotations

import asyncio
from pathlib import Path

from flareflow import Run
from flareflow.ai.config import CONFIG_KEY
from flareflow.engine.registry import Registry
from flareflow.local import LocalRuntime
from flareflow.local.ai import FileKv, local_ai_host

from .standin import standin_server

REGISTRY = Registry()


async def three_then_sleep(run: Run) -> list[str]:
    answers = [await run.ai.generate(f"q{i}", cache=False) for i in range(3)]
    await run.sleep("pause", 0.2)  # the run suspends: the next activation reads the document again
    answers.append(await run.ai.generate("after", cache=False))
    return answers


REGISTRY.register(three_then_sleep, "three-then-sleep")


class CountingKv(FileKv):
    """The real file store, counting reads of the config document."""

    reads = 0

    async def get(self, key: str) -> str | None:
        if key == CONFIG_KEY:
            CountingKv.reads += 1
        return await super().get(key)


def test_config_document_is_read_once_per_activation(tmp_path: Path) -> None:
    async def body() -> None:
        with standin_server() as standin:
            async with LocalRuntime(tmp_path / "state", REGISTRY) as rt:
                host = local_ai_host(rt.state_dir, {"base_url": standin.url, "model": "m"}, rt.index, rt.clock.now)
                host.kv = CountingKv(rt.state_dir / "kv", rt.clock.now)
                host.kv.write(CONFIG_KEY, '{"temperature": 0.4}')
                rt.ai = host
                obj = await rt.start_run("three-then-sleep")
                done = await rt.until_finished(obj.run_id)
                assert done.status == "completed", done.info
                assert [r["body"]["temperature"] for r in standin.chat_calls()] == [0.4] * 4
        assert CountingKv.reads == 2  # two activations (before and after the sleep), four calls

    asyncio.run(body())

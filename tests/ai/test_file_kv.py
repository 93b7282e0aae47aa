"""The embedded runtime's key-value files (the AI answer cache, ``config:ai``): an entry lives for its
TTL and is gone after it, as in KV; a damaged or foreign file reads as absent."""

from __future__ import annotations

import asyncio
from pathlib import Path

from flareflow.local.ai import FileKv


def test_entries_expire_and_damage_reads_as_absent(tmp_path: Path) -> None:
    now = [1000.0]
    kv = FileKv(tmp_path / "kv", lambda: now[0])
    asyncio.run(kv.put("ai:abc", "answer", 60))
    kv.write("config:ai", "{}")  # for good
    assert asyncio.run(kv.get("ai:abc")) == "answer"
    now[0] += 59
    assert kv.read("ai:abc") == "answer"
    now[0] += 2
    assert kv.read("ai:abc") is None and len(list((tmp_path / "kv").iterdir())) == 1  # the file went too
    assert kv.read("config:ai") == "{}"
    path = next((tmp_path / "kv").iterdir())
    path.write_text("{not json")
    assert kv.read("config:ai") is None
    assert kv.read("never") is None

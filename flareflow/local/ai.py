"""The embedded runtime's AI ports: an OpenAI-compatible client over urllib (in a thread), a key-value
store of files in the state directory (the answer cache and ``config:ai``), the call log in ``index.db``.

Layout under the state directory: ``kv/<sha256 of the key>.json`` holding ``{"key", "expires", "text"}``
(``expires`` null: for good), written atomically (a temporary file, then a rename).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ..ai.errors import AiNotConfigured, AiUnreachable
from ..ai.host import AiHost, StreamSink
from ..ai.openai import LineSink, OpenAiProvider
from ..ai.ports import Provider
from ..migrations.ai_calls import COLUMNS, INSERT, MAX_LIMIT, insert_params, list_query, listed
from .index import RunIndex


class UrllibTransport:
    """`flareflow.ai.openai.Transport` with urllib in a worker thread (the loop never blocks)."""

    async def post(self, url: str, headers: dict[str, str], body: bytes, timeout: float,
                   on_line: LineSink | None = None) -> tuple[int, str]:
        loop = asyncio.get_running_loop()
        deliver: Callable[[str], None] | None = None
        if on_line is not None:
            sink = on_line

            def deliver(line: str) -> None:  # lines reach the loop in order, before the result does
                loop.call_soon_threadsafe(sink, line)

        return await asyncio.to_thread(self._post, url, headers, body, timeout, deliver)

    @staticmethod
    def _post(url: str, headers: dict[str, str], body: bytes, timeout: float,
              on_line: Callable[[str], None] | None) -> tuple[int, str]:
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                status = int(response.status)
                if on_line is None or status >= 400:
                    return status, response.read().decode("utf-8", "replace")
                for raw in response:
                    on_line(raw.decode("utf-8", "replace"))
                return status, ""
        except urllib.error.HTTPError as exc:
            return int(exc.code), exc.read().decode("utf-8", "replace")
        except (urllib.error.URLError, OSError, TimeoutError) as exc:
            reason = getattr(exc, "reason", exc)
            raise AiUnreachable(f"AI provider {url} unreachable: {reason}") from None  # run.ai names the setting


class FileKv:
    """`flareflow.ai.ports.Kv` on files under ``root`` (one per key; expired entries read as absent)."""

    def __init__(self, root: Path, clock: Callable[[], float] = time.time) -> None:
        self.root = root
        self.clock = clock

    def _path(self, key: str) -> Path:
        return self.root / f"{hashlib.sha256(key.encode('utf-8')).hexdigest()}.json"

    def read(self, key: str) -> str | None:
        try:
            entry = json.loads(self._path(key).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(entry, dict) or entry.get("key") != key:
            return None
        expires = entry.get("expires")
        if isinstance(expires, (int, float)) and expires <= self.clock():
            with contextlib.suppress(OSError):  # expired: gone, as from KV
                self._path(key).unlink()
            return None
        text = entry.get("text")
        return text if isinstance(text, str) else None

    def write(self, key: str, text: str, ttl: int | None = None) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        path = self._path(key)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        expires = None if ttl is None else self.clock() + ttl
        tmp.write_text(json.dumps({"key": key, "expires": expires, "text": text}), encoding="utf-8")
        os.replace(tmp, path)

    async def get(self, key: str) -> str | None:
        return self.read(key)

    async def put(self, key: str, text: str, ttl: int | None = None) -> None:
        self.write(key, text, ttl)


class IndexCallLog:
    """`flareflow.ai.ports.CallLog` in the local index (the same table and queries as D1's)."""

    def __init__(self, index: RunIndex) -> None:
        self.index = index

    async def record(self, row: dict[str, Any]) -> None:
        self.index.sql.exec(INSERT, *insert_params(row))

    def list(self, run_id: str | None, model: str | None, limit: int) -> list[dict[str, Any]]:
        sql, params = list_query(run_id=run_id, model=model, limit=min(limit, MAX_LIMIT))
        return [listed(dict(zip(("id", *COLUMNS), row, strict=True))) for row in self.index.sql.exec(sql, *params)]


def openai_provider(config: dict[str, Any], environ: Mapping[str, str], transport: UrllibTransport) -> Provider:
    """The OpenAI-compatible provider the settings name; `AiNotConfigured` naming what is missing."""
    base_url = config.get("base_url")
    if not base_url:
        raise AiNotConfigured("run.ai: no AI provider for the local runtime; set tool.flareflow.ai.base_url in "
                              "pyproject.toml (an OpenAI-compatible server, e.g. http://127.0.0.1:11434/v1)")
    key_env = config.get("api_key_env")
    key = None
    if key_env:
        key = environ.get(str(key_env))
        if not key:
            raise AiNotConfigured(f"run.ai: the environment variable {key_env} (tool.flareflow.ai.api_key_env) "
                                  "is not set")
    return OpenAiProvider(str(base_url), key, transport, float(config.get("timeout") or 120.0))


def local_ai_host(state_dir: Path, settings: dict[str, Any] | None, index: RunIndex, now: Callable[[], float],
                  *, environ: Mapping[str, str] | None = None, stream: StreamSink | None = None) -> AiHost:
    """The embedded runtime's `AiHost` (``LocalRuntime.ai``)."""
    transport = UrllibTransport()
    env = environ if environ is not None else os.environ
    return AiHost("local", settings, providers=lambda config: openai_provider(config, env, transport),
                  kv=FileKv(state_dir / "kv", now), log=IndexCallLog(index), now=now, stream=stream)

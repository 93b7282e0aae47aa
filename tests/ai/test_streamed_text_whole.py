"""``flareflow run`` never shows a cut streamed answer: ``--url`` connects once the run has started, so
the first pieces may have been sent before it joined (live frames are not replayed); the step's
``step.completed`` then brings the whole answer, which follows the partial line. Both the printer
itself (deterministic) and the CLI against the local server (a process, as a user runs it)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from rich.console import Console

from flareflow.cli.tokens import TokenPrinter
from tests.api.hosts import make_server
from tests.cli.helpers import describe, ff

from .project import write_project
from .standin import standin_server

WORDS = " ".join(f"w{i}" for i in range(12))


class View:
    def pause(self) -> None:
        return


def printed(frames: list[str], value: Any) -> str:
    out = io.StringIO()
    printer = TokenPrinter(Console(file=out, force_terminal=False), View(), json_mode=False)  # type: ignore[arg-type]
    for text in frames:
        printer.frame({"type": "ai.token", "run_id": "r", "step": "ai.generate#1", "text": text})
    printer.end_line({"type": "step.completed", "seq": 3, "step": "ai.generate#1",
                      "result": {"value": value, "source": "ai"}})
    return out.getvalue()


def test_a_joined_late_stream_is_followed_by_the_whole_answer() -> None:
    late = printed([" w10", " w11"], WORDS)
    assert late.splitlines()[0] == "    w10 w11"
    assert f"    {WORDS}" in late.splitlines(), late
    whole = printed(["w0", *(f" w{i}" for i in range(1, 12))], WORDS)
    assert whole.splitlines() == [f"    {WORDS}"]  # all of it was seen: nothing repeated
    assert printed([" w11"], {"ok": True}).splitlines() == ["    w11"]  # a schema answer: not text
    # a multi-line answer stays indented under its step, streamed or in full
    assert printed(["one\n\ntwo", " three"], "one\n\ntwo three").splitlines() == ["    one", "    ", "    two three"]
    assert printed(["three"], "one\ntwo three").splitlines()[-2:] == ["    one", "    two three"]


def test_flareflow_run_url_shows_the_whole_streamed_answer(tmp_path: Path) -> None:
    with standin_server() as standin:
        server = make_server("local", tmp_path / "srv", lambda root: write_project(root, standin.url))
        try:
            standin.chunk_delay = 0.1
            for _ in range(3):  # whether or not the first pieces came before the CLI joined
                standin.script = [WORDS]
                result = ff("run", "streamed", "--input", '"go"', "--url", server.url, "--token", server.token,
                            cwd=tmp_path, timeout=60)
                assert result.returncode == 0, describe(result)
                assert f"    {WORDS}" in result.stdout.splitlines(), repr(result.stdout)
        finally:
            server.stop()

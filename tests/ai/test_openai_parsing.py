"""The OpenAI-compatible provider's request bodies and answer parsing (`flareflow.ai.openai`), over a
recording transport (a test double of the host's HTTP port): plain and streamed chat, embeddings in
``index`` order, error bodies, and malformed answers being retryable."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from flareflow.ai.errors import AiRequestRefused, AiUnavailable
from flareflow.ai.openai import LineSink, OpenAiProvider


class Recording:
    """A `Transport` test double: answers what it was given, records what it was asked."""

    def __init__(self, status: int, body: str = "", lines: list[str] | None = None) -> None:
        self.status, self.body, self.lines = status, body, lines or []
        self.asked: list[tuple[str, dict[str, str], dict[str, Any]]] = []

    async def post(self, url: str, headers: dict[str, str], body: bytes, timeout: float,
                   on_line: LineSink | None = None) -> tuple[int, str]:
        self.asked.append((url, headers, json.loads(body)))
        if on_line is not None:
            for line in self.lines:
                on_line(line)
            return self.status, ""
        return self.status, self.body


def test_chat_body_and_answer() -> None:
    answer = {"choices": [{"message": {"content": "hi"}}], "usage": {"prompt_tokens": 3, "completion_tokens": 1}}
    transport = Recording(200, json.dumps(answer))
    provider = OpenAiProvider("http://h:1/v1/", "sk", transport)
    done = asyncio.run(provider.chat("m", [{"role": "user", "content": "q"}],
                                     {"temperature": 0, "max_tokens": 5, "json": True}, None))
    assert (done.text, done.prompt_tokens, done.completion_tokens) == ("hi", 3, 1)
    url, headers, body = transport.asked[0]
    assert url == "http://h:1/v1/chat/completions" and headers["authorization"] == "Bearer sk"
    assert body == {"model": "m", "messages": [{"role": "user", "content": "q"}], "temperature": 0,
                    "max_tokens": 5, "response_format": {"type": "json_object"}}


def test_streamed_chat() -> None:
    chunks = [{"choices": [{"delta": {"content": "a"}}]}, {"choices": [{"delta": {}}]},
              {"choices": [{"delta": {"content": " b"}}]}, {"choices": [], "usage": {"completion_tokens": 2}}]
    lines = [f"data: {json.dumps(c)}" for c in chunks] + ["", ": comment", "data: [DONE]"]
    pieces: list[str] = []
    transport = Recording(200, lines=lines)
    done = asyncio.run(OpenAiProvider("http://h/v1", None, transport).chat("m", [], {}, pieces.append))
    assert pieces == ["a", " b"] and done.text == "a b" and done.completion_tokens == 2
    assert transport.asked[0][2]["stream"] is True and "authorization" not in transport.asked[0][1]


def test_embeddings_in_index_order() -> None:
    data = {"data": [{"index": 1, "embedding": [2]}, {"index": 0, "embedding": [1]}]}
    done = asyncio.run(OpenAiProvider("http://h/v1", None, Recording(200, json.dumps(data))).embed("e", ["x", "y"]))
    assert done.vectors == [[1.0], [2.0]]


@pytest.mark.parametrize(("status", "body", "error", "needle"), [
    (400, '{"error": {"message": "no such model"}}', AiRequestRefused, "no such model"),
    (429, '{"error": "slow down"}', AiUnavailable, "slow down"),
    (503, "upstream gone", AiUnavailable, "upstream gone"),
    (200, "<html>", AiUnavailable, "not JSON"),
    (200, '{"choices": []}', AiUnavailable, "choices[0]"),
])
def test_failures(status: int, body: str, error: type[Exception], needle: str) -> None:
    provider = OpenAiProvider("http://h/v1", None, Recording(status, body))
    with pytest.raises(error) as raised:
        asyncio.run(provider.chat("m", [], {}, None))
    assert needle in str(raised.value)

"""AI steps: each run.ai call is a durable step -- recorded once, replayed without a request, retried
on rate limits and server errors, and answered from the cache when the same call was made before.

    flareflow run ask-docs --input '"How do I retry a step?"'
    flareflow ai log
"""

import math
from typing import Any

from flareflow import Run, workflow

NOTES = [
    "A step is retried with backoff when it raises; NonRetryableError fails it at once.",
    "run.sleep is a durable timer: the run may stop and resume while it waits.",
    "run.ask waits for a person's answer, checked against a JSON schema.",
]


def cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norm if norm else 0.0


@workflow("ask-docs")
async def ask_docs(run: Run, question: str) -> dict[str, Any]:
    """Answer a question from the closest note (embeddings), then a JSON verdict on the answer."""
    notes = await run.ai.embed(NOTES)  # one vector per note (cached: a second run costs nothing)
    query = await run.ai.embed(question)
    best = max(range(len(NOTES)), key=lambda i: cosine(query, notes[i]))
    answer = await run.ai.generate(f"Note: {NOTES[best]}\n\nQuestion: {question}",
                                   system="Answer in one sentence, using the note.", stream=True)
    verdict = await run.ai.generate(f"Does this answer the question '{question}'? {answer}",
                                    schema={"type": "object", "properties": {"ok": {"type": "boolean"}},
                                            "required": ["ok"]})
    return {"answer": answer, "note": NOTES[best], "ok": verdict["ok"]}

"""The AI routes of the one API, host-agnostic: ``GET /ai/calls`` (the call log), ``GET`` / ``PUT
/ai/config`` (the ``config:ai`` document every run reads once per activation: KV on Cloudflare, the
state directory's key-value files locally; checked like ``[tool.flareflow.ai]``, 400 naming the key;
``PUT {}`` clears it)
and ``POST /api/workflow`` (the design's endpoint: a run of the built-in ``ai-prompt`` workflow,
answered when it has finished).

``POST /api/workflow {"prompt", "model"?}`` answers ``200 {"result", "source": "ai" | "cache",
"run_id"}`` once the run completed; a run that failed answers ``502 ai_failed`` with the run's error
message (which names the ``run_id``); one still running after `WAIT_SECONDS` answers ``202 {"run_id", "status"}``
(follow it at ``/runs/{run_id}``). A project without ``[tool.flareflow.ai]`` has no ``ai-prompt``:
404 ``workflow_not_found`` saying to add that table.
"""

from __future__ import annotations

import re
from typing import Any, Final

from ..ai.config import CONFIG_KEY, check_config
from ..ai.prompt import AI_PROMPT
from ..engine.errors import WorkflowNotFound
from ..engine.status import RunStatus
from .backend import Backend
from .http import HttpError, Response

#: How long ``POST /api/workflow`` waits for its run before answering 202.
WAIT_SECONDS: Final = 25.0
_RUN_ID = re.compile(r"^[0-9a-f]{8,64}$")
_MAX_PROMPT = 100_000


async def ai_calls_response(backend: Backend, query: dict[str, str]) -> Response:
    run_id = query.get("run") or None
    if run_id is not None and not _RUN_ID.match(run_id):
        raise HttpError(400, "invalid_parameter", "'run' must be a run id", "run")
    model = query.get("model") or None
    if model is not None and len(model) > 256:
        raise HttpError(400, "invalid_parameter", "'model' is longer than 256 characters", "model")
    raw = query.get("limit") or "50"
    if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw[:6]) <= 500:
        raise HttpError(400, "invalid_parameter", "'limit' must be between 1 and 500", "limit")
    return Response(200, {"calls": await backend.ai_calls(run_id, model, int(raw))})


async def api_workflow_response(backend: Backend, body: dict[str, Any]) -> Response:
    unknown = sorted(set(body) - {"prompt", "model"})
    if unknown:
        raise HttpError(400, "unknown_field", f"unknown field '{unknown[0][:80]}'", unknown[0][:80])
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise HttpError(400, "missing_field" if prompt is None else "invalid_field",
                        "'prompt' must be a non-empty string", "prompt")
    if len(prompt) > _MAX_PROMPT:
        raise HttpError(400, "invalid_field", f"'prompt' is longer than {_MAX_PROMPT} characters", "prompt")
    model = body.get("model")
    if model is not None and (not isinstance(model, str) or not model.strip() or len(model) > 256):
        raise HttpError(400, "invalid_field", "'model' must be a non-empty string", "model")
    value: dict[str, Any] = {"prompt": prompt}
    if model is not None:
        value["model"] = model
    try:
        run, _ = await backend.start(AI_PROMPT, value, None)
    except WorkflowNotFound:
        raise HttpError(404, "workflow_not_found", "POST /api/workflow runs the built-in ai-prompt workflow, which "
                        "exists only where AI steps are configured: add [tool.flareflow.ai] (base_url, model) to "
                        "pyproject.toml", None) from None
    run_id = str(run["id"])
    run = await backend.finished(run_id, WAIT_SECONDS)
    status = run.get("status")
    if status == RunStatus.COMPLETED:
        output = run.get("output") or {}
        return Response(200, {"result": output.get("result"), "source": output.get("source"),
                              "model": output.get("model"), "run_id": run_id})
    if status in (RunStatus.FAILED, RunStatus.CANCELLED):
        error = run.get("error")
        message = error.get("message") if isinstance(error, dict) else str(error)
        cause = error.get("cause") if isinstance(error, dict) else None
        if isinstance(cause, dict) and cause.get("message"):
            message = str(cause["message"])
        raise HttpError(502, "ai_failed", f"the ai-prompt run {run_id} {status}: {message}")
    return Response(202, {"run_id": run_id, "status": status}, {"location": f"/runs/{run_id}"})


async def ai_config_response(backend: Backend, body: dict[str, Any] | None) -> Response:
    """``GET /ai/config`` (``body`` None): ``{"config": document | null}``; ``PUT``: store ``body``.
    ``PUT {}`` clears it (``flareflow ai config clear``): an empty document overrides nothing, so it is
    answered as none, and both hosts clear it the same way without a route of its own."""
    checked = None if body is None else check_config(body, CONFIG_KEY)
    return Response(200, {"config": await backend.ai_config(checked) or None})

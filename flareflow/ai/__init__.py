"""AI steps: ``run.ai.generate / chat / embed`` as durable steps over an Ai port.

Layout: `config` (settings and their layers), `ports` (Provider, Kv, CallLog), `openai` (the
OpenAI-compatible provider over a host's HTTP transport), `steps` (`RunAi`: the step logic, cache and
schema re-asks), `host` (`AiHost`: what a host hands ``run.ai``), `prompt` (the built-in ``ai-prompt``
workflow behind ``POST /api/workflow``), `cloudflare` (the Worker's ports: the ``AI`` binding, KV,
D1, ``fetch``). The call log's queries are `flareflow.migrations.ai_calls`. Everything but
`cloudflare` is host-agnostic and standard library only; the whole package ships inside the Worker.
"""

from .errors import AiNotConfigured, AiRequestRefused, AiSchemaError, AiUnavailable
from .steps import AI_RETRY, RunAi

__all__ = ["AI_RETRY", "AiNotConfigured", "AiRequestRefused", "AiSchemaError", "AiUnavailable", "RunAi"]

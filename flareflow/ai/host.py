"""`AiHost`: what a host hands ``run.ai`` -- its name, the project's settings and the ports.

The local runtime and the Durable Object shell each build one (`flareflow.local.ai`,
`flareflow.durable_objects.ai_ports`) and give it to every run coordinator; the engine's ``run.ai`` calls it with
the `Run` of an activation and gets that activation's `RunAi`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .ports import CallLog, Kv, Provider
from .steps import RunAi

if TYPE_CHECKING:
    from ..engine.run import Run

#: ``publish(run_id, step, text)``: a streamed piece of an answer to the run's live clients.
StreamSink = Callable[[str, str, str], None]


class AiHost:
    """One host's AI ports. ``providers(config)`` returns the provider the layered settings choose, or
    raises `flareflow.ai.errors.AiNotConfigured` naming the setting to add."""

    def __init__(self, name: str, settings: dict[str, Any] | None, *, providers: Callable[[dict[str, Any]], Provider],
                 kv: Kv | None, log: CallLog | None, now: Callable[[], float],
                 stream: StreamSink | None = None, defaults: Callable[[str, bool], str | None] | None = None) -> None:
        self.name = name
        self.settings = dict(settings or {})
        self.providers = providers
        self.kv = kv
        self.log = log
        self.now = now
        self.stream = stream
        self._defaults = defaults

    def __call__(self, run: Run) -> RunAi:
        return RunAi(run, self)

    def provider(self, config: dict[str, Any]) -> Provider:
        return self.providers(config)

    def default_model(self, provider: str, *, embed: bool) -> str | None:
        """``provider``'s own default model when the settings name none (Workers AI has some)."""
        return self._defaults(provider, embed) if self._defaults is not None else None


def unconfigured(_: Any) -> Any:
    """``run.ai`` on a host that has no AI ports at all."""
    from .errors import AiNotConfigured

    raise AiNotConfigured("run.ai: no AI provider is configured; set tool.flareflow.ai.base_url "
                          "(an OpenAI-compatible server, e.g. http://127.0.0.1:11434/v1)")

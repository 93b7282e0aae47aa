"""Project settings: ``[tool.flareflow]`` in the project's ``pyproject.toml``, validated by pydantic.

A project made by ``flareflow new`` needs no settings at all; every field has a default. Errors name
the key as the user wrote it (``tool.flareflow.local.sync: ...``).
"""

from __future__ import annotations

import datetime as dt
import re
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..ai.config import check_config
from ..engine.errors import InvalidInput
from ..engine.limits import DEFAULT_MAX_BODY, DEFAULT_PAYLOAD_THRESHOLD
from .errors import UserError


class SettingsError(UserError):
    """pyproject.toml or its ``[tool.flareflow]`` table is wrong; the message names the key."""


class LocalSettings(BaseModel):
    """The embedded runtime."""

    model_config = ConfigDict(extra="forbid")

    state_dir: str = Field(".flareflow/state", description="Where run databases live, relative to the project.")
    sync: Literal["normal", "full"] = Field(
        "normal",
        description="SQLite durability: 'normal' survives a process crash, 'full' also a power cut.",
    )
    step_threads: int = Field(
        8, ge=1, le=1024,
        description="Sync step functions that may run at once, each in its own thread off the event loop.",
    )


class DevSettings(BaseModel):
    """The development server (``flareflow serve``)."""

    model_config = ConfigDict(extra="forbid")

    host: str = Field("127.0.0.1", description="Interface to listen on.")
    port: int = Field(8787, ge=1, le=65535, description="Port to listen on.")
    token: str | None = Field(
        None, min_length=16,
        description="API bearer token; prefer the FLAREFLOW_TOKEN environment variable. Generated if unset.",
    )
    max_body: int = Field(DEFAULT_MAX_BODY, ge=1024, description="Largest request body in bytes (413 beyond).")
    header_timeout: float = Field(
        10.0, gt=0, le=3600,
        description="Seconds a connection has to send a request's complete headers (serve --local; closed after).",
    )
    body_timeout: float = Field(
        30.0, gt=0, le=3600, description="Seconds a request's body has to arrive after its headers (408 after).",
    )
    max_connections: int = Field(
        1000, ge=1,
        description="Connections served at once (serve --local; 503 beyond). Never more than the connections' "
                    "share of the descriptor limit (ulimit -n 1024: 360), so they cannot starve the run databases.",
    )


WORKER_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
#: Python Workers run Pyodide 0.28.2 (CPython 3.13) from this compatibility date on.
MIN_COMPATIBILITY_DATE = "2025-09-29"
DEFAULT_COMPATIBILITY_DATE = "2025-10-01"


class WorkerSettings(BaseModel):
    """The Cloudflare Worker the build generates."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, description="Worker name (default: the project name, slugified).")
    compatibility_date: str = Field(DEFAULT_COMPATIBILITY_DATE, description="Workers compatibility date.")
    routes: list[str] = Field(default_factory=list, description="Routes such as 'example.com/api/*'.")
    vars: dict[str, str] = Field(default_factory=dict, description="Plain-text environment variables.")
    secrets: list[str] = Field(default_factory=list, description="Names of secrets the Worker needs.")
    dependencies: list[str] | None = Field(
        None, description="Runtime packages to vendor (default: [project].dependencies without flareflow)."
    )
    payload_threshold: int = Field(DEFAULT_PAYLOAD_THRESHOLD, ge=256,
                                   description="JSON payloads above this many bytes go to R2.")
    url: str | None = Field(
        None, description="The deployed Worker's URL (https://NAME.SUBDOMAIN.workers.dev): flareflow deploy "
                          "replays its unfinished runs against the new code first (like --url).",
    )

    @field_validator("name")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        if value is not None and not WORKER_NAME.match(value):
            raise ValueError("use 1-63 lowercase letters, digits and dashes, not starting or ending with a dash")
        return value

    @field_validator("compatibility_date")
    @classmethod
    def _date(cls, value: str) -> str:
        try:
            dt.date.fromisoformat(value)
        except ValueError:
            raise ValueError("expected a date like 2025-10-01") from None
        if value < MIN_COMPATIBILITY_DATE:
            raise ValueError(f"must be {MIN_COMPATIBILITY_DATE} or later (Pyodide 0.28.2 / Python 3.13)")
        return value

    @field_validator("secrets")
    @classmethod
    def _secrets(cls, value: list[str]) -> list[str]:
        for name in value:
            if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", name):
                raise ValueError(f"'{name}' is not a valid secret name")
        return value


class ResourceSettings(BaseModel):
    """Cloudflare resources: true for the default name, a string for your own, false for none."""

    model_config = ConfigDict(extra="forbid")

    d1: bool | str = Field(True, description="D1 database holding the index of runs.")
    r2: bool | str = Field(True, description="R2 bucket for large payloads.")
    kv: bool | str = Field(True, description="KV namespace caching the manifest and config reads.")
    queues: bool | str = Field(True, description="Queue for asynchronous starts (plus a dead-letter queue).")


class Settings(BaseModel):
    """Everything under ``[tool.flareflow]``."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, description="Project name (defaults to [project].name or the folder).")
    workflows: list[str] = Field(
        default_factory=lambda: ["workflows"],
        description="Folders or dotted modules to import workflows from, relative to the project.",
    )
    local: LocalSettings = Field(default_factory=lambda: LocalSettings.model_validate({}))
    dev: DevSettings = Field(default_factory=lambda: DevSettings.model_validate({}))
    worker: WorkerSettings = Field(default_factory=lambda: WorkerSettings.model_validate({}))
    resources: ResourceSettings = Field(default_factory=lambda: ResourceSettings.model_validate({}))
    ai: dict[str, Any] | None = Field(
        None, description="AI steps (run.ai): base_url, api_key_env, model, embed_model, models, cache_ttl, ... "
                          "(flareflow.ai.config.DEFAULTS). None: the project uses no AI provider.",
    )

    @field_validator("ai")
    @classmethod
    def _ai(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is None:
            return None
        try:
            return check_config(value)
        except InvalidInput as exc:
            raise ValueError(str(exc).removeprefix("tool.flareflow.ai.")) from None

    @field_validator("workflows")
    @classmethod
    def _non_empty(cls, value: list[str]) -> list[str]:
        if not value or any(not isinstance(v, str) or not v.strip() for v in value):
            raise ValueError("list at least one folder or module, e.g. [\"workflows\"]")
        return value


def _format(exc: ValidationError) -> str:
    lines = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"])
        key = "tool.flareflow" + (f".{where}" if where else "")
        message = error["msg"]
        if error["type"] == "extra_forbidden":
            message = "unknown setting"
        lines.append(f"{key}: {message}")
    return "; ".join(lines)


def load_settings(root: Path) -> tuple[Settings, dict[str, Any]]:
    """Settings of the project at ``root`` and its whole parsed pyproject (empty if there is none)."""
    path = root / "pyproject.toml"
    if not path.exists():
        return Settings.model_validate({}), {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SettingsError(f"{path}: invalid TOML ({exc})") from None
    table = data.get("tool", {}).get("flareflow", {})
    if not isinstance(table, dict):
        raise SettingsError("tool.flareflow: must be a table")
    try:
        return Settings.model_validate(table), data
    except ValidationError as exc:
        raise SettingsError(f"{path.name}: {_format(exc)}") from None

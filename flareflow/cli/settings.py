"""Project settings: ``[tool.flareflow]`` in the project's ``pyproject.toml``, validated by pydantic.

A project made by ``flareflow new`` needs no settings at all; every field has a default. Errors name
the key as the user wrote it (``tool.flareflow.local.sync: ...``).
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator


class SettingsError(Exception):
    """pyproject.toml or its ``[tool.flareflow]`` table is wrong; the message names the key."""


class LocalSettings(BaseModel):
    """The embedded runtime."""

    model_config = ConfigDict(extra="forbid")

    state_dir: str = Field(".flareflow/state", description="Where run databases live, relative to the project.")
    sync: Literal["normal", "full"] = Field(
        "normal",
        description="SQLite durability: 'normal' survives a process crash, 'full' also a power cut.",
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
    max_body: int = Field(1024 * 1024, ge=1024, description="Largest request body in bytes (413 beyond).")


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

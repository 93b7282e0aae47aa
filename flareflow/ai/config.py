"""AI settings and their layers: built-in defaults < ``[tool.flareflow.ai]`` < the ``config:ai`` KV
document < the call's own arguments.

The same checks run on the project's table (the CLI validates it when it loads the project) and on
the KV document (read once per activation, inside the Worker too), so both name the key at fault the
same way. Standard library only: this module ships inside the Worker.
"""

from __future__ import annotations

from typing import Any, Final

from ..engine.errors import InvalidInput, did_you_mean

#: Where the layered document lives in the key-value store (KV on Cloudflare, the state dir locally).
CONFIG_KEY: Final = "config:ai"
#: The host names a ``models`` entry maps: the embedded runtime and the Worker.
HOSTS: Final = ("local", "cloudflare")

#: The layers by the names messages and ``flareflow ai config show`` give them, lowest first (between
#: the project's table and the call comes `CONFIG_KEY`).
DEFAULT_LAYER: Final = "default"
PROJECT_LAYER: Final = "tool.flareflow.ai"
CALL_LAYER: Final = "run.ai"
#: The setting each host's OpenAI-compatible provider takes its address from.
URL_SETTING: Final = {"local": "base_url", "cloudflare": "worker_base_url"}

#: Every setting with its default. ``models`` maps a name workflows use to each host's model name
#: (``{"fast": {"local": "llama3.2", "cloudflare": "@cf/meta/llama-3.1-8b-instruct"}}``).
DEFAULTS: Final[dict[str, Any]] = {
    "base_url": None,          # the OpenAI-compatible server (.../v1) of the local runtime
    "worker_base_url": None,   # one the Worker calls instead of its Workers AI binding (None: the binding)
    "gateway": None,           # the AI Gateway (its id) the Worker's binding calls go through
    "api_key_env": None,       # the NAME of the environment variable holding its API key
    "model": None,             # default model of generate / chat
    "embed_model": None,       # default model of embed
    "models": {},
    "temperature": None,
    "max_tokens": None,
    "cache": True,             # look answers up in (and write them to) the cache
    "cache_ttl": 3600,         # seconds a cached answer lives
    "schema_retries": 2,       # re-asks after an answer that fails its schema
    "timeout": 120.0,          # seconds one provider request may take
}

#: Workers AI's defaults when a Worker uses its ``AI`` binding and names no model.
WORKERS_AI_MODEL: Final = "@cf/meta/llama-3.1-8b-instruct"
WORKERS_AI_EMBED_MODEL: Final = "@cf/baai/bge-base-en-v1.5"


def _fail(where: str, key: str, message: str) -> InvalidInput:
    return InvalidInput(f"{where}.{key}: {message}", key)


def check_config(doc: Any, where: str = "tool.flareflow.ai") -> dict[str, Any]:
    """``doc`` checked key by key (unknown keys and wrong types are refused, naming ``where.key``)."""
    if not isinstance(doc, dict):
        raise InvalidInput(f"{where}: must be a table / JSON object", where)
    out: dict[str, Any] = {}
    for key, value in doc.items():
        if key not in DEFAULTS:
            hint = did_you_mean(str(key), tuple(DEFAULTS))
            raise _fail(where, str(key), f"unknown setting{hint}" if hint else
                        f"unknown setting (known: {', '.join(DEFAULTS)})")
        if value is None:
            out[key] = None
            continue
        if key in ("base_url", "worker_base_url", "api_key_env", "model", "embed_model", "gateway"):
            if not isinstance(value, str) or not value.strip():
                raise _fail(where, key, "must be a non-empty string")
            if key.endswith("base_url") and not value.startswith(("http://", "https://")):
                raise _fail(where, key, "must be an http:// or https:// URL, e.g. http://127.0.0.1:11434/v1")
            if key == "api_key_env" and not value.replace("_", "a").isalnum():
                raise _fail(where, key, "must be the name of an environment variable (not the key itself)")
        elif key == "models":
            out[key] = _check_models(value, where)
            continue
        elif key in ("temperature", "timeout"):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise _fail(where, key, "must be a number >= 0")
            value = float(value)
        elif key in ("max_tokens", "cache_ttl", "schema_retries"):
            if isinstance(value, bool) or not isinstance(value, int) or value < (0 if key == "schema_retries" else 1):
                raise _fail(where, key, "must be a positive integer")
            if key == "cache_ttl" and value < 60:
                raise _fail(where, key, "must be at least 60 seconds (the shortest TTL KV accepts)")
        elif key == "cache" and not isinstance(value, bool):
            raise _fail(where, key, "must be true or false")
        out[key] = value
    return out


def _check_models(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _fail(where, "models", "must map names to model names (a string, or one per host)")
    for name, target in value.items():
        if isinstance(target, str) and target.strip():
            continue
        if isinstance(target, dict) and target and all(
                h in HOSTS and isinstance(m, str) and m.strip() for h, m in target.items()):
            continue
        raise _fail(where, "models", f"'{name}' must be a model name or a table of {' / '.join(HOSTS)} model names")
    return dict(value)


def layered(*layers: dict[str, Any] | None) -> dict[str, Any]:
    """The defaults overlaid by each layer in turn (``None`` values do not override; ``models`` merge)."""
    out = {**DEFAULTS, "models": {}}
    for layer in layers:
        for key, value in (layer or {}).items():
            if value is None:
                continue
            out[key] = {**out["models"], **value} if key == "models" else value
    return out


def origins(*layers: tuple[str, dict[str, Any] | None]) -> dict[str, str]:
    """For each setting, the name of the layer (``(name, layer)`` pairs, lowest first) its `layered`
    value comes from: the last that sets it, `DEFAULT_LAYER` if none does. ``models`` merge, so it
    names every layer that adds names (``tool.flareflow.ai + config:ai``)."""
    out = dict.fromkeys(DEFAULTS, DEFAULT_LAYER)
    models: list[str] = []
    for name, layer in layers:
        for key, value in (layer or {}).items():
            if value is None or key not in out:
                continue
            if key == "models":
                models += [name] if value else []
            else:
                out[key] = name
    if models:
        out["models"] = " + ".join(models)
    return out


def setting_origin(key: str, layer: str) -> str:
    """Where setting ``key`` of ``layer`` is written, as an error message names it, so a user fixes the
    value in the place it came from (a ``config:ai`` document overrides pyproject.toml)."""
    if layer == PROJECT_LAYER:
        return f"{PROJECT_LAYER}.{key} in pyproject.toml"
    if layer == CONFIG_KEY:
        return f"{key} of the {CONFIG_KEY} document that flareflow ai config push wrote"
    if layer == CALL_LAYER:
        return f"the call's {key}= argument"
    return f"the default {key}"


def resolve_model(config: dict[str, Any], name: str | None, host: str, *, embed: bool = False) -> str | None:
    """The host's model for ``name`` (or the configured default), through ``models``."""
    chosen = name if name is not None else config["embed_model" if embed else "model"]
    if chosen is None:
        return None
    target = config["models"].get(chosen)
    if isinstance(target, dict):
        return str(target.get(host, chosen))
    return str(target) if isinstance(target, str) else chosen

"""AI settings (`flareflow.ai.config`): the checks shared by ``[tool.flareflow.ai]`` and the ``config:ai``
document (each message names the key), the layers, and the ``models`` map per host."""

from __future__ import annotations

import pytest

from flareflow.ai.config import DEFAULTS, check_config, layered, resolve_model
from flareflow.engine.errors import InvalidInput


@pytest.mark.parametrize(("doc", "key", "needle"), [
    ({"colour": 1}, "colour", "unknown setting"),
    ({"base_url": "127.0.0.1:11434"}, "base_url", "http:// or https://"),
    ({"api_key_env": "sk-abc def"}, "api_key_env", "name of an environment variable"),
    ({"temperature": -1}, "temperature", ">= 0"),
    ({"temperature": True}, "temperature", "number"),
    ({"max_tokens": 0}, "max_tokens", "positive integer"),
    ({"cache_ttl": 30}, "cache_ttl", "at least 60"),
    ({"cache": "yes"}, "cache", "true or false"),
    ({"models": {"fast": {"laptop": "x"}}}, "models", "'fast'"),
    ({"models": ["x"]}, "models", "map names"),
])
def test_bad_settings_name_the_key(doc: dict[str, object], key: str, needle: str) -> None:
    with pytest.raises(InvalidInput) as err:
        check_config(doc, "config:ai")
    assert err.value.field == key and f"config:ai.{key}" in str(err.value) and needle in str(err.value)


def test_layers_and_models() -> None:
    project = check_config({"model": "chat", "temperature": 0.1, "models": {"chat": {"local": "llama3.2"}}})
    document = check_config({"temperature": 0.5, "models": {"embed": "nomic"}}, "config:ai")
    config = layered(project, document, {"max_tokens": None})
    assert config["temperature"] == 0.5 and config["model"] == "chat" and config["cache_ttl"] == DEFAULTS["cache_ttl"]
    assert config["models"] == {"chat": {"local": "llama3.2"}, "embed": "nomic"}  # maps merge
    assert resolve_model(config, None, "local") == "llama3.2"
    assert resolve_model(config, None, "cloudflare") == "chat"  # no cloudflare name: as written
    assert resolve_model(config, "embed", "cloudflare") == "nomic"
    assert resolve_model(config, None, "local", embed=True) is None  # no embed_model
    assert resolve_model(config, "other", "local") == "other"

"""A provider that is unreachable or refuses is blamed on the setting *in the layer it came from*: a
``base_url`` pushed in the ``config:ai`` document is not reported as pyproject's, a call's ``model=``
is named as the call's. ``flareflow ai config show`` prints the document and each setting's layer;
``clear`` empties it, so pyproject.toml decides again. Through ``flareflow`` against the stand-in."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from flareflow.ai.config import CONFIG_KEY, DEFAULT_LAYER, PROJECT_LAYER, origins, setting_origin
from tests.cli.helpers import describe, ff

from .project import write_project
from .standin import StandIn, standin_server


@pytest.fixture
def standin() -> Iterator[StandIn]:
    with standin_server() as server:
        yield server


def dead_url() -> str:
    with socket.socket() as s:  # a loopback port nothing listens on
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}/v1"


def push(root: Path, document: dict[str, Any]) -> None:
    (root / "ai.json").write_text(json.dumps(document))
    result = ff("ai", "config", "push", "ai.json", cwd=root)
    assert result.returncode == 0, describe(result)


def failure(root: Path, workflow: str = "one") -> str:
    result = ff("run", workflow, "--input", '"hi"', "--json", cwd=root, timeout=90)
    assert result.returncode == 1, describe(result)
    failed = [json.loads(x) for x in result.stdout.splitlines() if '"step.failed"' in x]
    assert failed, describe(result)
    return " ".join(str(failed[-1]["error"]["message"]).split())


def show(root: Path) -> dict[str, Any]:
    result = ff("ai", "config", "show", "--json", cwd=root)
    assert result.returncode == 0, describe(result)
    shown: dict[str, Any] = json.loads(result.stdout)
    return shown


def test_an_unreachable_base_url_from_the_document_is_blamed_on_the_document(tmp_path: Path,
                                                                            standin: StandIn) -> None:
    root = write_project(tmp_path / "p", standin.url)  # pyproject's base_url works
    dead = dead_url()
    push(root, {"base_url": dead})
    message = failure(root)
    assert f"AI provider {dead}" in message and "unreachable" in message, message
    assert "its address is base_url of the config:ai document" in message, message
    assert "flareflow ai config push" in message and "tool.flareflow.ai.base_url" not in message, message
    shown = show(root)
    assert shown["document"] == {"base_url": dead}
    assert shown["settings"]["base_url"] == {"value": dead, "from": CONFIG_KEY}
    assert shown["settings"]["model"] == {"value": "stand-in-model", "from": PROJECT_LAYER}
    assert shown["settings"]["cache_ttl"] == {"value": 3600, "from": DEFAULT_LAYER}
    text = ff("ai", "config", "show", cwd=root)
    assert text.returncode == 0 and dead in text.stdout and "config:ai" in text.stdout, describe(text)
    cleared = ff("ai", "config", "clear", cwd=root)
    assert cleared.returncode == 0 and "cleared config:ai" in cleared.stdout, describe(cleared)
    assert show(root)["document"] is None
    assert show(root)["settings"]["base_url"] == {"value": standin.url, "from": PROJECT_LAYER}
    result = ff("run", "one", "--input", '"hi"', cwd=root, timeout=60)  # pyproject's server again
    assert result.returncode == 0, describe(result)
    assert "none (flareflow ai config push FILE writes one)" in ff("ai", "config", "show", cwd=root).stdout


def test_a_base_url_from_pyproject_is_still_blamed_on_pyproject(tmp_path: Path) -> None:
    message = failure(write_project(tmp_path / "p", dead_url()))
    assert "its address is tool.flareflow.ai.base_url in pyproject.toml" in message, message


def test_a_refusal_names_the_layer_of_the_address_and_of_the_model(tmp_path: Path, standin: StandIn) -> None:
    root = write_project(tmp_path / "p", standin.url)
    standin.script = ["refuse"]
    message = failure(root)
    assert "HTTP 400: model not found" in message, message
    assert "the address is tool.flareflow.ai.base_url in pyproject.toml" in message, message
    assert "the model 'stand-in-model' is tool.flareflow.ai.model in pyproject.toml" in message, message
    push(root, {"model": "pushed-model"})
    standin.script = ["refuse"]
    message = failure(root)
    assert "the model 'pushed-model' is model of the config:ai document" in message, message
    standin.script = ["refuse"]
    message = failure(root, "tuned")  # its second call names model="fast" itself (its first is answered)
    assert "the model 'pushed-model' is model of the config:ai document" in message, message
    standin.script = ["ok", "refuse"]
    message = failure(root, "tuned")
    assert "the model 'fast' is the call's model= argument" in message, message


def test_an_unknown_key_in_the_document_gets_a_did_you_mean(tmp_path: Path) -> None:
    root = write_project(tmp_path / "p", None)
    (root / "ai.json").write_text('{"temprature": 0.2}')
    result = ff("ai", "config", "push", "ai.json", cwd=root)
    assert result.returncode == 1, describe(result)
    assert 'config:ai.temprature: unknown setting (did you mean "temperature"?)' in result.stderr, describe(result)


def test_origins_name_the_last_layer_that_sets_a_key() -> None:
    found = origins((PROJECT_LAYER, {"base_url": "http://a/v1", "model": "m", "models": {"x": "y"}}),
                    (CONFIG_KEY, {"base_url": "http://b/v1", "model": None, "models": {"z": "w"}}))
    assert found["base_url"] == CONFIG_KEY and found["model"] == PROJECT_LAYER  # None overrides nothing
    assert found["models"] == f"{PROJECT_LAYER} + {CONFIG_KEY}" and found["timeout"] == DEFAULT_LAYER
    assert setting_origin("base_url", PROJECT_LAYER) == "tool.flareflow.ai.base_url in pyproject.toml"

"""The hash of a domain call: pinned values, stable across processes (and so across Python versions,
since only SHA-256 over canonical JSON text goes in), and blind to dict key order."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from flareflow.engine.domains import call_hash, canonical_json, json_hash

NO_ARGS = [{"args": [], "kwargs": {}}]

#: (path, context, per-method arguments) -> the hash every flareflow must compute for it.
PINNED = [
    ("Inventory.check", {"sku": "ABC"}, NO_ARGS, "007b504e0e311f69"),
    ("Inventory.reserve", {"sku": "ABC"}, [{"args": [], "kwargs": {"quantity": 2}}], "8a9d708868f50b5f"),
    ("Order.validate.enrich.process", {"id": 7}, NO_ARGS * 3, "1e615a4bca12c13e"),
]


@pytest.mark.parametrize(("path", "context", "calls", "expected"), PINNED, ids=[p[0] for p in PINNED])
def test_pinned_hashes(path, context, calls, expected):
    assert call_hash(path, context, calls) == expected


def test_json_hash_is_sha256_of_the_canonical_text_and_ignores_key_order():
    assert canonical_json({"b": [1, 2.5, "é"], "a": None}) == '{"a":null,"b":[1,2.5,"\\u00e9"]}'
    assert json_hash({"sku": "ABC", "n": 1}) == json_hash({"n": 1, "sku": "ABC"}) == "6ad649c5ff6eb5ee"
    assert json_hash([{"args": [], "kwargs": {}}]) == "9ab1963b5bebf7d8"


def test_every_input_moves_the_hash():
    base = call_hash("Inventory.check", {"sku": "ABC"}, NO_ARGS)
    assert call_hash("Inventory.verify", {"sku": "ABC"}, NO_ARGS) != base
    assert call_hash("Inventory.check", {"sku": "ABD"}, NO_ARGS) != base
    assert call_hash("Inventory.check", {"sku": "ABC"}, [{"args": [1], "kwargs": {}}]) != base
    assert call_hash("Inventory.check", {"sku": 1}, NO_ARGS) != call_hash("Inventory.check", {"sku": 1.0}, NO_ARGS)


SCRIPT = ("import json, sys; from flareflow.engine.domains import call_hash; "
          "print(json.dumps([sys.version_info[:2], [call_hash(p, c, a) for p, c, a in json.loads(sys.argv[1])]]))")
CASES = json.dumps([[p, c, a] for p, c, a, _ in PINNED])
ROOT = Path(__file__).resolve().parents[2]


def test_the_hash_is_the_same_in_another_process():
    out = subprocess.run([sys.executable, "-c", SCRIPT, CASES], capture_output=True, text=True, check=True,
                         env={"PYTHONHASHSEED": "12345"})
    assert json.loads(out.stdout)[1] == [expected for *_, expected in PINNED]


def test_the_hash_is_the_same_on_python_313():
    """Pyodide in production Workers is CPython 3.13 (the workerd test checks Pyodide itself)."""
    exe = next((found for candidate in ("python3.13", str(Path.home() / ".pyenv/versions/3.13.0/bin/python3.13"))
                if (found := shutil.which(candidate))), None)
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail("python3.13 is required in CI")
        pytest.skip("python3.13 not installed")
    out = subprocess.run([exe, "-c", SCRIPT, CASES], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT), "PYENV_VERSION": "3.13.0"})
    version, hashes = json.loads(out.stdout)
    assert version == [3, 13] and hashes == [expected for *_, expected in PINNED]

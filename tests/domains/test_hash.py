"""The hash of a domain call: pinned values, stable across processes (and so across Python versions,
since only SHA-256 over canonical JSON text goes in), and blind to dict key order."""

from __future__ import annotations

import json
import subprocess
import sys

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


def test_the_hash_is_the_same_in_another_process():
    script = ("import json, sys; from flareflow.engine.domains import call_hash; "
              "print(json.dumps([call_hash(p, c, a) for p, c, a in json.loads(sys.argv[1])]))")
    cases = [[p, c, a] for p, c, a, _ in PINNED]
    out = subprocess.run([sys.executable, "-c", script, json.dumps(cases)], capture_output=True, text=True,
                         check=True, env={"PYTHONHASHSEED": "12345"})
    assert json.loads(out.stdout) == [expected for *_, expected in PINNED]

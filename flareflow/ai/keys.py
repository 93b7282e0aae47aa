"""Content addresses of AI calls: the same provider, model, messages and parameters give the same key.

The key is the cache key and the call log's ``prompt_hash``; it is computed from canonical JSON (sorted
keys, no spaces), so equal requests meet however their dicts were built.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

#: Prefix of answer entries in the key-value store (the config document is ``config:ai``).
CACHE_PREFIX = "ai:"


def call_hash(provider: str, model: str, kind: str, request: Any, params: dict[str, Any]) -> str:
    """sha256 hex of the canonical call (``request``: the messages, or the texts to embed)."""
    canonical = json.dumps({"provider": provider, "model": model, "kind": kind, "request": request,
                            "params": {k: v for k, v in sorted(params.items()) if v is not None}},
                           sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()

"""Run ids, made in one place for every host.

A new run's id is time-ordered and unguessable: 11 hex digits of milliseconds and 10 random hex
digits (21 in all). On Cloudflare a start with an idempotency key gets an id derived from the key
(`keyed_run_id`), so a retried or queued start reaches the same Durable Object; the local runtime
finds keyed runs through its index instead.
"""

from __future__ import annotations

import hashlib
import secrets


def new_run_id(now: float) -> str:
    """A time-ordered random id for a run started at ``now`` (seconds since the epoch)."""
    return f"{int(now * 1000):011x}{secrets.token_hex(5)}"


def keyed_run_id(idempotency_key: str) -> str:
    """The id every start with this idempotency key meets (21 hex digits of its SHA-256)."""
    return hashlib.sha256(idempotency_key.encode()).hexdigest()[:21]

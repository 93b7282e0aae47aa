"""SQL of one run's object: the run row, steps, the event log, timers and the inbox.

Every method is one or a few statements over the `Sql` port; the coordinator decides which of them
share a transaction. Values are stored as JSON text; a payload longer than the threshold is put
in the `Blobs` store and SQL keeps a small reference (``{"$blob": KEY, "size": N}``), resolved
again on every read, so clients never see the difference.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from ..engine import events as ev
from ..engine.errors import StorageError
from ..engine.history import RETRYING, WAITING, StepRecord
from ..engine.history import RUNNING as STEP_RUNNING
from ..engine.limits import DEFAULT_PAYLOAD_THRESHOLD
from .ports import Blobs, Row, Sql

_STEP_COLUMNS = "key, pos, kind, name, status, attempts, failures, result, error, wake_at, started_at, meta"


_ENCODE = json.JSONEncoder(allow_nan=False, separators=(",", ":")).encode
_DECODE = json.JSONDecoder().decode


def dumps(value: Any) -> str:
    """Compact JSON text; ``allow_nan=False`` keeps it valid for every client. One encoder, reused."""
    return _ENCODE(value)


BLOB_MARK = '{"$blob":'
#: The timer of a run held for its code (a missing workflow, a replay divergence): its next re-check.
CODE_TIMER = "$code"
DEFAULT_THRESHOLD = DEFAULT_PAYLOAD_THRESHOLD


class RunStore:
    """Reads and writes of one run. ``next_seq`` is cached; it is rebuilt from SQL on load."""

    def __init__(self, sql: Sql, run_id: str, blobs: Blobs | None = None,
                 threshold: int = DEFAULT_THRESHOLD) -> None:
        self.sql = sql
        self.run_id = run_id
        self.next_seq = 1
        self.blobs = blobs
        self.threshold = threshold

    # -- payload offload ---------------------------------------------------------------------
    def pack(self, text: str) -> str:
        """The text to store in SQL: ``text`` itself, or a reference once it is over the threshold."""
        # the threshold is in bytes; a text of n characters has at most 4n bytes of UTF-8
        if self.blobs is None or len(text) * 4 <= self.threshold or len(text.encode()) <= self.threshold:
            return text
        key = f"runs/{self.run_id}/{hashlib.sha256(text.encode()).hexdigest()[:40]}"
        self.sql.exec("INSERT INTO blobs (key, size) VALUES (?, ?) ON CONFLICT(key) DO NOTHING", key, len(text))
        self.blobs.put(key, text)
        return _ENCODE({"$blob": key, "size": len(text)})

    def unpack(self, text: str) -> str:
        """The stored text with a blob reference resolved."""
        if not text.startswith(BLOB_MARK):
            return text
        key = str(_DECODE(text)["$blob"])
        if self.blobs is None:
            raise StorageError(f"run '{self.run_id}' references payload {key} but no blob store is configured")
        return self.blobs.get(key)

    def blob_keys(self) -> list[str]:
        """Every payload this run keeps in the blob store (hosts with async blob stores prefetch these)."""
        return [str(r[0]) for r in self.sql.exec("SELECT key FROM blobs")]

    def enc(self, value: Any) -> str:
        return self.pack(_ENCODE(value))

    def dec(self, text: str | None) -> Any:
        return None if text is None else _DECODE(self.unpack(text))

    # -- run row ---------------------------------------------------------------------------
    def load(self) -> dict[str, Any] | None:
        """The run row as a dict (None if this object holds no run yet); primes ``next_seq``."""
        rows = self.sql.exec(
            "SELECT id, workflow, status, input, output, error, state, idempotency_key, created_at, "
            "updated_at FROM run"
        )
        seq_rows = self.sql.exec("SELECT COALESCE(MAX(seq), 0) FROM events")
        self.next_seq = int(seq_rows[0][0]) + 1
        if not rows:
            return None
        row = rows[0]
        if row[0] != self.run_id:
            raise StorageError(f"state database holds run '{row[0]}', not '{self.run_id}'")
        try:
            return {
                "id": row[0],
                "workflow": row[1],
                "status": row[2],
                "input": self.dec(row[3]),
                "output": self.dec(row[4]),
                "error": self.dec(row[5]),
                "state": self.dec(row[6]),
                "idempotency_key": row[7],
                "created_at": row[8],
                "updated_at": row[9],
            }
        except ValueError as exc:
            raise StorageError(f"run '{self.run_id}': stored JSON is corrupt ({exc})") from None

    def insert_run(self, workflow: str, input_text: str, key: str | None, now: float) -> None:
        self.sql.exec(
            "INSERT INTO run (id, workflow, status, input, state, idempotency_key, created_at, updated_at) "
            "VALUES (?, ?, 'running', ?, '{}', ?, ?, ?)",
            self.run_id, workflow, self.pack(input_text), key, now, now,
        )

    def set_status(self, status: str, now: float, *, output: Any = None, error: Any = None,
                   has_output: bool = False) -> None:
        status = str(status)  # a RunStatus member is its string; SQL (and the JS FFI) get a plain one
        if has_output:
            self.sql.exec("UPDATE run SET status = ?, output = ?, updated_at = ?", status, self.enc(output), now)
        elif error is not None:
            self.sql.exec("UPDATE run SET status = ?, error = ?, updated_at = ?", status, dumps(error), now)
        else:
            self.sql.exec("UPDATE run SET status = ?, updated_at = ?", status, now)

    def reopen(self, now: float) -> None:
        """A failed run runs again (a retry): status ``running``, its error cleared."""
        self.sql.exec("UPDATE run SET status = 'running', error = NULL, updated_at = ?", now)

    def restarted_from(self) -> dict[str, Any] | None:
        """The run and step a restart started this run from (on its ``run.started``), or None. Only a
        body that can hold it is decoded (one that names it, or one in the blob store)."""
        rows = self.sql.exec("SELECT body FROM events WHERE seq = 1 AND (body LIKE '%\"restarted_from\"%' "
                             "OR body LIKE '{\"$blob\":%')")
        body = self.dec(rows[0][0]) if rows else None
        origin = body.get("restarted_from") if isinstance(body, dict) else None
        return origin if isinstance(origin, dict) else None

    def set_state(self, state: Any, now: float) -> None:
        self.sql.exec("UPDATE run SET state = ?, updated_at = ?", self.enc(state), now)

    # -- steps and timers ------------------------------------------------------------------
    def save_step(self, rec: StepRecord, now: float) -> None:
        result = self.pack(rec.result_text if rec.result_text is not None else dumps(rec.result))
        self.sql.exec(
            f"INSERT INTO steps ({_STEP_COLUMNS}, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT(key) DO UPDATE SET status = excluded.status, attempts = excluded.attempts, "
            "failures = excluded.failures, result = excluded.result, error = excluded.error, "
            "wake_at = excluded.wake_at, started_at = excluded.started_at, meta = excluded.meta, "
            "updated_at = excluded.updated_at",
            rec.key, rec.pos, rec.kind, rec.name, rec.status, rec.attempts, rec.failures, result,
            None if rec.error is None else dumps(rec.error), rec.wake_at, rec.started_at,
            dumps(rec.meta), now,
        )
        if rec.logs:  # what the attempt this commit ends printed and logged, under its number
            self.sql.exec("INSERT INTO step_logs (key, attempt, logs) VALUES (?, ?, ?) "
                          "ON CONFLICT(key, attempt) DO UPDATE SET logs = excluded.logs",
                          rec.key, rec.attempts, self.enc(rec.logs))
        if rec.wake_at is not None and rec.status in (WAITING, RETRYING):
            self.sql.exec(
                "INSERT INTO timers (key, kind, fire_at) VALUES (?, ?, ?) "
                "ON CONFLICT(key) DO UPDATE SET fire_at = excluded.fire_at",
                rec.key, rec.kind, rec.wake_at,
            )
        elif rec.wake_at is None and rec.status != STEP_RUNNING and not (rec.kind == "step" and rec.failures == 0):
            # a step only ever has a timer while it backs off after a failure: nothing to delete otherwise
            self.sql.exec("DELETE FROM timers WHERE key = ?", rec.key)

    def delete_step(self, key: str) -> None:
        """Forget a step (and its timer and logs): the run reaches it again as if for the first time."""
        for table in ("steps", "timers", "step_logs"):
            self.sql.exec(f"DELETE FROM {table} WHERE key = ?", key)

    def history(self) -> dict[str, StepRecord]:
        """Every recorded step, keyed by step key. On the resume path, so decoding is kept lean."""
        out: dict[str, StepRecord] = {}
        metas: dict[str, dict[str, Any]] = {}  # meta texts repeat (same retry policy): decode each once
        decode = _DECODE
        for row in self.sql.exec(f"SELECT {_STEP_COLUMNS} FROM steps"):
            result, error, meta_text = row[7], row[8], row[11]
            cached = metas.get(meta_text)
            if cached is None:
                cached = metas[meta_text] = decode(meta_text) or {}
            rec = StepRecord(
                row[0], row[1], row[2], row[3], row[4], int(row[5]), int(row[6]),
                None if result is None or result == "null" else decode(self.unpack(result)),
                None if error is None else decode(error), row[9], row[10], dict(cached),
            )
            out[rec.key] = rec
        return out

    def steps(self) -> list[dict[str, Any]]:
        """Steps for display, in the order they were first reached; ``logs``: what their attempts
        printed and logged, each entry with its ``attempt``, oldest attempt first; ``pos``: where the
        code reached the step (what a replay checks it against, `flareflow.engine.replay`)."""
        rows = self.sql.exec(
            "SELECT key, kind, name, status, attempts, result, error, wake_at, started_at, updated_at, pos "
            "FROM steps ORDER BY rowid"
        )
        logs: dict[str, list[dict[str, Any]]] = {}
        for key, attempt, text in self.sql.exec("SELECT key, attempt, logs FROM step_logs ORDER BY key, attempt"):
            logs.setdefault(str(key), []).extend({**entry, "attempt": int(attempt)} for entry in self.dec(text))
        return [
            {"step": r[0], "kind": r[1], "name": r[2], "status": r[3], "attempts": r[4],
             "result": self.dec(r[5]), "error": self.dec(r[6]),
             "wake_at": None if r[7] is None else ev.iso(r[7]),
             "started_at": None if r[8] is None else ev.iso(r[8]), "updated_at": ev.iso(r[9]),
             "logs": logs.get(str(r[0]), []), "pos": r[10]}
            for r in rows
        ]

    def next_timer(self) -> float | None:
        rows = self.sql.exec("SELECT MIN(fire_at) FROM timers")
        return None if not rows or rows[0][0] is None else float(rows[0][0])

    def clear_timers(self) -> None:
        self.sql.exec("DELETE FROM timers")

    def set_timer(self, key: str, kind: str, fire_at: float) -> None:
        self.sql.exec("INSERT INTO timers (key, kind, fire_at) VALUES (?, ?, ?) "
                      "ON CONFLICT(key) DO UPDATE SET fire_at = excluded.fire_at", key, kind, fire_at)

    def delete_timer(self, key: str) -> None:
        self.sql.exec("DELETE FROM timers WHERE key = ?", key)

    def hold(self) -> tuple[float, float, dict[str, Any]] | None:
        """While the run is held for its code (its `CODE_TIMER` is set): when the hold began, when it
        is re-checked next, and the body of the ``run.waiting`` (reason ``code``) that said so."""
        timer = self.sql.exec("SELECT fire_at FROM timers WHERE key = ?", CODE_TIMER)
        if not timer:
            return None
        rows = self.sql.exec("SELECT at, body FROM events WHERE type = ? AND body LIKE ? ORDER BY seq DESC LIMIT 1",
                             ev.RUN_WAITING, f'%"reason":"{ev.CODE_REASON}"%')
        body = self.dec(rows[0][1]) if rows else None
        if not isinstance(body, dict):
            return None
        return float(rows[0][0]), float(timer[0][0]), body

    # -- events ----------------------------------------------------------------------------
    def append(self, events: list[tuple[str, dict[str, Any]]], now: float) -> list[dict[str, Any]]:
        """Append events with the next gapless seqs; returns the wire objects.

        The caller commits; ``next_seq`` advances only via `advance` once the commit succeeded.
        """
        wire = []
        seq = self.next_seq
        for type_, body in events:
            self.sql.exec("INSERT INTO events (seq, type, at, body) VALUES (?, ?, ?, ?)",
                          seq, type_, now, self.enc(body))
            wire.append(ev.wire_event(seq, type_, self.run_id, now, body))
            seq += 1
        return wire

    def advance(self, count: int) -> None:
        self.next_seq += count

    def events(self, after: int = 0, limit: int | None = None) -> list[dict[str, Any]]:
        query = "SELECT seq, type, at, body FROM events WHERE seq > ? ORDER BY seq"
        params: list[Any] = [after]
        if limit is not None:
            query += " LIMIT ?"
            params.append(limit)
        return [ev.wire_event(int(r[0]), r[1], self.run_id, float(r[2]), self.dec(r[3]))
                for r in self.sql.exec(query, *params)]

    # -- inbox -----------------------------------------------------------------------------
    def enqueue(self, kind: str, match: str, payload: Any, now: float, *, acked: bool) -> int:
        self.sql.exec(
            "INSERT INTO inbox (kind, match, payload, received_at, acked) VALUES (?, ?, ?, ?, ?)",
            kind, match, self.enc(payload), now, 1 if acked else 0,
        )
        return int(self.sql.exec("SELECT MAX(id) FROM inbox")[0][0])

    def unacked(self) -> list[tuple[int, str, str, Any]]:
        rows = self.sql.exec("SELECT id, kind, match, payload FROM inbox WHERE acked = 0 ORDER BY id")
        return [(int(r[0]), r[1], r[2], self.dec(r[3])) for r in rows]

    def acked(self, delivery_id: int) -> bool:
        """Whether the inbox entry was taken in (by the process or object executing the run)."""
        rows = self.sql.exec("SELECT acked FROM inbox WHERE id = ?", delivery_id)
        return bool(rows and rows[0][0])

    def ack(self, delivery_id: int) -> None:
        self.sql.exec("UPDATE inbox SET acked = 1 WHERE id = ?", delivery_id)

    def find_delivery(self, kind: str, match: str) -> tuple[int, Any] | None:
        rows: list[Row] = self.sql.exec(
            "SELECT id, payload FROM inbox WHERE kind = ? AND match = ? AND acked = 1 "
            "AND consumed_by IS NULL ORDER BY id LIMIT 1",
            kind, match,
        )
        return None if not rows else (int(rows[0][0]), self.dec(rows[0][1]))

    def consume(self, delivery_id: int, key: str) -> None:
        self.sql.exec("UPDATE inbox SET consumed_by = ? WHERE id = ?", key, delivery_id)

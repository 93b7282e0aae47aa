-- Per-run object schema, version 1.
-- One row in `run`; one row per durable unit in `steps`; an append-only, gapless `events` log;
-- `timers` multiplexed onto the object's single alarm; `inbox` for delivered events and answers.
CREATE TABLE run (
    id              TEXT PRIMARY KEY,
    workflow        TEXT NOT NULL,
    status          TEXT NOT NULL,
    input           TEXT,
    output          TEXT,
    error           TEXT,
    state           TEXT NOT NULL DEFAULT '{}',
    idempotency_key TEXT,
    created_at      REAL NOT NULL,
    updated_at      REAL NOT NULL
);

CREATE TABLE steps (
    key         TEXT PRIMARY KEY,
    pos         TEXT NOT NULL,
    kind        TEXT NOT NULL,
    name        TEXT NOT NULL,
    status      TEXT NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    failures    INTEGER NOT NULL DEFAULT 0,
    result      TEXT,
    error       TEXT,
    wake_at     REAL,
    started_at  REAL,
    updated_at  REAL NOT NULL,
    meta        TEXT NOT NULL DEFAULT '{}'
);

CREATE TABLE events (
    seq   INTEGER PRIMARY KEY,
    type  TEXT NOT NULL,
    at    REAL NOT NULL,
    body  TEXT NOT NULL
);

CREATE TABLE timers (
    key      TEXT PRIMARY KEY,
    kind     TEXT NOT NULL,
    fire_at  REAL NOT NULL
);

CREATE TABLE inbox (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    kind         TEXT NOT NULL,
    match        TEXT NOT NULL,
    payload      TEXT NOT NULL,
    received_at  REAL NOT NULL,
    acked        INTEGER NOT NULL DEFAULT 0,
    consumed_by  TEXT
);
CREATE INDEX inbox_pending ON inbox (kind, match, consumed_by);

-- D1 index of runs, version 1: one row per run, updated on every status change, so GET /runs can
-- filter and page across Durable Objects. Applied with `wrangler d1 migrations apply`.
CREATE TABLE runs (
    id              TEXT PRIMARY KEY,
    workflow        TEXT NOT NULL,
    status          TEXT NOT NULL,
    idempotency_key TEXT UNIQUE,
    created_at      REAL NOT NULL,
    updated_at      REAL NOT NULL
);
CREATE INDEX runs_status ON runs (status, id);
CREATE INDEX runs_workflow ON runs (workflow, id);

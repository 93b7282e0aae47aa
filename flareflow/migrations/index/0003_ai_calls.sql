-- Index version 3: the AI call log, one row per run.ai call (cached answers too), so GET /ai/calls
-- and `flareflow ai log` can list calls across runs. Written by both hosts through
-- flareflow/migrations/ai_calls.py.
CREATE TABLE ai_calls (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    at                REAL NOT NULL,
    run_id            TEXT NOT NULL,
    step              TEXT NOT NULL,
    kind              TEXT NOT NULL,
    provider          TEXT NOT NULL,
    model             TEXT NOT NULL,
    prompt_hash       TEXT NOT NULL,
    prompt_tokens     INTEGER,
    completion_tokens INTEGER,
    latency_ms        REAL NOT NULL,
    cached            INTEGER NOT NULL,
    error             TEXT
);
CREATE INDEX ai_calls_run ON ai_calls (run_id, id);
CREATE INDEX ai_calls_model ON ai_calls (model, id);

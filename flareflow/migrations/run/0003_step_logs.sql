-- Per-run object schema, version 3: what each step attempt printed and logged.
-- One row per attempt that produced output; `logs` is the JSON list of entries
-- ({"at", "stream", "text"}, plus "level" and "logger" for logging records), stored like a step
-- result ({"$blob": key, "size": n} when over the payload threshold).
CREATE TABLE step_logs (
    key      TEXT NOT NULL,
    attempt  INTEGER NOT NULL,
    logs     TEXT NOT NULL,
    PRIMARY KEY (key, attempt)
);

-- D1 schema of the smoke app: a log of what the Worker saw.
CREATE TABLE seen (
    id    INTEGER PRIMARY KEY AUTOINCREMENT,
    kind  TEXT NOT NULL,
    value TEXT NOT NULL
);

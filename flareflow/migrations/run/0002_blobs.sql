-- Per-run object schema, version 2: the payloads this run keeps in the blob store (R2 / files).
-- SQL holds {"$blob": key, "size": n} in place of a payload over the threshold; this table lists
-- every such key, so a host with an asynchronous blob store can fetch them before a replay.
-- `pending` holds the text until an asynchronous store (R2) confirms the upload, so a crash in
-- between loses nothing: the next activation uploads it again.
CREATE TABLE blobs (
    key      TEXT PRIMARY KEY,
    size     INTEGER NOT NULL,
    pending  TEXT
);

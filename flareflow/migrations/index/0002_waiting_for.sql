-- D1 index of runs, version 2: what a waiting run waits for (JSON: a list of {kind, name, until,
-- event_type?, prompt?}, or NULL), so a listing can say it without waking each run's object.
ALTER TABLE runs ADD COLUMN waiting_for TEXT;

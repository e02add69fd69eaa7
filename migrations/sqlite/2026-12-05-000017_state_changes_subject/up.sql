-- Issuing a token reads the latest cut of its key, so that a key enabled again within the
-- second of its cut waits for that second instead of issuing tokens born refused.
CREATE INDEX state_changes_subject ON state_changes (subject, kind);

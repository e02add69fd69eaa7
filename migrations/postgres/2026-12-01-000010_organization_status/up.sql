-- Organizations get a display name and a status; a deleted one keeps its row (and its name,
-- its keys' rows and its audit trail), disabled, with the time it was deleted.
ALTER TABLE organizations ADD COLUMN display_name TEXT;
ALTER TABLE organizations ADD COLUMN status TEXT NOT NULL DEFAULT 'enabled' CHECK (status IN ('enabled', 'disabled'));
ALTER TABLE organizations ADD COLUMN deleted_at TIMESTAMP;

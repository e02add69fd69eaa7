ALTER TABLE organizations DROP COLUMN deleted_at;
ALTER TABLE organizations DROP COLUMN status;
ALTER TABLE organizations DROP COLUMN display_name;

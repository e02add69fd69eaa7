-- One index per order a key list can be asked for, each covering only the keys lists show
-- (deleted ones are hidden), ending in the id that breaks ties and carries keyset cursors.
DROP INDEX api_keys_organization_created;
CREATE INDEX api_keys_list_created ON api_keys (organization_id, created_at, id) WHERE deleted_at IS NULL;
CREATE INDEX api_keys_list_name ON api_keys (organization_id, name, id) WHERE deleted_at IS NULL;
CREATE INDEX api_keys_list_status ON api_keys (organization_id, status, id) WHERE deleted_at IS NULL;
CREATE INDEX api_keys_list_environment ON api_keys (organization_id, environment, id) WHERE deleted_at IS NULL;
CREATE INDEX api_keys_list_last_used ON api_keys (organization_id, last_used_at, id) WHERE deleted_at IS NULL;

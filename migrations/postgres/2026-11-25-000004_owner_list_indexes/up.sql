-- A caller without api_keys:manage lists only the keys it created: one index per order for
-- that filter too (organization and creator both fixed), so a user's page does not walk the
-- whole organization's keys.
CREATE INDEX api_keys_owner_created ON api_keys (organization_id, created_by, created_at, id) WHERE deleted_at IS NULL;
CREATE INDEX api_keys_owner_name ON api_keys (organization_id, created_by, name, id) WHERE deleted_at IS NULL;
CREATE INDEX api_keys_owner_status ON api_keys (organization_id, created_by, status, id) WHERE deleted_at IS NULL;
CREATE INDEX api_keys_owner_environment ON api_keys (organization_id, created_by, environment, id) WHERE deleted_at IS NULL;
CREATE INDEX api_keys_owner_last_used ON api_keys (organization_id, created_by, last_used_at, id) WHERE deleted_at IS NULL;

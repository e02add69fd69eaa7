-- Key lists can also be ordered by key prefix, scopes and expiry: an index for each, for the
-- organization's keys and for one owner's, as for the other orders.
CREATE INDEX api_keys_list_prefix ON api_keys (organization_id, key_prefix, id) WHERE deleted_at IS NULL;
CREATE INDEX api_keys_list_scopes ON api_keys (organization_id, scopes, id) WHERE deleted_at IS NULL;
CREATE INDEX api_keys_list_expires ON api_keys (organization_id, expires_at, id) WHERE deleted_at IS NULL;
CREATE INDEX api_keys_owner_prefix ON api_keys (organization_id, created_by, key_prefix, id) WHERE deleted_at IS NULL;
CREATE INDEX api_keys_owner_scopes ON api_keys (organization_id, created_by, scopes, id) WHERE deleted_at IS NULL;
CREATE INDEX api_keys_owner_expires ON api_keys (organization_id, created_by, expires_at, id) WHERE deleted_at IS NULL;

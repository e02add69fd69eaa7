DROP INDEX api_keys_list_last_used;
DROP INDEX api_keys_list_environment;
DROP INDEX api_keys_list_status;
DROP INDEX api_keys_list_name;
DROP INDEX api_keys_list_created;
CREATE INDEX api_keys_organization_created ON api_keys (organization_id, created_at, id);

DROP INDEX api_keys_owner_last_used;
DROP INDEX api_keys_owner_environment;
DROP INDEX api_keys_owner_status;
DROP INDEX api_keys_owner_name;
DROP INDEX api_keys_owner_created;

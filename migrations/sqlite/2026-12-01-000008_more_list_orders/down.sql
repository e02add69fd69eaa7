DROP INDEX api_keys_list_prefix;
DROP INDEX api_keys_list_scopes;
DROP INDEX api_keys_list_expires;
DROP INDEX api_keys_owner_prefix;
DROP INDEX api_keys_owner_scopes;
DROP INDEX api_keys_owner_expires;

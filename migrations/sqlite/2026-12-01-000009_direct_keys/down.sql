ALTER TABLE api_keys DROP COLUMN token_only;
DROP INDEX api_key_secrets_prefix;

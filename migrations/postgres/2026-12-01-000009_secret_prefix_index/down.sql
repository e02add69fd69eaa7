DROP INDEX api_key_secrets_prefix;

-- An API key presented alone as a bearer credential is found by its secret's prefix.
CREATE INDEX api_key_secrets_prefix ON api_key_secrets (prefix) WHERE revoked_at IS NULL;

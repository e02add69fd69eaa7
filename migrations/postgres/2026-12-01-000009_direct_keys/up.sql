-- An API key presented alone as a bearer credential is found by its secret's prefix.
CREATE INDEX api_key_secrets_prefix ON api_key_secrets (prefix) WHERE revoked_at IS NULL;
-- A key made token-only is never accepted as a bearer credential itself.
ALTER TABLE api_keys ADD COLUMN token_only BOOLEAN NOT NULL DEFAULT FALSE;

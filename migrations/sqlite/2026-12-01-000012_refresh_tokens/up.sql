-- Refresh tokens, for keys that opt in: opaque, single use, rotated on every use. Only the
-- SHA-256 of a token is stored. The tokens descended from one grant form a family; reuse of a
-- spent one ends the family, and the access tokens issued with its members are refused.
ALTER TABLE api_keys ADD COLUMN refresh_tokens BOOLEAN NOT NULL DEFAULT FALSE;

CREATE TABLE refresh_tokens (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    api_key_id BIGINT NOT NULL REFERENCES api_keys (id),
    family TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    scopes TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    used_at TIMESTAMP,
    revoked_at TIMESTAMP,
    access_jti TEXT NOT NULL,
    access_expires_at TIMESTAMP NOT NULL
);

CREATE INDEX refresh_tokens_family ON refresh_tokens (family);
CREATE INDEX refresh_tokens_live_of_key ON refresh_tokens (api_key_id) WHERE revoked_at IS NULL;
CREATE INDEX refresh_tokens_expiry ON refresh_tokens (expires_at);

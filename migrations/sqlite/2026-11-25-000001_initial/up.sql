-- keygate's data model. Times are UTC. Public identifiers (client_id, kid) are text; row ids
-- never leave the database.

CREATE TABLE organizations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    created_at TIMESTAMP NOT NULL
);

INSERT INTO organizations (name, created_at) VALUES ('default', CURRENT_TIMESTAMP);

CREATE TABLE users (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    organization_id BIGINT NOT NULL REFERENCES organizations (id),
    email TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    is_admin BOOLEAN NOT NULL DEFAULT FALSE,
    permissions TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL DEFAULT 'enabled',
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);

CREATE INDEX users_organization ON users (organization_id);

CREATE TABLE api_keys (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    organization_id BIGINT NOT NULL REFERENCES organizations (id),
    client_id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    environment TEXT NOT NULL CHECK (environment IN ('live', 'test')),
    scopes TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('enabled', 'disabled', 'revoked')),
    expires_at TIMESTAMP,
    metadata TEXT NOT NULL DEFAULT '{}',
    created_by BIGINT REFERENCES users (id),
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    last_used_at TIMESTAMP,
    revoked_at TIMESTAMP,
    deleted_at TIMESTAMP
);

CREATE INDEX api_keys_organization_created ON api_keys (organization_id, created_at, id);

-- Several secrets per key, so a rotation can keep the old one alive for a grace period.
CREATE TABLE api_key_secrets (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    api_key_id BIGINT NOT NULL REFERENCES api_keys (id),
    prefix TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP,
    revoked_at TIMESTAMP
);

CREATE INDEX api_key_secrets_key ON api_key_secrets (api_key_id);

-- Token-signing keys. `private_key` is sealed with the master key, and emptied once the key
-- is retired; `public_jwk` is what the JWKS publishes.
CREATE TABLE signing_keys (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kid TEXT NOT NULL UNIQUE,
    algorithm TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('next', 'active', 'retired')),
    public_jwk TEXT NOT NULL,
    private_key TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    activated_at TIMESTAMP,
    retired_at TIMESTAMP,
    verify_until TIMESTAMP
);

-- Append-only record of who did what.
CREATE TABLE audit_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    organization_id BIGINT REFERENCES organizations (id),
    occurred_at TIMESTAMP NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT,
    outcome TEXT NOT NULL,
    client_ip TEXT,
    user_agent TEXT,
    details TEXT NOT NULL DEFAULT '{}'
);

CREATE INDEX audit_events_organization_time ON audit_events (organization_id, occurred_at);

-- The change feed every instance polls: key-state changes that refuse tokens issued before
-- `not_before` (unix seconds) until `expires_at`, single-token revocations, key rotations.
CREATE TABLE state_changes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    subject TEXT NOT NULL,
    not_before BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    created_at TIMESTAMP NOT NULL
);

CREATE INDEX state_changes_expiry ON state_changes (expires_at);

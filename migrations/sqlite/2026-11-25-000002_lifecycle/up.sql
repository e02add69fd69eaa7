-- Key lifecycle: public ids for users, login lockout, console sessions, and the indexes the
-- management API filters and pages by.

ALTER TABLE users ADD COLUMN public_id TEXT;
ALTER TABLE users ADD COLUMN failed_logins INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN locked_until TIMESTAMP;
ALTER TABLE users ADD COLUMN last_login_at TIMESTAMP;
CREATE UNIQUE INDEX users_public_id ON users (public_id);

-- Console sessions: only a SHA-256 of the cookie value is stored.
CREATE TABLE sessions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    token_hash TEXT NOT NULL UNIQUE,
    user_id BIGINT NOT NULL REFERENCES users (id),
    csrf_token TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL
);

CREATE INDEX sessions_user ON sessions (user_id);
CREATE INDEX api_keys_created_by ON api_keys (created_by);
CREATE INDEX audit_events_organization_id ON audit_events (organization_id, id);
CREATE INDEX audit_events_target ON audit_events (target);

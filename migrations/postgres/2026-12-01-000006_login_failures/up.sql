-- Failed log-ins are counted per account and source address, so that an attacker elsewhere
-- cannot lock an operator out; the per-account columns they replace go.
CREATE TABLE login_failures (
    user_id BIGINT NOT NULL REFERENCES users (id),
    source TEXT NOT NULL,
    failures INTEGER NOT NULL,
    locked_until TIMESTAMP,
    updated_at TIMESTAMP NOT NULL,
    PRIMARY KEY (user_id, source)
);

CREATE INDEX login_failures_updated ON login_failures (updated_at);

ALTER TABLE users DROP COLUMN failed_logins;
ALTER TABLE users DROP COLUMN locked_until;

-- One-time views of a console session: a secret just made (a key's, a rotation's, a generated
-- password), sealed with the master key, kept until the session's next page shows it (at most
-- two minutes), then deleted. Ending the session deletes its views.
CREATE TABLE one_time_reveals (
    handle_hash TEXT PRIMARY KEY,
    session_id BIGINT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    sealed TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL
);

CREATE INDEX one_time_reveals_expiry ON one_time_reveals (expires_at);

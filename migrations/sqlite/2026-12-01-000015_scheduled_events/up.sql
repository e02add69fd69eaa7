-- Scheduled webhook events: what has been announced is recorded on the row it is about, so
-- each is produced once (a compare-and-set update, also across instances) and a restart
-- forgets nothing. `expiring_notified_for` is the expiry an `api_key.expiring` was sent for:
-- a new expiry gets a new notice.
ALTER TABLE api_keys ADD COLUMN expiring_notified_for TIMESTAMP;
ALTER TABLE api_keys ADD COLUMN expired_notified_at TIMESTAMP;
ALTER TABLE api_key_secrets ADD COLUMN expiry_notified_at TIMESTAMP;

CREATE INDEX api_keys_expiry ON api_keys (expires_at) WHERE expires_at IS NOT NULL AND deleted_at IS NULL;
CREATE INDEX api_key_secrets_expiry ON api_key_secrets (expires_at) WHERE expires_at IS NOT NULL AND revoked_at IS NULL;

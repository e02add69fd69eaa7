DROP INDEX api_key_secrets_expiry;
DROP INDEX api_keys_expiry;
ALTER TABLE api_key_secrets DROP COLUMN expiry_notified_at;
ALTER TABLE api_keys DROP COLUMN expired_notified_at;
ALTER TABLE api_keys DROP COLUMN expiring_notified_for;

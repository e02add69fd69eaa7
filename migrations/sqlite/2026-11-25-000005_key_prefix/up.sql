-- The newest secret's public prefix, kept on the key: a page of keys is then one query.
ALTER TABLE api_keys ADD COLUMN key_prefix TEXT NOT NULL DEFAULT '';
UPDATE api_keys SET key_prefix = COALESCE(
    (SELECT s.prefix FROM api_key_secrets s WHERE s.api_key_id = api_keys.id ORDER BY s.id DESC LIMIT 1), '');

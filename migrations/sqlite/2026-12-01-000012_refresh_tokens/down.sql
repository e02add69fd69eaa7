DROP TABLE refresh_tokens;
ALTER TABLE api_keys DROP COLUMN refresh_tokens;

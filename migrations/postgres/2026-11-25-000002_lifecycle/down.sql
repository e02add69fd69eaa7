DROP INDEX audit_events_target;
DROP INDEX audit_events_organization_id;
DROP INDEX api_keys_created_by;
DROP TABLE sessions;
DROP INDEX users_public_id;
ALTER TABLE users DROP COLUMN last_login_at;
ALTER TABLE users DROP COLUMN locked_until;
ALTER TABLE users DROP COLUMN failed_logins;
ALTER TABLE users DROP COLUMN public_id;

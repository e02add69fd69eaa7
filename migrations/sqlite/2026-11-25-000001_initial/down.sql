DROP TABLE state_changes;
DROP TABLE audit_events;
DROP TABLE signing_keys;
DROP TABLE api_key_secrets;
DROP TABLE api_keys;
DROP TABLE users;
DROP TABLE organizations;

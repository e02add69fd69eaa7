//! Black-box tests: each starts the real server on a random port against a fresh database
//! (a SQLite file, or a PostgreSQL schema when KEYGATE_TEST_POSTGRES_URL is set) and talks
//! HTTP to it, as a user's app would.

mod helpers;

mod cli;
mod discovery;
mod external_app;
mod instances;
mod interop;
mod jwt_attacks;
mod management_api_keys;
mod management_users;
mod pagination;
mod query_plans;
mod token_endpoint;

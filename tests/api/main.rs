//! Black-box tests: each starts the real server on a random port against a fresh database
//! (a SQLite file, or a PostgreSQL schema when KEYGATE_TEST_POSTGRES_URL is set) and talks
//! HTTP to it, as a user's app would.

mod helpers;

// The first test modules follow the URL tree (src/routes/mod.rs): one per resource.
mod api_keys;
mod audit_events;
mod introspection;
mod invitations;
mod organizations;
mod revocation;
#[cfg(feature = "client")]
mod revocation_stream;
mod sessions;
mod users;

pub(crate) mod cli;
#[cfg(feature = "client")]
mod client;
mod console;
mod deploy;
mod direct_keys;
mod discovery;
mod docs_examples;
mod docs_page;
mod external_app;
mod faults;
mod instances;
mod interop;
mod jwt_attacks;
mod operations;
mod pagination;
mod query_plans;
mod refresh_tokens;
#[cfg(feature = "client")]
mod resource_server;
mod scheduled_rotation;
mod schemathesis;
mod security;
mod tls;
mod token_endpoint;
mod usage;
mod webhooks;

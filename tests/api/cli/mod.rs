//! The `keygate` binary, one file per command group: `api-keys`, `users` and `organizations`,
//! `serve` and `migrate`.

mod api_keys;
mod configuration;
pub(crate) mod database;
mod master_key;
mod serve;
mod signing_keys;
mod users_and_organizations;

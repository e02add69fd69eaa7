//! The `keygate` binary, one file per command group: `api-keys`, `users` and `organizations`,
//! `serve` and `migrate`.

mod api_keys;
mod configuration;
mod database;
mod serve;
mod signing_keys;
mod users_and_organizations;

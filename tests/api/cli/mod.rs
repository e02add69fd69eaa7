//! The `keygate` binary, one file per command group: `api-keys`, `users` and `organizations`,
//! `serve` and `migrate`.

mod api_keys;
mod serve;
mod users_and_organizations;

//! keygate: an OAuth 2.0 client-credentials token service. API keys in, short-lived signed
//! JWTs out, and an actix-web extractor that validates them and enforces scopes.
//!
//! The public surface for resource servers: [`Authenticated`], [`require_scopes!`],
//! [`TokenValidator`] and [`connect_validator`]. For apps that call APIs with keygate's tokens
//! (the `client` feature, on by default): [`client::TokenSource`]; and for resource servers
//! that know only keygate's URL, [`remote::RemoteValidator`]. For running keygate:
//! [`Application`].

pub mod auth;
pub mod cli;
#[cfg(feature = "client")]
pub mod client;
pub mod config;
pub mod console;
pub mod db;
pub mod domain;
pub mod embedded;
pub mod error;
pub mod feed;
pub mod hashing;
pub mod https;
pub mod last_used;
pub mod layers;
pub mod logging;
pub mod metrics;
pub mod openapi;
pub mod panics;
#[cfg(feature = "client")]
pub mod remote;
pub mod request_id;
pub mod routes;
pub mod service;
pub mod startup;
pub mod state;
pub mod tls;
pub mod tokens;
pub mod usage;
pub mod webhook_sender;

pub use auth::{Authenticated, NoScope, ScopeRequirement};
pub use config::Settings;
pub use embedded::connect_validator;
pub use error::ApiError;
pub use startup::Application;
pub use tokens::{AccessTokenClaims, TokenValidator, ValidationParams};

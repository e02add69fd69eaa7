//! Domain types: each is parsed once, at the edge, so the rest of keygate only sees valid values.

mod client_id;
mod environment;
mod expiry;
mod key_name;
pub mod random;
mod scope;
mod secret;

pub use client_id::ClientId;
pub use environment::Environment;
pub use expiry::Expiry;
pub use key_name::KeyName;
pub use scope::{Scope, ScopeCatalog, ScopeSet};
pub use secret::{ClientSecret, SecretPrefix};

/// Why a value was refused, naming the field it came from. Messages never echo secrets.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ValidationError {
    pub field: &'static str,
    pub message: String,
}

impl ValidationError {
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        ValidationError {
            field,
            message: message.into(),
        }
    }
}

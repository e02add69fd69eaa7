//! Domain types: each is parsed once, at the edge, so the rest of keygate only sees valid values.

mod algorithm;
mod audit;
mod client_id;
mod email;
mod environment;
mod expiry;
mod key_name;
mod metadata;
mod password;
pub mod random;
mod refresh_token;
mod scope;
mod secret;
pub(crate) mod sql_text;
pub mod status;
mod usage;
mod webhook;

pub use algorithm::SigningAlgorithm;
pub use audit::{AuditAction, Outcome};
pub use client_id::ClientId;
pub use email::Email;
pub use environment::Environment;
pub use expiry::{Expiry, GracePeriod};
pub use key_name::KeyName;
pub use metadata::Metadata;
pub use password::Password;
pub use refresh_token::RefreshToken;
pub use scope::{ManagementPermission, Scope, ScopeCatalog, ScopeSet};
pub use secret::{ClientSecret, SecretPrefix};
pub use status::{
    DeliveryStatus, EndpointStatus, KeyStatus, OrganizationStatus, SigningKeyStatus, UserStatus,
};
pub use usage::{Granularity, UsageMetric, UsageWindow};
pub use webhook::{EventFilter, EventType, WebhookSecret, WebhookUrl};

/// With `#[serde(default, deserialize_with = "…")]`: a field that is present, even as `null`,
/// is `Some` of what it holds, so an absent field (`None`) stays apart from an explicit
/// `null` (`Some(None)`, or `Some(Value::Null)`).
pub fn present<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    T::deserialize(deserializer).map(Some)
}

/// Why a value was refused, naming the field it came from. Messages never echo secrets.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ValidationError {
    pub field: std::borrow::Cow<'static, str>,
    pub message: String,
}

impl ValidationError {
    pub fn new(
        field: impl Into<std::borrow::Cow<'static, str>>,
        message: impl Into<String>,
    ) -> Self {
        ValidationError {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Cases per property test: `default` in the quick run, or `PROPTEST_CASES` for a long one
/// (`PROPTEST_CASES=200000 cargo test --release --lib properties`).
#[cfg(test)]
pub fn property_cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|cases| cases.parse().ok())
        .unwrap_or(default)
}

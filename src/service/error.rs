//! What the application layer refuses, and why. Front ends map it: the web edge to its HTTP
//! answers (`crate::error`), the CLI to a message with its whole cause chain.

use crate::auth::rate_limit::RetryAfter;
use crate::db::RunError;
use crate::domain::{ManagementPermission, ValidationError};
use crate::hashing::HashError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A value of the request failed validation, naming its field.
    #[error(transparent)]
    Validation(#[from] ValidationError),
    /// Nothing the caller may see goes by that name (other organizations' rows, colleagues'
    /// keys without `api_keys:manage`).
    #[error("not found")]
    NotFound,
    /// The caller lacks a management permission the action needs.
    #[error("the caller lacks `{0}`")]
    MissingPermission(ManagementPermission),
    /// The caller holds the permission, but a rule refuses this use of it; the message says
    /// which rule, naming the scope or permission at stake.
    #[error("{0}")]
    Forbidden(String),
    /// The action contradicts the row's state (a revoked key, a taken name).
    #[error("{0}")]
    Conflict(String),
    /// Client authentication failed: one answer for every reason.
    #[error("client authentication failed")]
    InvalidClient,
    /// An authenticated client asked for what it may not do (revoking another client's token
    /// without `tokens:revoke`).
    #[error("{0}")]
    UnauthorizedClient(String),
    /// A refresh token that is unknown, expired, revoked, already used, or not the
    /// authenticated client's: one answer for every reason (RFC 6749 section 5.2).
    #[error("the refresh token is invalid, expired, revoked or already used")]
    InvalidGrant,
    /// A requested scope is malformed or was not granted.
    #[error("{0}")]
    InvalidScope(String),
    /// A log-in failed: one answer for every reason.
    #[error("wrong email or password")]
    InvalidCredentials,
    /// No credentials at all.
    #[error("credentials are required")]
    MissingCredentials,
    /// Credentials that no longer stand: a revoked key, an ended session.
    #[error("{0}")]
    InvalidToken(&'static str),
    #[error("too many attempts")]
    RateLimited { retry_after_seconds: u64 },
    #[error("the service is busy")]
    Unavailable { retry_after_seconds: u64 },
    /// A fault on keygate's side: logged with its cause chain, never shown to the caller.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl Error {
    pub fn internal(err: impl Into<anyhow::Error>) -> Error {
        Error::Internal(err.into())
    }
}

impl From<diesel::result::Error> for Error {
    fn from(err: diesel::result::Error) -> Error {
        if crate::db::unavailable_because(&err) {
            log::error!("the database is unavailable: {err}");
            return Error::Unavailable {
                retry_after_seconds: 1,
            };
        }
        Error::Internal(err.into())
    }
}

impl From<RunError> for Error {
    fn from(err: RunError) -> Error {
        match err {
            RunError::Unavailable(_) => {
                log::error!("{:#}", anyhow::Error::from(err));
                Error::Unavailable {
                    retry_after_seconds: 1,
                }
            }
            RunError::Task(_) => Error::Internal(err.into()),
        }
    }
}

impl From<HashError> for Error {
    fn from(err: HashError) -> Error {
        match err {
            HashError::Busy => Error::Unavailable {
                retry_after_seconds: 1,
            },
            HashError::Failed(_) => Error::Internal(err.into()),
        }
    }
}

impl From<RetryAfter> for Error {
    fn from(RetryAfter(seconds): RetryAfter) -> Error {
        Error::RateLimited {
            retry_after_seconds: seconds,
        }
    }
}

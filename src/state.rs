//! What every handler may reach: settings, the pool, the validator, the hasher, the limiter.

use crate::auth::rate_limit::FailureLimiter;
use crate::config::Settings;
use crate::db::DbPool;
use crate::domain::ScopeCatalog;
use crate::hashing::SecretHasher;
use crate::tokens::TokenValidator;

pub struct AppState {
    pub settings: Settings,
    /// The issuer URL (configured, or derived from the bound address).
    pub issuer: String,
    pub pool: DbPool,
    pub validator: TokenValidator,
    pub catalog: ScopeCatalog,
    pub hasher: SecretHasher,
    pub limiter: FailureLimiter,
    /// Failed console logins, counted like failed client authentications.
    pub login_limiter: FailureLimiter,
    pub last_used: std::sync::Arc<crate::last_used::LastUsed>,
    pub verified: crate::auth::verified::VerifiedSecrets,
    pub list_counts: crate::routes::api_keys::counts::ListCounts,
}

impl AppState {
    /// Applies feed changes this instance made itself, at once (the feed brings them to the
    /// other instances).
    pub fn apply_changes(&self, changes: &[crate::tokens::Change]) {
        if !changes.is_empty() {
            self.validator
                .revocations()
                .apply(changes, chrono::Utc::now().timestamp());
        }
    }
}

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
}

impl AppState {
    /// How long after a change a token issued before it may still be presented: one lifetime
    /// plus the validation leeway on both clocks.
    pub fn token_window_seconds(&self) -> i64 {
        let tokens = &self.settings.tokens;
        (tokens.lifetime_seconds + 2 * tokens.leeway_seconds) as i64
    }
}

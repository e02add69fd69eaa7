//! The application layer: every rule keygate enforces, written once for all of its front ends
//! (the HTTP API, the CLI, the console). Front ends parse their input into domain values, call
//! a function here, and render what it returns; none of them decides who may do what
//! ([`policy`] does) or touches the database itself.
//!
//! Each action that changes a row does so in one transaction with its audit event and, when
//! it ends tokens, its change-feed entry; the change is then applied to this instance's
//! validator at once (the feed brings it to the others).

pub mod api_keys;
pub mod audit;
pub mod callers;
pub mod direct_keys;
mod error;
pub mod grant;
pub mod invitations;
pub mod key_lists;
pub mod login;
pub mod master_key;
pub mod organizations;
pub mod policy;
pub mod refresh;
pub mod reveals;
pub mod revocation_stream;
pub mod signing_keys;
pub mod token_status;
pub mod usage;
pub mod users;
pub mod webhook_delivery;
pub mod webhooks;

use std::net::IpAddr;
use std::sync::Arc;

pub use audit::Actor;
pub use callers::Caller;
pub use error::Error;

use crate::auth::rate_limit::{FailureLimiter, RequestLimiter};
use crate::auth::verified::{InFlight, VerifiedSecrets};
use crate::config::Settings;
use crate::db::{self, DbConnection, DbPool};
use crate::domain::{ScopeCatalog, UsageMetric};
use crate::hashing::{HashingLimits, SecretHasher};
use crate::last_used::LastUsed;
use crate::tokens::{Change, MasterKey, TokenValidator};
use crate::usage::UsageCounters;

/// Everything the application layer works with, built once per process.
pub struct Service {
    pub settings: Settings,
    /// The issuer URL (configured, or derived from the bound address).
    pub issuer: String,
    pub pool: DbPool,
    pub validator: TokenValidator,
    /// Seals signing keys and one-time views; the CLI works without it.
    pub master_key: Option<Arc<MasterKey>>,
    pub catalog: ScopeCatalog,
    pub hasher: SecretHasher,
    /// Failed client authentications.
    pub limiter: FailureLimiter,
    /// Token requests per client and per address, whatever their outcome.
    pub token_requests: RequestLimiter,
    /// Console log-in attempts.
    pub login_limiter: FailureLimiter,
    pub last_used: Arc<LastUsed>,
    pub usage: Arc<UsageCounters>,
    pub verified: VerifiedSecrets,
    /// Secret verifications under way: requests presenting the same credentials meanwhile
    /// share one.
    pub verifying: InFlight<grant::Verdict>,
    pub key_counts: key_lists::ListCounts,
    pub revocation_quota: token_status::RevocationQuota,
    /// The issuer, audiences and lifetime every access token carries.
    pub token_terms: Arc<grant::TokenTerms>,
    /// What every webhook event carries.
    pub outbox: webhooks::Outbox,
    /// Resource servers following the revocation stream.
    pub followers: revocation_stream::Followers,
    /// Rotations this instance's schedule made (`signing.rotate_every_days`), for the metrics.
    pub scheduled_rotations: Arc<signing_keys::RotationCount>,
}

impl Service {
    pub fn new(
        settings: Settings,
        issuer: String,
        pool: DbPool,
        validator: TokenValidator,
        master_key: Option<Arc<MasterKey>>,
    ) -> Service {
        let secrets = &settings.secrets;
        let hasher = SecretHasher::new(&HashingLimits {
            secret_cost: secrets.bcrypt_cost,
            password_cost: secrets.password_bcrypt_cost,
            threads: secrets.hashing_threads,
            max_pending: secrets.max_pending_hashes,
            login_threads: secrets.login_hashing_threads,
            max_pending_logins: secrets.max_pending_logins,
        });
        Service {
            catalog: settings.scopes.catalog.clone(),
            limiter: FailureLimiter::new(&settings.rate_limit),
            token_requests: RequestLimiter::new(&settings.rate_limit),
            login_limiter: FailureLimiter::new(&settings.rate_limit),
            last_used: Arc::new(LastUsed::default()),
            usage: Arc::new(UsageCounters::default()),
            verified: VerifiedSecrets::new(
                settings.cache.verified_secrets,
                settings.cache.verified_secret_seconds,
            ),
            verifying: InFlight::default(),
            key_counts: Default::default(),
            revocation_quota: token_status::RevocationQuota::new(&settings.rate_limit),
            token_terms: Arc::new(grant::TokenTerms::new(&issuer, &settings.tokens)),
            outbox: webhooks::Outbox::new(&settings.webhooks),
            followers: Default::default(),
            scheduled_rotations: Default::default(),
            hasher,
            issuer,
            pool,
            validator,
            master_key,
            settings,
        }
    }

    /// Runs `work` on a pooled connection, off the async workers (its log lines keep the
    /// request's id).
    pub(crate) async fn db<T, F>(&self, work: F) -> Result<T, Error>
    where
        T: Send + 'static,
        F: FnOnce(&mut DbConnection) -> Result<T, Error> + Send + 'static,
    {
        let request = crate::logging::request_id();
        db::run(&self.pool, move |conn| {
            crate::logging::in_request(request, || work(conn))
        })
        .await
    }

    /// Adds one to a key's usage counter for this hour.
    pub(crate) fn count(&self, client_id: &str, metric: UsageMetric) {
        self.usage.count(client_id, metric, chrono::Utc::now());
    }

    /// Applies feed changes this instance made itself, at once (the feed brings them to the
    /// other instances).
    pub(crate) fn apply(&self, changes: &[Change]) {
        if !changes.is_empty() {
            self.validator
                .revocations()
                .apply(changes, chrono::Utc::now().timestamp());
        }
    }
}

/// Where a request comes from, as the front end established it: for rate limits and the
/// audit trail.
#[derive(Clone, Debug)]
pub struct Origin {
    pub address: IpAddr,
    pub user_agent: Option<String>,
}

impl Origin {
    /// The actor of an audit event, acting from here.
    pub fn actor(&self, label: String) -> Actor {
        Actor {
            label,
            client_ip: Some(self.address.to_string()),
            user_agent: self.user_agent.clone(),
        }
    }
}

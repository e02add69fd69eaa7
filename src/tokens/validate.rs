//! Validating an access token: RFC 9068 section 4 and the RFC 8725 checklist. The algorithm
//! comes from the key found by `kid`, never from the token; `typ`, `iss`, `aud`, `exp`, `nbf`
//! and `iat` are checked; a revoked key's tokens are refused from memory. A token validated
//! once is remembered (by its SHA-256) until it expires, so presenting it again costs a hash,
//! a lookup, and the checks that can change: expiry, environment, revocation.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use arc_swap::ArcSwap;
use chrono::Utc;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Validation, decode, decode_header};
use prometheus::{IntCounter, IntCounterVec, Opts};
use quick_cache::sync::Cache;

use super::{AccessTokenClaims, Keyring, Revocations, SigningAlgorithm};
use crate::domain::Environment;

/// Longest token accepted: keygate's own are under 1 KiB with a few scopes, and under 4 KiB
/// with the most scopes a key can hold (2048 characters) signed with RS256.
const MAX_TOKEN_LEN: usize = 8192;
const MAX_KID_LEN: usize = 64;

#[derive(Clone, Debug)]
pub struct ValidationParams {
    pub issuer: String,
    /// The `aud` of live tokens.
    pub audience: String,
    /// The `aud` of test tokens: another value, so that a JWT library that checks only `aud`
    /// never takes a test token where a live one is expected.
    pub test_audience: String,
    pub leeway_seconds: u64,
    /// Whose tokens are accepted: a production API takes `live` only, so a key made for a
    /// developer's laptop (`test`) cannot call it.
    pub environments: Vec<Environment>,
    /// How many validated tokens to remember (0: none).
    pub cache_capacity: usize,
    /// Whether [`crate::connect_validator`] also accepts an API key's secret as the bearer
    /// credential, as keygate's own routes do (`validation.accept_api_keys`).
    pub accept_api_keys: bool,
}

impl ValidationParams {
    /// Live tokens of `issuer` for `audience`, with 30 seconds of leeway, remembering up to
    /// 100 000 validated tokens. Test tokens, when accepted, carry `<audience>-test` (keygate's
    /// default; see [`ValidationParams::test_audience`]).
    pub fn new(issuer: impl Into<String>, audience: impl Into<String>) -> ValidationParams {
        let audience = audience.into();
        ValidationParams {
            issuer: issuer.into(),
            test_audience: default_test_audience(&audience),
            audience,
            leeway_seconds: 30,
            environments: vec![Environment::Live],
            cache_capacity: 100_000,
            accept_api_keys: true,
        }
    }

    /// Whether API keys' secrets are accepted as bearer credentials besides access tokens
    /// (keygate's `validation.accept_api_keys`; on by default, as on keygate's own routes).
    pub fn accept_api_keys(mut self, accept: bool) -> ValidationParams {
        self.accept_api_keys = accept;
        self
    }

    /// Accept tokens of these environments instead.
    pub fn environments(mut self, environments: &[Environment]) -> ValidationParams {
        self.environments = environments.to_vec();
        self
    }

    /// The `aud` test tokens carry (keygate's `tokens.test_audience`).
    pub fn test_audience(mut self, audience: impl Into<String>) -> ValidationParams {
        self.test_audience = audience.into();
        self
    }

    /// The audience tokens of `environment` carry.
    pub fn audience_of(&self, environment: Environment) -> &str {
        match environment {
            Environment::Live => &self.audience,
            Environment::Test => &self.test_audience,
        }
    }
}

/// The test audience keygate derives when none is configured: `<audience>-test`.
pub fn default_test_audience(audience: &str) -> String {
    format!("{audience}-test")
}

/// Why a token was refused. Each maps to an RFC 6750 `invalid_token` description.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenRejection {
    Malformed,
    UnknownKey,
    Expired,
    NotYetValid,
    Revoked,
    WrongEnvironment,
    Invalid,
}

impl TokenRejection {
    pub const ALL: [TokenRejection; 7] = [
        TokenRejection::Malformed,
        TokenRejection::UnknownKey,
        TokenRejection::Expired,
        TokenRejection::NotYetValid,
        TokenRejection::Revoked,
        TokenRejection::WrongEnvironment,
        TokenRejection::Invalid,
    ];

    /// Its name in metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenRejection::Malformed => "malformed",
            TokenRejection::UnknownKey => "unknown_key",
            TokenRejection::Expired => "expired",
            TokenRejection::NotYetValid => "not_yet_valid",
            TokenRejection::Revoked => "revoked",
            TokenRejection::WrongEnvironment => "wrong_environment",
            TokenRejection::Invalid => "invalid",
        }
    }

    pub fn description(self) -> &'static str {
        match self {
            TokenRejection::Malformed => "the access token is malformed",
            TokenRejection::UnknownKey => "the access token was not signed by a current key",
            TokenRejection::Expired => "the access token has expired",
            TokenRejection::NotYetValid => "the access token is not valid yet",
            TokenRejection::Revoked => "the access token has been revoked",
            TokenRejection::WrongEnvironment => "the access token belongs to another environment",
            TokenRejection::Invalid => "the access token is invalid",
        }
    }
}

/// Why an API key presented as the bearer credential was refused.
#[derive(Debug)]
pub enum ApiKeyRefusal {
    /// RFC 6750 `invalid_token`, with its description.
    Invalid(&'static str),
    RateLimited {
        retry_after_seconds: u64,
    },
    Unavailable {
        retry_after_seconds: u64,
    },
    /// A fault on the verifier's side (already logged).
    Internal,
}

/// Verifies an API key's secret presented as the bearer credential: a validator that has one
/// accepts API keys besides access tokens (see [`crate::connect_validator`]).
pub trait ApiKeyVerifier: Send + Sync {
    /// The claims a token of the key would carry now, if the key stands.
    fn verify(
        &self,
        credential: String,
        address: std::net::IpAddr,
    ) -> futures_util::future::LocalBoxFuture<'static, Result<Arc<AccessTokenClaims>, ApiKeyRefusal>>;
}

/// Fetches the signing keys again when a token names a key the validator does not know: a
/// validator that reads keygate's JWKS over HTTP has one (see `crate::remote`).
pub trait KeyRefresher: Send + Sync {
    /// Resolves once the keys are as current as they will get now: fetched again, unless
    /// they were fetched a moment ago (so a flood of unknown `kid`s costs keygate one fetch
    /// per cooldown, however many tokens name them).
    fn refresh(&self) -> futures_util::future::BoxFuture<'static, ()>;
}

/// What a validator counts: validations by outcome, and the hits and misses of its cache of
/// tokens validated before. Unregistered: keygate's `/metrics` registers them.
#[derive(Clone)]
pub struct ValidationMetrics {
    /// `keygate_token_validations_total{outcome}`: `valid`, or a [`TokenRejection`].
    pub outcomes: IntCounterVec,
    /// `keygate_seen_token_cache_total{result}`: `hit` or `miss`.
    pub seen_cache: IntCounterVec,
}

/// The counters of [`ValidationMetrics`], each found once: counting is an atomic add.
struct Counters {
    metrics: ValidationMetrics,
    valid: IntCounter,
    /// By `TokenRejection as usize`.
    refused: Vec<IntCounter>,
    seen_hit: IntCounter,
    seen_miss: IntCounter,
}

impl Counters {
    fn new() -> Counters {
        let outcomes = IntCounterVec::new(
            Opts::new(
                "keygate_token_validations_total",
                "Access tokens validated, by outcome",
            ),
            &["outcome"],
        )
        .expect("a valid metric");
        let seen_cache = IntCounterVec::new(
            Opts::new(
                "keygate_seen_token_cache_total",
                "Lookups of tokens validated before, by result",
            ),
            &["result"],
        )
        .expect("a valid metric");
        Counters {
            valid: outcomes.with_label_values(&["valid"]),
            refused: TokenRejection::ALL
                .iter()
                .map(|r| outcomes.with_label_values(&[r.as_str()]))
                .collect(),
            seen_hit: seen_cache.with_label_values(&["hit"]),
            seen_miss: seen_cache.with_label_values(&["miss"]),
            metrics: ValidationMetrics {
                outcomes,
                seen_cache,
            },
        }
    }
}

/// Shared, cheaply cloned validator: what the extractor asks, and what the change feed keeps
/// current.
#[derive(Clone)]
pub struct TokenValidator {
    inner: Arc<Inner>,
}

/// A [`TokenValidator`] that may have been dropped (see [`TokenValidator::downgrade`]).
#[derive(Clone)]
pub struct WeakTokenValidator(std::sync::Weak<Inner>);

impl WeakTokenValidator {
    /// The validator, unless every clone of it was dropped.
    pub fn upgrade(&self) -> Option<TokenValidator> {
        self.0.upgrade().map(|inner| TokenValidator { inner })
    }
}

struct Inner {
    params: ValidationParams,
    keyring: ArcSwap<Keyring>,
    revocations: Revocations,
    /// Tokens that passed every check once, by SHA-256 of the whole token.
    seen: Option<Cache<[u8; 32], Arc<AccessTokenClaims>>>,
    /// Unix seconds at which the last complete read of the change feed began: every change
    /// committed before then is known.
    synced_as_of: AtomicI64,
    /// jsonwebtoken's checks per algorithm, indexed by `SigningAlgorithm as usize`.
    validations: Vec<Validation>,
    /// Set when API keys are accepted as bearer credentials.
    api_keys: std::sync::OnceLock<Arc<dyn ApiKeyVerifier>>,
    /// Set when the keys come from keygate's JWKS.
    key_refresher: std::sync::OnceLock<Arc<dyn KeyRefresher>>,
    counters: Counters,
}

impl TokenValidator {
    pub fn new(params: ValidationParams, keyring: Keyring) -> TokenValidator {
        let seen = (params.cache_capacity > 0).then(|| Cache::new(params.cache_capacity));
        let validations = SigningAlgorithm::ALL
            .iter()
            .map(|a| validation_for(&params, *a))
            .collect();
        TokenValidator {
            inner: Arc::new(Inner {
                params,
                keyring: ArcSwap::from_pointee(keyring),
                revocations: Revocations::default(),
                seen,
                synced_as_of: AtomicI64::new(0),
                validations,
                api_keys: std::sync::OnceLock::new(),
                key_refresher: std::sync::OnceLock::new(),
                counters: Counters::new(),
            }),
        }
    }

    /// Accepts API keys as bearer credentials from now on, verified by `verifier` (once: a
    /// second call changes nothing).
    pub fn accept_api_keys(&self, verifier: Arc<dyn ApiKeyVerifier>) {
        let _ = self.inner.api_keys.set(verifier);
    }

    /// What verifies API keys presented as bearer credentials, if they are accepted.
    pub fn api_key_verifier(&self) -> Option<Arc<dyn ApiKeyVerifier>> {
        self.inner.api_keys.get().cloned()
    }

    /// Asks `refresher` for the keys again whenever a token names an unknown key (once: a
    /// second call changes nothing).
    pub fn refresh_keys_with(&self, refresher: Arc<dyn KeyRefresher>) {
        let _ = self.inner.key_refresher.set(refresher);
    }

    /// A handle that does not keep the validator alive: for background tasks that keep it
    /// current and should end with it.
    pub fn downgrade(&self) -> WeakTokenValidator {
        WeakTokenValidator(Arc::downgrade(&self.inner))
    }

    /// What fetches the keys again on an unknown `kid`, if anything does.
    pub fn key_refresher(&self) -> Option<Arc<dyn KeyRefresher>> {
        self.inner.key_refresher.get().cloned()
    }

    pub fn params(&self) -> &ValidationParams {
        &self.inner.params
    }

    pub fn keyring(&self) -> arc_swap::Guard<Arc<Keyring>> {
        self.inner.keyring.load()
    }

    /// Installs a reloaded keyring, and forgets the tokens validated under the old one: a key
    /// may have left it (its window closed early, or it was withdrawn).
    pub fn replace_keyring(&self, keyring: Keyring) {
        self.inner.keyring.store(Arc::new(keyring));
        if let Some(seen) = &self.inner.seen {
            seen.clear();
        }
    }

    pub fn revocations(&self) -> &Revocations {
        &self.inner.revocations
    }

    /// Records that the change feed was read to its end by a read that began at `as_of`
    /// (unix seconds).
    pub fn mark_synced(&self, as_of: i64) {
        self.inner.synced_as_of.fetch_max(as_of, Ordering::AcqRel);
    }

    /// Unix seconds as of which every change is known: changes committed since may not be.
    pub fn synced_as_of(&self) -> i64 {
        self.inner.synced_as_of.load(Ordering::Acquire)
    }

    /// Seconds since the change feed was last read to its end: what `/readyz` watches, since
    /// a validator that stopped following the feed would miss revocations.
    pub fn seconds_since_sync(&self) -> i64 {
        Utc::now().timestamp() - self.synced_as_of()
    }

    /// What this validator counts.
    pub fn metrics(&self) -> &ValidationMetrics {
        &self.inner.counters.metrics
    }

    pub fn validate(&self, token: &str) -> Result<Arc<AccessTokenClaims>, TokenRejection> {
        let result = self.check(token);
        let counters = &self.inner.counters;
        match &result {
            Ok(_) => counters.valid.inc(),
            Err(rejection) => counters.refused[*rejection as usize].inc(),
        }
        result
    }

    fn check(&self, token: &str) -> Result<Arc<AccessTokenClaims>, TokenRejection> {
        if token.is_empty() || token.len() > MAX_TOKEN_LEN {
            return Err(TokenRejection::Malformed);
        }
        let now = Utc::now().timestamp();
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes());
        let fingerprint: [u8; 32] = digest.as_ref().try_into().expect("SHA-256 is 32 bytes");
        let claims = match self
            .inner
            .seen
            .as_ref()
            .and_then(|seen| seen.get(&fingerprint))
        {
            Some(claims) => {
                self.inner.counters.seen_hit.inc();
                claims
            }
            None => {
                self.inner.counters.seen_miss.inc();
                let claims = Arc::new(self.verify(token, now)?);
                if let Some(seen) = &self.inner.seen {
                    seen.insert(fingerprint, claims.clone());
                }
                claims
            }
        };
        // What can change after a token was first seen: time, and the change feed.
        let leeway = self.inner.params.leeway_seconds as i64;
        if claims.exp < now - leeway {
            if let Some(seen) = &self.inner.seen {
                seen.remove(&fingerprint);
            }
            return Err(TokenRejection::Expired);
        }
        if !self.inner.params.environments.contains(&claims.env) {
            return Err(TokenRejection::WrongEnvironment);
        }
        if self
            .inner
            .revocations
            .is_revoked(&claims.client_id, &claims.jti, claims.iat)
        {
            return Err(TokenRejection::Revoked);
        }
        Ok(claims)
    }

    /// The checks of a token not seen before: shape, header, key, signature and claims.
    fn verify(&self, token: &str, now: i64) -> Result<AccessTokenClaims, TokenRejection> {
        if token.bytes().filter(|&b| b == b'.').count() != 2 {
            return Err(TokenRejection::Malformed);
        }
        let header = decode_header(token).map_err(|_| TokenRejection::Malformed)?;
        let typ_ok = header.typ.as_deref().is_some_and(|t| {
            t.eq_ignore_ascii_case("at+jwt") || t.eq_ignore_ascii_case("application/at+jwt")
        });
        // keygate never sets these; a token that does was not made by keygate (RFC 8725 3.10,
        // RFC 7515 4.1.11 for `crit`).
        let foreign_headers = header.crit.is_some()
            || header.jku.is_some()
            || header.jwk.is_some()
            || header.x5u.is_some()
            || header.x5c.is_some();
        if !typ_ok || foreign_headers {
            return Err(TokenRejection::Invalid);
        }
        let kid = header
            .kid
            .as_deref()
            .filter(|k| k.len() <= MAX_KID_LEN)
            .ok_or(TokenRejection::Invalid)?;

        let keyring = self.inner.keyring.load();
        let verifier = keyring.verifier(kid).ok_or(TokenRejection::UnknownKey)?;
        let algorithm = verifier.algorithm.jwt_algorithm();
        if header.alg != algorithm {
            return Err(TokenRejection::Invalid);
        }
        let validation = &self.inner.validations[verifier.algorithm.index()];
        let claims = decode::<AccessTokenClaims>(token, &verifier.key, validation)
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => TokenRejection::Expired,
                ErrorKind::ImmatureSignature => TokenRejection::NotYetValid,
                _ => TokenRejection::Invalid,
            })?
            .claims;
        let leeway = self.inner.params.leeway_seconds as i64;
        if claims.sub != claims.client_id || claims.exp <= claims.iat || claims.jti.is_empty() {
            return Err(TokenRejection::Invalid);
        }
        // Each environment has its own audience: a test token is never valid where only the
        // live audience is (or the other way round).
        if !claims
            .aud
            .contains(self.inner.params.audience_of(claims.env))
        {
            return Err(TokenRejection::Invalid);
        }
        if claims.iat > now + leeway {
            return Err(TokenRejection::NotYetValid);
        }
        Ok(claims)
    }
}

/// The jsonwebtoken checks for one algorithm, built once.
fn validation_for(params: &ValidationParams, algorithm: SigningAlgorithm) -> Validation {
    let mut validation = Validation::new(algorithm.jwt_algorithm());
    validation.leeway = params.leeway_seconds;
    validation.validate_nbf = true;
    validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
    validation.set_issuer(&[&params.issuer]);
    // Both audiences decode, so that a token of an environment this validator does not accept
    // is refused as such (`verify` then holds each token to its own environment's audience).
    validation.set_audience(&[&params.audience, &params.test_audience]);
    validation
}

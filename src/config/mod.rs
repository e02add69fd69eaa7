//! Settings: compiled-in defaults < `config/default.toml` < `config/<profile>.toml` < environment.
//! Every value is parsed here, once: the rest of keygate receives typed settings.

mod database;
mod names;

use std::path::{Path, PathBuf};

use config::{Config, Environment, File, FileFormat};
use ipnet::IpNet;
use secrecy::SecretString;
use serde::{Deserialize, Deserializer};

pub use database::{DatabaseTarget, data_directory};

use crate::domain::{ScopeCatalog, SigningAlgorithm};
use crate::tokens::{MAX_LEEWAY_SECONDS, MAX_LIFETIME_SECONDS, default_test_audience};

/// The longest refresh-token lifetime (`tokens.refresh_token_lifetime_seconds`): 90 days.
const MAX_REFRESH_LIFETIME_SECONDS: u64 = 90 * 86_400;

const BUILT_IN_DEFAULTS: &str = include_str!("../../config/default.toml");

/// The repository's profiles, compiled in so that the binary behaves the same from any
/// directory; files in the configuration directory still overlay them.
fn built_in_profile(profile: &str) -> Option<&'static str> {
    match profile {
        "development" => Some(include_str!("../../config/development.toml")),
        "test" => Some(include_str!("../../config/test.toml")),
        "production" => Some(include_str!("../../config/production.toml")),
        _ => None,
    }
}

/// Everything keygate can be told, parsed once at start and injected where needed.
#[derive(Clone, Debug, Deserialize)]
pub struct Settings {
    /// The profile these settings were loaded for (`development`, `test`, `production`, ...).
    #[serde(default)]
    pub profile: String,
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub tokens: TokenSettings,
    pub secrets: SecretSettings,
    pub scopes: ScopeSettings,
    pub cache: CacheSettings,
    pub rate_limit: RateLimitSettings,
    pub feed: FeedSettings,
    pub signing: SigningSettings,
    pub validation: ValidationSettings,
    pub usage: UsageSettings,
    pub webhooks: WebhookSettings,
    /// `KEYGATE_MASTER_KEY`: 32 random bytes, base64. Never printed (`SecretString`).
    #[serde(default)]
    pub master_key: Option<SecretString>,
    /// `KEYGATE_PREVIOUS_MASTER_KEY`: while the master key is being changed, the one it
    /// replaces (values it sealed still open, until `keygate master-key rewrap`).
    #[serde(default)]
    pub previous_master_key: Option<SecretString>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct ServerSettings {
    pub bind: String,
    pub workers: usize,
    pub max_body_bytes: usize,
    pub last_used_flush_ms: u64,
    /// Mark the session cookie `Secure` (on in production). Without it, only a request that a
    /// trusted proxy says arrived over HTTPS gets a `Secure` cookie.
    #[serde(default)]
    pub secure_cookies: bool,
    /// PEM files of the certificate chain and its private key: keygate serves HTTPS itself.
    /// Both empty: plain HTTP (behind a proxy that terminates TLS).
    #[serde(default)]
    pub tls_certificate: String,
    #[serde(default)]
    pub tls_private_key: String,
    /// Refuse plain HTTP (on in production), unless a trusted proxy says the request arrived
    /// over HTTPS. The probes and metrics answer either way.
    #[serde(default)]
    pub require_https: bool,
    /// `Strict-Transport-Security: max-age` on answers sent over HTTPS; 0 sends none.
    #[serde(default)]
    pub hsts_max_age_seconds: u64,
}

impl ServerSettings {
    /// Whether keygate serves TLS itself.
    pub fn serves_tls(&self) -> bool {
        !self.tls_certificate.is_empty()
    }
}

/// The URL may carry a password: `Debug` shows where the database is, not how to log in.
#[derive(Clone, Debug, Deserialize)]
pub struct DatabaseSettings {
    pub url: DatabaseTarget,
    pub pool_size: u32,
    pub connect_timeout_seconds: u64,
}

#[derive(Clone, Debug, Deserialize)]
pub struct TokenSettings {
    /// Empty means "derive from the bound address" (see [`Settings::issuer_for`]).
    pub issuer: String,
    /// The `aud` of live tokens.
    pub audience: String,
    /// The `aud` of test tokens; empty in the files means `<audience>-test`.
    #[serde(default)]
    pub test_audience: String,
    pub lifetime_seconds: u64,
    /// For keys that get refresh tokens.
    pub refresh_token_lifetime_seconds: u64,
    pub algorithm: SigningAlgorithm,
    pub leeway_seconds: u64,
}

#[derive(Clone, Debug, Deserialize)]
pub struct SecretSettings {
    pub bcrypt_cost: u32,
    pub password_bcrypt_cost: u32,
    pub hashing_threads: usize,
    pub max_pending_hashes: usize,
    /// Operators' password checks get threads of their own, so that log-ins (the slow hash)
    /// never wait behind token requests, nor take their threads.
    pub login_hashing_threads: usize,
    pub max_pending_logins: usize,
}

#[derive(Clone, Debug, Deserialize)]
pub struct ScopeSettings {
    pub catalog: ScopeCatalog,
}

#[derive(Clone, Debug, Deserialize)]
pub struct ValidationSettings {
    /// Accept an API key's secret itself as a bearer credential (`Authorization: Bearer
    /// kgs_…`), besides access tokens.
    pub accept_api_keys: bool,
}

#[derive(Clone, Debug, Deserialize)]
pub struct UsageSettings {
    /// Days of hourly usage counters kept.
    pub retention_days: u32,
}

#[derive(Clone, Debug, Deserialize)]
pub struct CacheSettings {
    pub validated_tokens: usize,
    pub verified_secrets: usize,
    pub verified_secret_seconds: i64,
}

#[derive(Clone, Debug, Deserialize)]
pub struct RateLimitSettings {
    pub enabled: bool,
    pub failures_per_minute: u32,
    pub failure_burst: u32,
    /// Tokens one client may revoke at `/v1/revoke`: a steady rate, and bursts.
    pub revocations_per_second: u32,
    pub revocation_burst: u32,
    /// Token requests one client (and one source address) may make: a steady rate (0: no
    /// limit) and bursts.
    pub client_requests_per_second: u32,
    pub client_request_burst: u32,
    pub address_requests_per_second: u32,
    pub address_request_burst: u32,
    #[serde(default, deserialize_with = "proxies")]
    pub trusted_proxies: Vec<IpNet>,
}

/// `rate_limit.trusted_proxies`: addresses (`10.0.0.1`) or ranges (`10.0.0.0/8`).
fn proxies<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<IpNet>, D::Error> {
    networks(deserializer, "rate_limit.trusted_proxies")
}

/// `webhooks.allowed_networks`: the same form.
fn allowed_networks<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<IpNet>, D::Error> {
    networks(deserializer, "webhooks.allowed_networks")
}

fn networks<'de, D: Deserializer<'de>>(
    deserializer: D,
    setting: &str,
) -> Result<Vec<IpNet>, D::Error> {
    Vec::<String>::deserialize(deserializer)?
        .iter()
        .map(|entry| {
            entry
                .parse::<IpNet>()
                .or_else(|_| entry.parse::<std::net::IpAddr>().map(IpNet::from))
                .map_err(|_| {
                    serde::de::Error::custom(format!(
                        "{setting}: {entry:?} is not an address or CIDR range"
                    ))
                })
        })
        .collect()
}

#[derive(Clone, Debug, Deserialize)]
pub struct WebhookSettings {
    /// Accept `http://` endpoint URLs (off in production).
    pub allow_http: bool,
    /// Private networks deliveries may reach all the same.
    #[serde(default, deserialize_with = "allowed_networks")]
    pub allowed_networks: Vec<IpNet>,
    pub timeout_seconds: u64,
    pub retry_for_hours: u64,
    pub first_retry_ms: u64,
    pub failure_threshold: u32,
    pub poll_interval_ms: u64,
    pub expiring_notice_days: u32,
    pub schedule_interval_ms: u64,
    pub api_version: String,
    /// Days events and their finished deliveries are kept.
    pub retention_days: u32,
}

#[derive(Clone, Debug, Deserialize)]
pub struct FeedSettings {
    pub poll_interval_ms: u64,
    pub housekeeping_interval_seconds: u64,
}

#[derive(Clone, Debug, Deserialize)]
pub struct SigningSettings {
    pub allow_generated_master_key: bool,
    pub master_key_file: PathBuf,
    /// Days the active key signs before keygate rotates it by itself; 0: only by hand. Signed,
    /// so that a negative value is refused with the range rather than a parse error.
    pub rotate_every_days: i64,
    /// How often each instance looks whether the scheduled rotation is due, milliseconds.
    pub rotation_check_interval_ms: u64,
}

/// The longest `signing.rotate_every_days`: ten years.
pub const MAX_ROTATE_EVERY_DAYS: i64 = 3650;

impl SigningSettings {
    /// How long the active key signs before the schedule rotates it; None: by hand only.
    pub fn rotation_period(&self) -> Option<chrono::Duration> {
        (self.rotate_every_days > 0).then(|| chrono::Duration::days(self.rotate_every_days))
    }
}

impl TokenSettings {
    /// The `aud` tokens of `environment` carry.
    pub fn audience_of(&self, environment: crate::domain::Environment) -> &str {
        match environment {
            crate::domain::Environment::Live => &self.audience,
            crate::domain::Environment::Test => &self.test_audience,
        }
    }
}

impl Settings {
    /// Loads the layered settings for `profile` (or `KEYGATE_PROFILE`, or `development`).
    /// `config_dir` defaults to `./config`; a missing directory is not an error.
    pub fn load(config_dir: Option<&Path>, profile: Option<&str>) -> anyhow::Result<Settings> {
        let env_profile = std::env::var("KEYGATE_PROFILE").ok();
        let profile = profile
            .map(str::to_owned)
            .or(env_profile)
            .unwrap_or_else(|| "development".to_owned());
        let dir = config_dir.unwrap_or_else(|| Path::new("config"));
        if config_dir.is_some() && !dir.is_dir() {
            anyhow::bail!("configuration directory {} does not exist", dir.display());
        }
        let profile_file = dir.join(format!("{profile}.toml"));
        anyhow::ensure!(
            built_in_profile(&profile).is_some() || profile_file.is_file(),
            "there is no profile {profile:?}: keygate has development, test and production, \
             and {} does not exist",
            profile_file.display()
        );
        names::check(BUILT_IN_DEFAULTS, &[dir.join("default.toml"), profile_file])?;
        let mut builder = Config::builder()
            .add_source(File::from_str(BUILT_IN_DEFAULTS, FileFormat::Toml))
            .add_source(File::from_str(
                built_in_profile(&profile).unwrap_or(""),
                FileFormat::Toml,
            ))
            .add_source(File::from(dir.join("default.toml")).required(false))
            .add_source(File::from(dir.join(format!("{profile}.toml"))).required(false))
            .add_source(
                Environment::with_prefix("KEYGATE")
                    .prefix_separator("_")
                    .separator("__")
                    .try_parsing(true)
                    .list_separator(",")
                    .with_list_parse_key("scopes.catalog")
                    .with_list_parse_key("rate_limit.trusted_proxies")
                    .with_list_parse_key("webhooks.allowed_networks"),
            );
        if std::env::var_os("KEYGATE_DATABASE__URL").is_none()
            && let Ok(url) = std::env::var("DATABASE_URL")
        {
            builder = builder.set_override("database.url", url)?;
        }
        builder = builder.set_override("profile", profile.clone())?;
        let settings: Settings = builder.build()?.try_deserialize()?;
        settings.resolved()
    }

    /// Fills in what is derived from other settings, and checks what depends on several.
    fn resolved(mut self) -> anyhow::Result<Settings> {
        if self.signing.master_key_file.as_os_str().is_empty() {
            self.signing.master_key_file = data_directory().join("master.key");
        }
        if self.tokens.test_audience.is_empty() {
            self.tokens.test_audience = default_test_audience(&self.tokens.audience);
        }
        self.check()?;
        Ok(self)
    }

    /// Settings for the test suite: the built-in `test` profile, with no environment overrides.
    pub fn for_tests() -> Settings {
        Self::built_in("test")
    }

    /// The built-in defaults and a built-in profile (or none, for a name keygate has not),
    /// with no file or environment overrides.
    pub fn built_in(profile: &str) -> Settings {
        let settings: Settings = Config::builder()
            .add_source(File::from_str(BUILT_IN_DEFAULTS, FileFormat::Toml))
            .add_source(File::from_str(
                built_in_profile(profile).unwrap_or(""),
                FileFormat::Toml,
            ))
            .set_override("profile", profile)
            .and_then(|b| b.build())
            .and_then(|c| c.try_deserialize())
            .expect("the built-in settings parse");
        settings
            .resolved()
            .expect("the built-in settings are consistent")
    }

    /// The issuer: the configured one, or `http://<bound address>` when none is configured.
    pub fn issuer_for(&self, bound: std::net::SocketAddr) -> String {
        if self.tokens.issuer.is_empty() {
            let scheme = if self.server.serves_tls() {
                "https"
            } else {
                "http"
            };
            format!("{scheme}://{bound}")
        } else {
            self.tokens.issuer.trim_end_matches('/').to_owned()
        }
    }

    fn check(&self) -> anyhow::Result<()> {
        let server = &self.server;
        anyhow::ensure!(
            server.tls_certificate.is_empty() == server.tls_private_key.is_empty(),
            "server.tls_certificate and server.tls_private_key go together: give both PEM files \
             to serve HTTPS, or neither"
        );
        let t = &self.tokens;
        anyhow::ensure!(
            (60..=MAX_LIFETIME_SECONDS as u64).contains(&t.lifetime_seconds),
            "tokens.lifetime_seconds must be between 60 and {MAX_LIFETIME_SECONDS}"
        );
        let w = &self.webhooks;
        anyhow::ensure!(
            (1..=60).contains(&w.timeout_seconds),
            "webhooks.timeout_seconds must be between 1 and 60"
        );
        anyhow::ensure!(
            (1..=720).contains(&w.retry_for_hours),
            "webhooks.retry_for_hours must be between 1 and 720"
        );
        anyhow::ensure!(
            (10..=3_600_000).contains(&w.first_retry_ms),
            "webhooks.first_retry_ms must be between 10 and 3600000"
        );
        anyhow::ensure!(
            w.failure_threshold >= 1,
            "webhooks.failure_threshold must be at least 1"
        );
        anyhow::ensure!(
            w.poll_interval_ms >= 10 && w.schedule_interval_ms >= 10,
            "webhooks.poll_interval_ms and webhooks.schedule_interval_ms must be at least 10"
        );
        anyhow::ensure!(
            (1..=90).contains(&w.expiring_notice_days),
            "webhooks.expiring_notice_days must be between 1 and 90"
        );
        anyhow::ensure!(
            (1..=3650).contains(&self.usage.retention_days),
            "usage.retention_days must be between 1 and 3650"
        );
        anyhow::ensure!(
            (1..=3650).contains(&w.retention_days),
            "webhooks.retention_days must be between 1 and 3650"
        );
        anyhow::ensure!(
            (1..=86_400).contains(&self.feed.housekeeping_interval_seconds),
            "feed.housekeeping_interval_seconds must be between 1 and 86400"
        );
        anyhow::ensure!(
            (60..=MAX_REFRESH_LIFETIME_SECONDS).contains(&t.refresh_token_lifetime_seconds),
            "tokens.refresh_token_lifetime_seconds must be between 60 and {MAX_REFRESH_LIFETIME_SECONDS} (90 days)"
        );
        anyhow::ensure!(
            t.leeway_seconds <= MAX_LEEWAY_SECONDS as u64,
            "tokens.leeway_seconds must be at most {MAX_LEEWAY_SECONDS}"
        );
        anyhow::ensure!(!t.audience.is_empty(), "tokens.audience must not be empty");
        anyhow::ensure!(
            t.test_audience != t.audience,
            "tokens.test_audience must differ from tokens.audience, or test tokens would be \
             accepted where live ones are expected"
        );
        anyhow::ensure!(
            self.profile != "production" || !t.issuer.is_empty(),
            "the production profile needs tokens.issuer (KEYGATE_TOKENS__ISSUER): the public URL \
             clients reach keygate at, e.g. https://auth.example.com"
        );
        anyhow::ensure!(
            (4..=31).contains(&self.secrets.bcrypt_cost),
            "secrets.bcrypt_cost must be between 4 and 31"
        );
        anyhow::ensure!(
            (4..=31).contains(&self.secrets.password_bcrypt_cost),
            "secrets.password_bcrypt_cost must be between 4 and 31"
        );
        anyhow::ensure!(
            self.database.pool_size >= 1,
            "database.pool_size must be at least 1"
        );
        anyhow::ensure!(
            (0..=86400).contains(&self.cache.verified_secret_seconds),
            "cache.verified_secret_seconds must be between 0 and 86400"
        );
        anyhow::ensure!(
            self.feed.poll_interval_ms >= 10,
            "feed.poll_interval_ms must be at least 10"
        );
        anyhow::ensure!(
            (0..=MAX_ROTATE_EVERY_DAYS).contains(&self.signing.rotate_every_days),
            "signing.rotate_every_days must be between 0 (rotate by hand only) and \
             {MAX_ROTATE_EVERY_DAYS} (ten years), not {}",
            self.signing.rotate_every_days
        );
        anyhow::ensure!(
            (10..=3_600_000).contains(&self.signing.rotation_check_interval_ms),
            "signing.rotation_check_interval_ms must be between 10 and 3600000"
        );
        anyhow::ensure!(
            self.secrets.login_hashing_threads >= 1,
            "secrets.login_hashing_threads must be at least 1"
        );
        Ok(())
    }
}

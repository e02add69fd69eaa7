//! The app's side: [`TokenSource`] gets a token with the client-credentials grant, keeps it,
//! and renews it shortly before it expires; as [reqwest-middleware] middleware it puts the
//! token on every request, and when the API answers `401` renews once and sends the request
//! again. Callers that need a token at the same moment share one renewal. keygate's `429`
//! and `503` answers (and the API's, through the middleware) are retried after the
//! `Retry-After` they carry, or with exponential backoff and jitter when they carry none.
//!
//! The client secret is read from the environment or a file and kept in a
//! [`SecretString`]: it is sent in HTTP Basic to `/v1/token` and nowhere else, and no `Debug`
//! string or error shows it (nor the token).
//!
//! [reqwest-middleware]: https://docs.rs/reqwest-middleware

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::header::{AUTHORIZATION, HeaderValue, RETRY_AFTER};
use reqwest::{Request, Response, StatusCode, Url};
use reqwest_middleware::{Middleware, Next};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// What can go wrong getting a token.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// A setting is missing or malformed (which one is said; never its value).
    #[error("{0}")]
    Settings(String),
    /// keygate could not be reached, or its answer not read.
    #[error("keygate could not be reached at {url}: {source}")]
    Unreachable {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    /// keygate refused the request with an RFC 6749 error (`invalid_client`,
    /// `invalid_scope`, …).
    #[error("keygate refused the token request ({status}): {error}{}", description.as_deref().map(|d| format!(": {d}")).unwrap_or_default())]
    Refused {
        status: u16,
        error: String,
        description: Option<String>,
    },
    /// Still `429` or `503` after every retry.
    #[error("keygate is busy ({status}) after {attempts} attempts")]
    Busy { status: u16, attempts: u32 },
    /// An answer that is not a token response.
    #[error("keygate's answer is not a token response ({status})")]
    Unexpected { status: u16 },
}

/// An access token; `Debug` does not show it.
#[derive(Clone)]
pub struct AccessToken {
    value: SecretString,
    /// When to stop using it (its expiry, less the renewal margin).
    renew_at: Instant,
    /// The scopes keygate granted.
    pub scope: Option<String>,
}

impl AccessToken {
    /// The token, for an `Authorization: Bearer` header.
    pub fn secret(&self) -> &str {
        self.value.expose_secret()
    }

    fn is_fresh(&self) -> bool {
        Instant::now() < self.renew_at
    }
}

impl std::fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessToken")
            .field("value", &"[redacted]")
            .field("scope", &self.scope)
            .finish()
    }
}

/// Retries of `429` and `503`.
#[derive(Clone, Copy, Debug)]
pub struct RetryPolicy {
    /// Attempts after the first.
    pub retries: u32,
    /// The first wait without `Retry-After`; each next one doubles.
    pub first_backoff: Duration,
    /// The longest wait, whatever `Retry-After` asks.
    pub max_wait: Duration,
}

impl Default for RetryPolicy {
    fn default() -> RetryPolicy {
        RetryPolicy {
            retries: 3,
            first_backoff: Duration::from_millis(500),
            max_wait: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// How long to wait before retry number `retry` (0-based) of an answer that carried
    /// `retry_after`.
    pub fn wait(&self, retry: u32, retry_after: Option<&HeaderValue>) -> Duration {
        let asked = retry_after
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        let wait = asked.unwrap_or_else(|| {
            let base = self.first_backoff.saturating_mul(1 << retry.min(16));
            // ±25 % jitter, so that clients refused together do not come back together.
            let mut byte = [0u8; 1];
            let _ = aws_lc_rs::rand::fill(&mut byte);
            base.mul_f64(0.75 + f64::from(byte[0]) / 510.0)
        });
        wait.min(self.max_wait)
    }
}

/// `Retry-After` as seconds or as an HTTP date (RFC 9110 section 10.2.3).
fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let wait = at.with_timezone(&chrono::Utc) - chrono::Utc::now();
    Some(wait.to_std().unwrap_or(Duration::ZERO))
}

/// Whether an answer asks to come back later.
fn is_busy(status: StatusCode) -> bool {
    matches!(
        status,
        StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
    )
}

/// Gets, keeps and renews one client's tokens. Cheap to clone: clones share the token.
#[derive(Clone)]
pub struct TokenSource {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    token_url: Url,
    client_id: String,
    secret: SecretString,
    scope: Option<String>,
    renew_before: Duration,
    retry: RetryPolicy,
    /// Held while a token is fetched, so concurrent callers wait for that one.
    current: tokio::sync::Mutex<Option<AccessToken>>,
}

impl std::fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSource")
            .field("token_url", &self.inner.token_url.as_str())
            .field("client_id", &self.inner.client_id)
            .field("client_secret", &"[redacted]")
            .field("scope", &self.inner.scope)
            .finish()
    }
}

/// Settings of a [`TokenSource`].
pub struct TokenSourceBuilder {
    url: String,
    client_id: Option<String>,
    secret: Option<SecretString>,
    scope: Option<String>,
    http: Option<reqwest::Client>,
    renew_before: Duration,
    retry: RetryPolicy,
}

impl TokenSourceBuilder {
    pub fn client_id(mut self, client_id: impl Into<String>) -> Self {
        self.client_id = Some(client_id.into());
        self
    }

    pub fn client_secret(mut self, secret: SecretString) -> Self {
        self.secret = Some(secret);
        self
    }

    /// The secret from an environment variable.
    pub fn secret_from_env(mut self, variable: &str) -> Result<Self, ClientError> {
        let value = std::env::var(variable)
            .map_err(|_| ClientError::Settings(format!("{variable} is not set")))?;
        self.secret = Some(SecretString::from(value.trim().to_owned()));
        Ok(self)
    }

    /// The secret from a file (its first line), as container secrets are mounted.
    pub fn secret_from_file(mut self, path: &Path) -> Result<Self, ClientError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ClientError::Settings(format!(
                "cannot read the secret file {}: {e}",
                path.display()
            ))
        })?;
        let secret = text.lines().next().unwrap_or_default().trim().to_owned();
        if secret.is_empty() {
            return Err(ClientError::Settings(format!(
                "the secret file {} is empty",
                path.display()
            )));
        }
        self.secret = Some(SecretString::from(secret));
        Ok(self)
    }

    /// Space-separated scopes to ask for (default: every scope of the key).
    pub fn scope(mut self, scope: impl Into<String>) -> Self {
        self.scope = Some(scope.into());
        self
    }

    /// The HTTP client for token requests (default: a new one with a 10 s timeout).
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.http = Some(client);
        self
    }

    /// How long before its expiry a token is renewed (default 60 s; at most half its
    /// lifetime).
    pub fn renew_before(mut self, margin: Duration) -> Self {
        self.renew_before = margin;
        self
    }

    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// Builds the source. reqwest here speaks TLS through rustls with aws-lc-rs: unless the
    /// process chose a rustls provider already, this installs aws-lc-rs as its default, which
    /// any `reqwest::Client` made afterwards uses too.
    pub fn build(self) -> Result<TokenSource, ClientError> {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let base = Url::parse(&self.url)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.has_host())
            .ok_or_else(|| {
                ClientError::Settings(format!(
                    "keygate's URL must be an http:// or https:// URL, not {:?}",
                    self.url
                ))
            })?;
        // Relative to the base, so that keygate may live under a path behind a proxy.
        let mut base = base;
        if !base.path().ends_with('/') {
            base.set_path(&format!("{}/", base.path()));
        }
        let token_url = base
            .join("v1/token")
            .map_err(|e| ClientError::Settings(format!("keygate's URL: {e}")))?;
        let client_id = self
            .client_id
            .filter(|id| !id.trim().is_empty())
            .ok_or_else(|| ClientError::Settings("the client_id is missing".into()))?;
        let secret = self
            .secret
            .ok_or_else(|| ClientError::Settings("the client secret is missing".into()))?;
        let http = match self.http {
            Some(http) => http,
            None => reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .map_err(|e| ClientError::Settings(format!("HTTP client: {e}")))?,
        };
        Ok(TokenSource {
            inner: Arc::new(Inner {
                http,
                token_url,
                client_id: client_id.trim().to_owned(),
                secret,
                scope: self.scope,
                renew_before: self.renew_before,
                retry: self.retry,
                current: tokio::sync::Mutex::new(None),
            }),
        })
    }
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    expires_in: u64,
    scope: Option<String>,
}

#[derive(Deserialize)]
struct OAuthError {
    error: String,
    error_description: Option<String>,
}

impl TokenSource {
    /// A source for the keygate at `url` (its base URL, such as `https://keygate.example.com`).
    pub fn builder(url: impl Into<String>) -> TokenSourceBuilder {
        TokenSourceBuilder {
            url: url.into(),
            client_id: None,
            secret: None,
            scope: None,
            http: None,
            renew_before: Duration::from_secs(60),
            retry: RetryPolicy::default(),
        }
    }

    /// A source configured by the environment: `KEYGATE_URL`, `KEYGATE_CLIENT_ID`, and
    /// `KEYGATE_CLIENT_SECRET` or `KEYGATE_CLIENT_SECRET_FILE`; `KEYGATE_SCOPE` optionally.
    pub fn from_env() -> Result<TokenSource, ClientError> {
        let url = std::env::var("KEYGATE_URL")
            .map_err(|_| ClientError::Settings("KEYGATE_URL is not set".into()))?;
        let client_id = std::env::var("KEYGATE_CLIENT_ID")
            .map_err(|_| ClientError::Settings("KEYGATE_CLIENT_ID is not set".into()))?;
        let mut builder = TokenSource::builder(url).client_id(client_id);
        builder = match std::env::var_os("KEYGATE_CLIENT_SECRET_FILE") {
            Some(path) => builder.secret_from_file(Path::new(&path))?,
            None => builder.secret_from_env("KEYGATE_CLIENT_SECRET")?,
        };
        if let Ok(scope) = std::env::var("KEYGATE_SCOPE") {
            builder = builder.scope(scope);
        }
        builder.build()
    }

    /// A token that is not about to expire: the one kept, or a new one. Callers that ask
    /// while a token is being fetched wait for that one.
    pub async fn token(&self) -> Result<AccessToken, ClientError> {
        let mut current = self.inner.current.lock().await;
        if let Some(token) = current.as_ref().filter(|t| t.is_fresh()) {
            return Ok(token.clone());
        }
        let token = self.fetch().await?;
        *current = Some(token.clone());
        Ok(token)
    }

    /// A new token after an API refused `rejected`. When another caller has renewed it
    /// meanwhile, that token is returned rather than fetching yet another.
    pub async fn renew(&self, rejected: &AccessToken) -> Result<AccessToken, ClientError> {
        let mut current = self.inner.current.lock().await;
        if let Some(token) = current
            .as_ref()
            .filter(|t| t.secret() != rejected.secret() && t.is_fresh())
        {
            return Ok(token.clone());
        }
        let token = self.fetch().await?;
        *current = Some(token.clone());
        Ok(token)
    }

    /// One token request, retried while keygate answers `429` or `503`.
    async fn fetch(&self) -> Result<AccessToken, ClientError> {
        let inner = &self.inner;
        let body = {
            let mut form = form_urlencoded::Serializer::new(String::new());
            form.append_pair("grant_type", "client_credentials");
            if let Some(scope) = &inner.scope {
                form.append_pair("scope", scope);
            }
            form.finish()
        };
        let mut retry = 0;
        loop {
            let sent = inner
                .http
                .post(inner.token_url.clone())
                .basic_auth(&inner.client_id, Some(inner.secret.expose_secret()))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body.clone())
                .send()
                .await;
            let response = sent.map_err(|source| ClientError::Unreachable {
                url: inner.token_url.to_string(),
                source: source.without_url(),
            })?;
            let status = response.status();
            if is_busy(status) {
                if retry == inner.retry.retries {
                    return Err(ClientError::Busy {
                        status: status.as_u16(),
                        attempts: retry + 1,
                    });
                }
                let wait = inner.retry.wait(retry, response.headers().get(RETRY_AFTER));
                retry += 1;
                tokio::time::sleep(wait).await;
                continue;
            }
            let bytes = response
                .bytes()
                .await
                .map_err(|source| ClientError::Unreachable {
                    url: inner.token_url.to_string(),
                    source: source.without_url(),
                })?;
            let unexpected = || ClientError::Unexpected {
                status: status.as_u16(),
            };
            if !status.is_success() {
                let refused: OAuthError =
                    serde_json::from_slice(&bytes).map_err(|_| unexpected())?;
                return Err(ClientError::Refused {
                    status: status.as_u16(),
                    error: refused.error,
                    description: refused.error_description,
                });
            }
            let token: TokenResponse = serde_json::from_slice(&bytes).map_err(|_| unexpected())?;
            let lifetime = Duration::from_secs(token.expires_in);
            let margin = inner.renew_before.min(lifetime / 2);
            return Ok(AccessToken {
                value: SecretString::from(token.access_token),
                renew_at: Instant::now() + lifetime - margin,
                scope: token.scope,
            });
        }
    }
}

fn bearer(token: &AccessToken) -> HeaderValue {
    let mut value = HeaderValue::from_str(&format!("Bearer {}", token.secret()))
        .expect("a token is visible ASCII");
    value.set_sensitive(true);
    value
}

#[async_trait::async_trait]
impl Middleware for TokenSource {
    /// Sends the request with a token; after a `401`, once more with a renewed token; after a
    /// `429` or `503`, again when `Retry-After` says (as the token requests are). A request
    /// whose body cannot be cloned (a stream) is sent once.
    async fn handle(
        &self,
        mut request: Request,
        extensions: &mut http::Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<Response> {
        let mut token = self.token().await.map_err(anyhow::Error::from)?;
        let mut renewed = false;
        let mut retry = 0;
        loop {
            request.headers_mut().insert(AUTHORIZATION, bearer(&token));
            let Some(again) = request.try_clone() else {
                return next.run(request, extensions).await;
            };
            let response = next.clone().run(request, extensions).await?;
            let status = response.status();
            if status == StatusCode::UNAUTHORIZED && !renewed {
                renewed = true;
                token = self.renew(&token).await.map_err(anyhow::Error::from)?;
            } else if is_busy(status) && retry < self.inner.retry.retries {
                let wait = self
                    .inner
                    .retry
                    .wait(retry, response.headers().get(RETRY_AFTER));
                retry += 1;
                tokio::time::sleep(wait).await;
            } else {
                return Ok(response);
            }
            request = again;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_is_read_as_seconds_or_a_date() {
        assert_eq!(parse_retry_after("3"), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after(" 0 "), Some(Duration::ZERO));
        let later = chrono::Utc::now() + chrono::Duration::seconds(20);
        let date = later.format("%a, %d %b %Y %H:%M:%S GMT").to_string();
        let wait = parse_retry_after(&date).unwrap();
        assert!(
            wait > Duration::from_secs(15) && wait <= Duration::from_secs(20),
            "{wait:?}"
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(Duration::ZERO),
            "a date past is now"
        );
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn waits_follow_retry_after_or_double_with_jitter_and_are_capped() {
        let policy = RetryPolicy::default();
        let asked = HeaderValue::from_static("2");
        assert_eq!(policy.wait(0, Some(&asked)), Duration::from_secs(2));
        let greedy = HeaderValue::from_static("3600");
        assert_eq!(policy.wait(0, Some(&greedy)), policy.max_wait);
        for retry in 0..3 {
            let base = policy.first_backoff * (1 << retry);
            let wait = policy.wait(retry, None);
            assert!(
                wait >= base.mul_f64(0.75) && wait <= base.mul_f64(1.25),
                "retry {retry}: {wait:?}"
            );
        }
        assert_eq!(policy.wait(30, None), policy.max_wait);
    }

    #[test]
    fn neither_debug_string_shows_a_secret() {
        let source = TokenSource::builder("http://127.0.0.1:8080")
            .client_id("kgc_abc")
            .client_secret(SecretString::from("kgs_live_topsecret".to_owned()))
            .build()
            .unwrap();
        let shown = format!("{source:?}");
        assert!(
            !shown.contains("topsecret") && shown.contains("kgc_abc"),
            "{shown}"
        );
        let token = AccessToken {
            value: SecretString::from("eyJhbGciOi.secret.part".to_owned()),
            renew_at: Instant::now(),
            scope: None,
        };
        assert!(!format!("{token:?}").contains("secret.part"));
    }

    #[test]
    fn bad_settings_are_named() {
        let missing = TokenSource::builder("http://127.0.0.1:8080")
            .client_id("kgc_abc")
            .build()
            .unwrap_err();
        assert_eq!(missing.to_string(), "the client secret is missing");
        let url = TokenSource::builder("keygate.example.com")
            .client_id("kgc_abc")
            .client_secret(SecretString::from("s".to_owned()))
            .build()
            .unwrap_err();
        assert!(url.to_string().contains("http:// or https://"), "{url}");
    }
}

//! For resource servers that know only keygate's URL: [`RemoteValidator`] builds the same
//! [`TokenValidator`] the `Authenticated` extractor asks, from keygate's discovery document
//! (RFC 8414) and JWKS (RFC 7517), with no access to keygate's database.
//!
//! - The JWKS is fetched again when its `Cache-Control: max-age` runs out, and when a token
//!   names a key not in hand, at most once per cooldown (5 s by default): a flood of tokens
//!   with made-up `kid`s costs keygate one fetch per cooldown, whatever its size.
//! - With a key holding `revocations:read` ([`RemoteValidator::follow_revocations`]), the
//!   validator follows keygate's revocation stream (Server-Sent Events): a revoked key or
//!   token is refused as soon as its event arrives, and a lost connection resumes from the
//!   last event it received.
//! - While keygate is unreachable, the keys and revocations in hand stay in use: tokens of
//!   known keys keep validating, and revocations made meanwhile arrive on reconnection.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, bail};
use eventsource_stream::{Event, EventStreamError, Eventsource};
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use reqwest::Url;
use reqwest::header::{ACCEPT, CACHE_CONTROL};
use serde::Deserialize;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::client::TokenSource;
use crate::domain::Environment;
use crate::tokens::stream_events::{self, SYNC, Sync};
use crate::tokens::{KeyRefresher, Keyring, TokenValidator, ValidationParams, WeakTokenValidator};

/// The least time between two fetches of the JWKS asked for by unknown `kid`s.
const DEFAULT_COOLDOWN: Duration = Duration::from_secs(5);
/// The longest discovery document or JWKS read.
const MAX_DOCUMENT_BYTES: usize = 1 << 20;
/// How long one fetch of a document may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// Bounds on how long a JWKS is kept, whatever its `max-age` says, and the time kept when it
/// says nothing.
const MIN_KEEP: Duration = Duration::from_secs(10);
const MAX_KEEP: Duration = Duration::from_secs(24 * 3600);
const DEFAULT_KEEP: Duration = Duration::from_secs(300);
/// How soon a failed scheduled fetch is tried again.
const RETRY_FETCH: Duration = Duration::from_secs(10);
/// The stream says `sync` at least every 15 s: silence for three of those means the
/// connection is gone, whatever TCP thinks.
const STREAM_SILENCE: Duration = Duration::from_secs(45);
/// How long `connect` waits for the stream's first `sync`.
const FIRST_SYNC: Duration = Duration::from_secs(10);
/// Waits between reconnections, doubling from the first to the last.
const BACKOFF_FIRST: Duration = Duration::from_secs(1);
const BACKOFF_LAST: Duration = Duration::from_secs(30);

/// Settings of a validator that knows only keygate's URL; [`RemoteValidator::connect`] makes
/// it.
///
/// ```no_run
/// # async fn run() -> anyhow::Result<()> {
/// use keygate::client::TokenSource;
/// use keygate::remote::RemoteValidator;
///
/// let validator = RemoteValidator::new("https://auth.example.com")
///     // A key with `revocations:read`: revoked tokens are refused within a second.
///     .follow_revocations(TokenSource::from_env()?)
///     .connect()
///     .await?;
/// // App::new().app_data(web::Data::new(validator.clone())) …
/// # Ok(()) }
/// ```
pub struct RemoteValidator {
    url: String,
    issuer: Option<String>,
    audience: String,
    test_audience: Option<String>,
    environments: Vec<Environment>,
    revocations: Option<TokenSource>,
    http: Option<reqwest::Client>,
    cooldown: Duration,
}

impl RemoteValidator {
    /// A validator of the tokens of the keygate at `url`, for keygate's default audience
    /// (`keygate`), live tokens only, following no revocation stream.
    pub fn new(url: impl Into<String>) -> RemoteValidator {
        RemoteValidator {
            url: url.into(),
            issuer: None,
            audience: "keygate".to_owned(),
            test_audience: None,
            environments: vec![Environment::Live],
            revocations: None,
            http: None,
            cooldown: DEFAULT_COOLDOWN,
        }
    }

    /// Settings from the environment: `KEYGATE_URL`; optionally `KEYGATE_ISSUER` and
    /// `KEYGATE_AUDIENCE`; and, when `KEYGATE_CLIENT_ID` is set, the revocation stream followed
    /// with that key (`KEYGATE_CLIENT_SECRET` or `KEYGATE_CLIENT_SECRET_FILE`).
    pub fn from_env() -> anyhow::Result<RemoteValidator> {
        let variable = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let url = variable("KEYGATE_URL").context("KEYGATE_URL is not set")?;
        let mut validator = RemoteValidator::new(url);
        if let Some(issuer) = variable("KEYGATE_ISSUER") {
            validator = validator.issuer(issuer);
        }
        if let Some(audience) = variable("KEYGATE_AUDIENCE") {
            validator = validator.audience(audience);
        }
        if variable("KEYGATE_CLIENT_ID").is_some() {
            validator = validator.follow_revocations(TokenSource::from_env()?);
        }
        Ok(validator)
    }

    /// The issuer keygate is configured with (`tokens.issuer`), when it is not the URL this
    /// validator reaches it by. Discovery must state exactly this issuer (RFC 8414 section 3.3).
    pub fn issuer(mut self, issuer: impl Into<String>) -> RemoteValidator {
        self.issuer = Some(issuer.into());
        self
    }

    /// The `aud` of live tokens (keygate's `tokens.audience`).
    pub fn audience(mut self, audience: impl Into<String>) -> RemoteValidator {
        self.audience = audience.into();
        self
    }

    /// The `aud` of test tokens (keygate's `tokens.test_audience`; `<audience>-test` unless
    /// set).
    pub fn test_audience(mut self, audience: impl Into<String>) -> RemoteValidator {
        self.test_audience = Some(audience.into());
        self
    }

    /// Accept tokens of these environments instead of live ones only.
    pub fn environments(mut self, environments: &[Environment]) -> RemoteValidator {
        self.environments = environments.to_vec();
        self
    }

    /// Follows keygate's revocation stream with this key's tokens; the key needs
    /// `revocations:read`, which only keys of keygate's own organization can hold.
    pub fn follow_revocations(mut self, tokens: TokenSource) -> RemoteValidator {
        self.revocations = Some(tokens);
        self
    }

    /// The HTTP client to reach keygate with (default: one with a 5 s connect timeout). It
    /// must set no overall timeout, which would cut the revocation stream.
    pub fn http_client(mut self, client: reqwest::Client) -> RemoteValidator {
        self.http = Some(client);
        self
    }

    /// The least time between two fetches of the JWKS asked for by unknown `kid`s (default
    /// 5 s).
    pub fn refresh_cooldown(mut self, cooldown: Duration) -> RemoteValidator {
        self.cooldown = cooldown;
        self
    }

    /// Reads keygate's discovery document and JWKS, and when asked to, follows the revocation
    /// stream up to its first `sync`; then keeps all of it current in the background (tasks
    /// on the current tokio runtime, which end when every clone of the validator is dropped).
    pub async fn connect(self) -> anyhow::Result<TokenValidator> {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let base = Url::parse(&self.url)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.has_host())
            .with_context(|| {
                format!(
                    "keygate's URL must be an http:// or https:// URL, not {:?}",
                    self.url
                )
            })?;
        let base = base.as_str().trim_end_matches('/').to_owned();
        let issuer = self
            .issuer
            .map(|issuer| issuer.trim_end_matches('/').to_owned())
            .unwrap_or_else(|| base.clone());
        let http = match self.http {
            Some(http) => http,
            None => reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(5))
                .build()?,
        };

        let discovery = format!("{base}/.well-known/oauth-authorization-server");
        let metadata: Metadata = serde_json::from_slice(&fetch(&http, &discovery).await?.0)
            .with_context(|| format!("{discovery} is not a discovery document"))?;
        if metadata.issuer != issuer {
            bail!(
                "keygate at {base} states the issuer {:?}, not {issuer:?}: set the issuer it is \
                 configured with (tokens.issuer)",
                metadata.issuer
            );
        }
        let jwks_uri = Url::parse(&metadata.jwks_uri).context("the discovery's jwks_uri")?;
        let (jwks, keep) = fetch(&http, jwks_uri.as_str()).await?;
        let jwks = String::from_utf8(jwks).context("the JWKS is not UTF-8")?;
        let keyring = Keyring::from_jwks(&jwks).context("keygate's JWKS")?;

        let mut params = ValidationParams::new(issuer, self.audience)
            .environments(&self.environments)
            .accept_api_keys(false);
        if let Some(test_audience) = self.test_audience {
            params = params.test_audience(test_audience);
        }
        let validator = TokenValidator::new(params, keyring);
        let keys = KeyKeeper::start(
            http.clone(),
            jwks_uri,
            validator.downgrade(),
            jwks,
            keep,
            self.cooldown,
        );
        validator.refresh_keys_with(Arc::new(keys.clone()));

        match self.revocations {
            Some(tokens) => {
                let url = metadata
                    .revocation_stream_endpoint
                    .context("this keygate publishes no revocation stream")?;
                let client = reqwest_middleware::ClientBuilder::new(http)
                    .with(tokens)
                    .build();
                StreamFollower {
                    client,
                    url: Url::parse(&url).context("the discovery's revocation_stream_endpoint")?,
                    validator: validator.downgrade(),
                    keys,
                    position: None,
                }
                .start()
                .await?;
            }
            None => log::warn!(
                "following no revocation stream: a revoked token stays valid here until it \
                 expires (give the validator a key with revocations:read)"
            ),
        }
        Ok(validator)
    }
}

/// The members of keygate's discovery document this validator reads.
#[derive(Deserialize)]
struct Metadata {
    issuer: String,
    jwks_uri: String,
    revocation_stream_endpoint: Option<String>,
}

/// GETs a document of at most [`MAX_DOCUMENT_BYTES`], with how long it may be kept.
async fn fetch(http: &reqwest::Client, url: &str) -> anyhow::Result<(Vec<u8>, Duration)> {
    let response = http
        .get(url)
        .timeout(FETCH_TIMEOUT)
        .send()
        .await
        .with_context(|| format!("fetching {url}"))?;
    let status = response.status();
    if !status.is_success() {
        bail!("{url} answered {status}");
    }
    let keep = keep_for(response.headers().get(CACHE_CONTROL));
    let mut body = Vec::new();
    let mut chunks = response.bytes_stream();
    while let Some(chunk) = chunks.next().await {
        body.extend_from_slice(&chunk.with_context(|| format!("reading {url}"))?);
        if body.len() > MAX_DOCUMENT_BYTES {
            bail!("{url} is larger than {MAX_DOCUMENT_BYTES} bytes");
        }
    }
    Ok((body, keep))
}

/// How long a document may be kept, per its `Cache-Control: max-age` (RFC 9111 section
/// 5.2.2.1), within [`MIN_KEEP`] and [`MAX_KEEP`]; `no-store`/`no-cache` count as the least.
fn keep_for(cache_control: Option<&reqwest::header::HeaderValue>) -> Duration {
    let Some(text) = cache_control.and_then(|v| v.to_str().ok()) else {
        return DEFAULT_KEEP;
    };
    let mut keep = DEFAULT_KEEP;
    for directive in text.split(',').map(str::trim) {
        let (name, value) = directive.split_once('=').unwrap_or((directive, ""));
        match name.to_ascii_lowercase().as_str() {
            "max-age" => {
                if let Ok(seconds) = value.trim_matches('"').parse::<u64>() {
                    keep = Duration::from_secs(seconds);
                }
            }
            "no-store" | "no-cache" => return MIN_KEEP,
            _ => {}
        }
    }
    keep.clamp(MIN_KEEP, MAX_KEEP)
}

/// Why the JWKS is fetched now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fetch {
    /// A token named a key not in hand: at most once per cooldown.
    UnknownKey,
    /// keygate said its keys changed.
    KeysChanged,
}

/// Asks the task that keeps the JWKS for a fetch, and waits for it. Cloned into the
/// validator (as its [`KeyRefresher`]) and the stream follower.
#[derive(Clone)]
struct KeyRefresh {
    requests: mpsc::Sender<Fetch>,
    fetched: watch::Receiver<u64>,
    last_fetch: Arc<Mutex<Instant>>,
    cooldown: Duration,
}

impl KeyRefresh {
    fn cooling_down(&self) -> bool {
        let last = *self.last_fetch.lock().expect("never poisoned");
        last.elapsed() < self.cooldown
    }
}

impl KeyRefresher for KeyRefresh {
    fn refresh(&self) -> futures_util::future::BoxFuture<'static, ()> {
        if self.cooling_down() {
            return Box::pin(std::future::ready(()));
        }
        let mut fetched = self.fetched.clone();
        fetched.borrow_and_update();
        // One request waiting is enough: every caller waits for the same fetch.
        let _ = self.requests.try_send(Fetch::UnknownKey);
        Box::pin(async move {
            let _ = tokio::time::timeout(FETCH_TIMEOUT, fetched.changed()).await;
        })
    }
}

/// The task that keeps the JWKS: fetched again when it expires, or when asked.
struct KeyKeeper {
    http: reqwest::Client,
    url: Url,
    validator: WeakTokenValidator,
    requests: mpsc::Receiver<Fetch>,
    fetched: watch::Sender<u64>,
    last_fetch: Arc<Mutex<Instant>>,
    cooldown: Duration,
}

impl KeyKeeper {
    fn start(
        http: reqwest::Client,
        url: Url,
        validator: WeakTokenValidator,
        jwks: String,
        keep: Duration,
        cooldown: Duration,
    ) -> KeyRefresh {
        let (request, requests) = mpsc::channel(1);
        let (fetched, fetched_rx) = watch::channel(0);
        let last_fetch = Arc::new(Mutex::new(Instant::now()));
        let keeper = KeyKeeper {
            http,
            url,
            validator,
            requests,
            fetched,
            last_fetch: last_fetch.clone(),
            cooldown,
        };
        tokio::spawn(keeper.run(jwks, keep));
        KeyRefresh {
            requests: request,
            fetched: fetched_rx,
            last_fetch,
            cooldown,
        }
    }

    async fn run(mut self, mut current: String, keep: Duration) {
        let mut next = Instant::now() + keep;
        loop {
            let reason = tokio::select! {
                request = self.requests.recv() => match request {
                    Some(reason) => Some(reason),
                    None => return,
                },
                _ = tokio::time::sleep_until(next) => None,
            };
            let last = *self.last_fetch.lock().expect("never poisoned");
            // Asked while the previous fetch ran: that fetch answered it.
            if reason == Some(Fetch::UnknownKey) && last.elapsed() < self.cooldown {
                continue;
            }
            *self.last_fetch.lock().expect("never poisoned") = Instant::now();
            let Some(validator) = self.validator.upgrade() else {
                return;
            };
            next = Instant::now()
                + match self.fetch(&validator, &mut current).await {
                    Ok(keep) => keep,
                    Err(err) => {
                        log::warn!(
                            "fetching keygate's JWKS failed; the keys in hand stay in use: {err:#}"
                        );
                        RETRY_FETCH
                    }
                };
            self.fetched.send_modify(|generation| *generation += 1);
        }
    }

    /// Fetches the JWKS, and installs it if it changed (installing forgets the tokens
    /// validated before, so an unchanged JWKS is left as it is).
    async fn fetch(
        &self,
        validator: &TokenValidator,
        current: &mut String,
    ) -> anyhow::Result<Duration> {
        let (jwks, keep) = fetch(&self.http, self.url.as_str()).await?;
        let jwks = String::from_utf8(jwks).context("the JWKS is not UTF-8")?;
        if jwks != *current {
            validator.replace_keyring(Keyring::from_jwks(&jwks)?);
            log::info!("signing keys updated from keygate's JWKS");
            *current = jwks;
        }
        Ok(keep)
    }
}

type Events = BoxStream<'static, Result<Event, EventStreamError<reqwest::Error>>>;

/// Follows keygate's revocation stream, applying each event as it arrives.
struct StreamFollower {
    client: reqwest_middleware::ClientWithMiddleware,
    url: Url,
    validator: WeakTokenValidator,
    keys: KeyRefresh,
    /// The id of the last event received, sent as `Last-Event-ID` on reconnection.
    position: Option<i64>,
}

/// Why reading the stream stopped without an error.
enum Stop {
    Synced,
    ValidatorDropped,
}

impl StreamFollower {
    /// Connects and reads up to the first `sync`, then follows the rest in the background.
    async fn start(mut self) -> anyhow::Result<()> {
        let mut events = self.open().await?;
        tokio::time::timeout(FIRST_SYNC, self.read(&mut events, true))
            .await
            .context("keygate's revocation stream sent no sync in time")??;
        tokio::spawn(self.run(events));
        Ok(())
    }

    async fn open(&mut self) -> anyhow::Result<Events> {
        let mut request = self
            .client
            .get(self.url.clone())
            .header(ACCEPT, "text/event-stream");
        if let Some(position) = self.position {
            request = request.header("last-event-id", position.to_string());
        }
        let response = request
            .send()
            .await
            .context("connecting to keygate's revocation stream")?;
        let status = response.status();
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            let body: String = body.chars().take(300).collect();
            bail!("keygate's revocation stream answered {status}: {body}");
        }
        Ok(response.bytes_stream().eventsource().boxed())
    }

    /// Applies events until the stream fails, or (with `until_sync`) until a `sync`.
    async fn read(&mut self, events: &mut Events, until_sync: bool) -> anyhow::Result<Stop> {
        loop {
            let event = match tokio::time::timeout(STREAM_SILENCE, events.next()).await {
                Err(_) => bail!("keygate's revocation stream went silent"),
                Ok(None) => bail!("keygate closed the revocation stream"),
                Ok(Some(Err(err))) => bail!("reading keygate's revocation stream: {err}"),
                Ok(Some(Ok(event))) => event,
            };
            let Some(validator) = self.validator.upgrade() else {
                return Ok(Stop::ValidatorDropped);
            };
            let id = event.id.parse::<i64>().ok();
            if event.event == SYNC {
                let sync: Sync = serde_json::from_str(&event.data)
                    .context("keygate's revocation stream sent a malformed sync")?;
                self.position = id.or(self.position);
                validator.mark_synced(sync.as_of);
                if until_sync {
                    return Ok(Stop::Synced);
                }
                continue;
            }
            match stream_events::decode(&event.event, &event.data) {
                Ok(Some(change)) => {
                    let now = chrono::Utc::now().timestamp();
                    if validator.revocations().apply(&[change], now) {
                        let _ = self.keys.requests.try_send(Fetch::KeysChanged);
                    }
                }
                Ok(None) => {}
                Err(err) => log::warn!(
                    "skipped a malformed {:?} event of keygate's revocation stream: {err}",
                    event.event
                ),
            }
            self.position = id.or(self.position);
        }
    }

    /// Follows the stream until the validator is dropped, reconnecting after each failure.
    async fn run(mut self, mut events: Events) {
        loop {
            match self.read(&mut events, false).await {
                Ok(_) => return,
                Err(err) => log::warn!("{err:#}; reconnecting"),
            }
            let mut wait = BACKOFF_FIRST;
            events = loop {
                tokio::time::sleep(wait).await;
                if self.validator.upgrade().is_none() {
                    return;
                }
                match self.open().await {
                    Ok(events) => break events,
                    Err(err) => {
                        log::warn!("{err:#}; trying again in {} s", wait.as_secs());
                        wait = (wait * 2).min(BACKOFF_LAST);
                    }
                }
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn a_jwks_is_kept_for_its_max_age_within_bounds() {
        let keep = |value: &'static str| keep_for(Some(&HeaderValue::from_static(value)));
        assert_eq!(keep("public, max-age=300"), Duration::from_secs(300));
        assert_eq!(keep("max-age=\"60\""), Duration::from_secs(60));
        assert_eq!(keep("max-age=0"), MIN_KEEP);
        assert_eq!(keep("max-age=99999999"), MAX_KEEP);
        assert_eq!(keep("no-store"), MIN_KEEP);
        assert_eq!(keep("public"), DEFAULT_KEEP);
        assert_eq!(keep_for(None), DEFAULT_KEEP);
    }
}

//! Client authentication and the client-credentials grant (RFC 6749 sections 2.3.1 and 4.4),
//! as a checklist: respect the failure budget, remember or find the key, verify the secret
//! (always exactly one bcrypt when not remembered), check status, expiry, environment and the
//! owner, narrow the scopes, sign.
//!
//! A token's `iat` is the moment as of which keygate knew the key's state: when its row was
//! read (under a lock that a change of the key waits for), or, for a secret remembered from
//! earlier, when the last complete read of the change feed began (it too waits for changes
//! being written). A change that refuses the key's tokens takes its time after those locks,
//! and cuts at the next second: a token whose key was judged before the change always falls
//! before the cut, on every instance.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::audit::{self, Event};
use super::refresh::{self, Issued};
use super::{Error, Origin, Service, policy};
use crate::auth::client_credentials::{ClientAuth, Grant, TokenRequest};
use crate::auth::verified::{Fingerprint, VerifiedKey};
use crate::db::api_keys::{ApiKey, ApiKeySecret, Credentials};
use crate::db::organizations::Organization;
use crate::db::users::User;
use crate::db::{self, write_transaction};
use crate::domain::{
    AuditAction, ClientId, ClientSecret, Environment, KeyStatus, Outcome, ScopeSet, UsageMetric,
};
use crate::tokens::{IssuedToken, Keyring, TokenSubject, issue, new_jti};

/// A remembered secret is only used while the change feed is this fresh; past it, the key is
/// read again.
const MAX_FEED_LAG_SECONDS: i64 = 30;

/// An authenticated API key, and the moment (unix seconds) as of which its state was known.
#[derive(Clone)]
pub struct Authenticated {
    pub key: Arc<VerifiedKey>,
    pub as_of: i64,
}

impl Authenticated {
    /// What a token of this key, with id `jti`, says of it.
    pub(super) fn subject<'a>(&'a self, jti: &'a str) -> TokenSubject<'a> {
        TokenSubject {
            client_id: &self.key.client_id,
            environment: self.key.environment,
            organization: &self.key.organization,
            key_expires_at: self.key.key_expires_at,
            state_as_of: self.as_of,
            jti,
        }
    }
}

/// What verifying one client_id and secret found: shared by every request presenting them
/// while the verification runs, so it carries no request's own effects.
#[derive(Clone)]
pub enum Verdict {
    Verified(Authenticated),
    /// The key, if it exists, with the reason it does not authenticate (for the audit trail).
    Refused(Option<(i64, Outcome)>),
    RateLimited {
        retry_after_seconds: u64,
    },
    Unavailable {
        retry_after_seconds: u64,
    },
    Failed(Arc<anyhow::Error>),
}

impl From<Error> for Verdict {
    fn from(err: Error) -> Verdict {
        match err {
            Error::RateLimited {
                retry_after_seconds,
            } => Verdict::RateLimited {
                retry_after_seconds,
            },
            Error::Unavailable {
                retry_after_seconds,
            } => Verdict::Unavailable {
                retry_after_seconds,
            },
            Error::Internal(cause) => Verdict::Failed(Arc::new(cause)),
            other => Verdict::Failed(Arc::new(anyhow::anyhow!("{other}"))),
        }
    }
}

/// Authenticates an API key by its secret. Every failure is the same `invalid_client`.
pub async fn authenticate(
    service: &Service,
    client_id: &str,
    client_secret: &str,
    origin: &Origin,
) -> Result<Authenticated, Error> {
    let address = origin.address;
    let client_id = ClientId::parse(client_id).map_err(|_| Error::InvalidClient)?;
    service.limiter.check(address, client_id.as_str())?;
    let fail = || {
        service.limiter.record_failure(address, client_id.as_str());
        Error::InvalidClient
    };
    let secret = ClientSecret::parse(client_secret).map_err(|_| {
        record_denial_of(
            service,
            client_id.as_str(),
            None,
            Outcome::MalformedSecret,
            origin,
        );
        fail()
    })?;
    let fingerprint = service
        .verified
        .fingerprint(client_id.as_str(), secret.expose());
    if let Some(known) = remembered(service, &fingerprint, Utc::now()) {
        return Ok(known);
    }
    let verdict = service
        .verifying
        .run(fingerprint, || async {
            verify(service, &client_id, &secret, fingerprint, address)
                .await
                .unwrap_or_else(Verdict::from)
        })
        .await;
    match verdict {
        Verdict::Verified(authenticated) => Ok(authenticated),
        Verdict::Refused(known) => {
            // The reason is for the audit trail only; the client hears `invalid_client`.
            if let Some((organization_id, reason)) = known {
                record_denial_of(
                    service,
                    client_id.as_str(),
                    Some(organization_id),
                    reason,
                    origin,
                );
            }
            Err(fail())
        }
        Verdict::RateLimited {
            retry_after_seconds,
        } => Err(Error::RateLimited {
            retry_after_seconds,
        }),
        Verdict::Unavailable {
            retry_after_seconds,
        } => Err(Error::Unavailable {
            retry_after_seconds,
        }),
        Verdict::Failed(cause) => Err(Error::Internal(anyhow::anyhow!(
            "verifying a client secret: {cause:#}"
        ))),
    }
}

/// Reads the key, checks the secret (always exactly one bcrypt), judges the key, and
/// remembers a key that authenticates.
async fn verify(
    service: &Service,
    client_id: &ClientId,
    secret: &ClientSecret,
    fingerprint: Fingerprint,
    address: std::net::IpAddr,
) -> Result<Verdict, Error> {
    let now = Utc::now();
    let (found, as_of) = read_credentials(service, client_id, secret).await?;
    let current = found
        .as_ref()
        .and_then(|c| c.secrets.iter().find(|s| secret_is_current(s, now)));
    let candidate = current.map(|s| s.secret_hash.clone());
    // A secret with this prefix exists but its rotation grace is over.
    let secret_expired = current.is_none() && found.as_ref().is_some_and(|c| !c.secrets.is_empty());
    let secret_valid_until = current.and_then(|s| s.expires_at).map(|t| t.and_utc());
    let matched = service
        .hasher
        .verify_secret(secret, candidate, || {
            Ok::<_, Error>(service.limiter.check(address, client_id.as_str())?)
        })
        .await?;
    let Some(credentials) = found else {
        return Ok(Verdict::Refused(None));
    };
    let judged = Judged {
        environment: secret.environment(),
        matched,
        secret_expired,
        now,
    };
    if let Some(reason) = refusal(&credentials, &judged) {
        return Ok(Verdict::Refused(Some((
            credentials.key.organization_id,
            reason,
        ))));
    }
    let Credentials {
        key,
        organization,
        owner,
        ..
    } = credentials;
    let verified = Arc::new(VerifiedKey {
        scopes: policy::key_scopes_now(
            &ScopeSet::from_stored(&key.scopes),
            owner.as_ref(),
            &organization,
            &service.catalog,
        ),
        client_id: key.client_id,
        organization_id: organization.id,
        organization: organization.name,
        environment: key.environment,
        token_only: key.token_only,
        refresh_tokens: key.refresh_tokens,
        key_expires_at: key.expires_at.map(|t| t.and_utc()),
        secret_valid_until,
        verified_at: as_of,
    });
    service.verified.insert(fingerprint, verified.clone());
    Ok(Verdict::Verified(Authenticated {
        key: verified,
        as_of,
    }))
}

/// A secret verified before, while the change feed is fresh enough to say nothing changed.
pub(super) fn remembered(
    service: &Service,
    fingerprint: &Fingerprint,
    now: DateTime<Utc>,
) -> Option<Authenticated> {
    let synced = service.validator.synced_as_of();
    if now.timestamp() - synced > MAX_FEED_LAG_SECONDS {
        return None;
    }
    let revocations = service.validator.revocations();
    let key = service.verified.get(fingerprint, revocations, now)?;
    let as_of = synced.min(now.timestamp());
    // A token as of then would fall before a cut already known: read the key instead.
    if revocations.cut_after(&key.client_id, as_of) {
        return None;
    }
    Some(Authenticated { key, as_of })
}

/// The key and its secrets with the presented prefix, read holding the key's row (a change
/// of the key waits), and the moment they were known.
///
/// A change that refuses a key's tokens cuts at the next second. A key enabled again within
/// that second would issue tokens born refused, so the read waits for the cut's second and
/// is taken again.
async fn read_credentials(
    service: &Service,
    client_id: &ClientId,
    secret: &ClientSecret,
) -> Result<(Option<Credentials>, i64), Error> {
    loop {
        let (client_id, prefix) = (client_id.clone(), secret.prefix());
        let (found, as_of, cut) = service
            .db(move |conn| {
                write_transaction(conn, |conn| -> Result<_, Error> {
                    db::api_keys::lock_shared(conn, client_id.as_str())?;
                    let found =
                        db::api_keys::find_credentials(conn, client_id.as_str(), prefix.as_str())?;
                    let now = Utc::now().timestamp();
                    let usable = found
                        .as_ref()
                        .is_some_and(|c| c.key.status == KeyStatus::Enabled);
                    let cut = if usable {
                        db::changes::latest_cut(conn, client_id.as_str(), now)?
                    } else {
                        None
                    };
                    Ok((found, now, cut))
                })
            })
            .await?;
        match cut {
            Some(cut) if cut > as_of && cut - as_of <= 1 => wait_for_second(cut).await,
            _ => return Ok((found, as_of)),
        }
    }
}

/// Sleeps until the unix second `second` has begun.
async fn wait_for_second(second: i64) {
    let left = second * 1000 - Utc::now().timestamp_millis();
    if left > 0 {
        let left = u64::try_from(left).unwrap_or(0);
        actix_web::rt::time::sleep(std::time::Duration::from_millis(left)).await;
    }
}

/// What verifying the presented secret found.
struct Judged {
    environment: Environment,
    matched: bool,
    secret_expired: bool,
    now: DateTime<Utc>,
}

/// Why a known key does not authenticate, if it does not.
fn refusal(credentials: &Credentials, judged: &Judged) -> Option<Outcome> {
    key_refusal(&credentials.key, judged.environment, judged.now)
        .or_else(|| {
            (!judged.matched).then_some(if judged.secret_expired {
                Outcome::ExpiredSecret
            } else {
                Outcome::WrongSecret
            })
        })
        .or_else(|| holder_refusal(credentials.owner.as_ref(), &credentials.organization))
}

/// Why a key's owner or organization stops it authenticating, if either does.
pub(super) fn holder_refusal(owner: Option<&User>, organization: &Organization) -> Option<Outcome> {
    if owner.is_some_and(|o| !policy::may_log_in(o)) {
        Some(Outcome::OwnerDisabled)
    } else if !organization.is_enabled() {
        Some(Outcome::OrganizationDisabled)
    } else {
        None
    }
}

/// `POST /v1/token` after parsing: either grant.
pub async fn token(
    service: &Service,
    request: TokenRequest,
    origin: &Origin,
) -> Result<Issued, Error> {
    let client_id = match &request.grant {
        Grant::ClientCredentials(client) => Some(client.client_id.as_str()),
        Grant::RefreshToken { client, .. } => client.as_ref().map(|c| c.client_id.as_str()),
    };
    service.token_requests.admit(origin.address, client_id)?;
    let requested = request
        .scope
        .as_deref()
        .map(ScopeSet::parse_delimited)
        .transpose()
        .map_err(|e| Error::InvalidScope(e.message))?
        .filter(|requested| !requested.is_empty());
    match request.grant {
        Grant::ClientCredentials(client) => {
            client_credentials(service, &client, requested, origin).await
        }
        Grant::RefreshToken {
            refresh_token,
            client,
        } => refresh::exchange(service, &refresh_token, client.as_ref(), requested, origin).await,
    }
}

/// RFC 6749 section 4.4: authenticate, narrow to the requested scopes, sign; a key with
/// refresh tokens starts a family of them.
async fn client_credentials(
    service: &Service,
    client: &ClientAuth,
    requested: Option<ScopeSet>,
    origin: &Origin,
) -> Result<Issued, Error> {
    let client = authenticate(service, &client.client_id, &client.client_secret, origin).await?;
    let scopes = match requested {
        Some(requested) => {
            if let Some(missing) = requested.first_missing_from(&client.key.scopes) {
                return Err(Error::InvalidScope(format!(
                    "scope {missing} is not granted to this API key"
                )));
            }
            requested
        }
        None => client.key.scopes.clone(),
    };
    let minter = Minter::new(service);
    let now = Utc::now();
    let issued = if client.key.refresh_tokens {
        refresh::start_family(service, minter, &client, scopes).await?
    } else {
        let jti = new_jti();
        Issued {
            access: minter.mint(&client.subject(&jti), &scopes, now)?,
            refresh: None,
        }
    };
    service.last_used.touch(&client.key.client_id, now);
    service.count(&client.key.client_id, UsageMetric::TokensIssued);
    Ok(issued)
}

/// What every access token says of its issuer: built once per process.
pub struct TokenTerms {
    issuer: String,
    live_audience: String,
    test_audience: String,
    lifetime_seconds: i64,
}

impl TokenTerms {
    pub fn new(issuer: &str, tokens: &crate::config::TokenSettings) -> TokenTerms {
        TokenTerms {
            issuer: issuer.to_owned(),
            live_audience: tokens.audience_of(Environment::Live).to_owned(),
            test_audience: tokens.audience_of(Environment::Test).to_owned(),
            lifetime_seconds: tokens.lifetime_seconds as i64,
        }
    }
}

/// What signing an access token needs, apart from the service, so that it can run inside a
/// database transaction.
pub(super) struct Minter {
    keyring: Arc<Keyring>,
    terms: Arc<TokenTerms>,
}

impl Minter {
    pub(super) fn new(service: &Service) -> Minter {
        Minter {
            keyring: Arc::clone(&service.validator.keyring()),
            terms: service.token_terms.clone(),
        }
    }

    /// Signs an access token with the active signing key.
    pub(super) fn mint(
        &self,
        subject: &TokenSubject<'_>,
        scopes: &ScopeSet,
        now: DateTime<Utc>,
    ) -> Result<IssuedToken, Error> {
        let signer = self
            .keyring
            .signer()
            .ok_or_else(|| Error::internal(anyhow::anyhow!("no active signing key")))?;
        let terms = &self.terms;
        let audience = match subject.environment {
            Environment::Live => &terms.live_audience,
            Environment::Test => &terms.test_audience,
        };
        issue(
            signer,
            &terms.issuer,
            audience,
            terms.lifetime_seconds,
            subject,
            scopes,
            now,
        )
        .map_err(Error::Internal)
    }
}

fn secret_is_current(secret: &ApiKeySecret, now: DateTime<Utc>) -> bool {
    secret.revoked_at.is_none() && secret.expires_at.is_none_or(|t| t.and_utc() > now)
}

/// Why a key with a matching secret may still not authenticate (kept for the audit trail,
/// never told to the client).
pub(super) fn key_refusal(
    key: &ApiKey,
    environment: Environment,
    now: DateTime<Utc>,
) -> Option<Outcome> {
    if key.deleted_at.is_some() {
        Some(Outcome::Deleted)
    } else if key.status != KeyStatus::Enabled {
        Some(match key.status {
            KeyStatus::Revoked => Outcome::Revoked,
            _ => Outcome::Disabled,
        })
    } else if key.environment != environment {
        Some(Outcome::WrongEnvironment)
    } else if key.expires_at.is_some_and(|t| t.and_utc() <= now) {
        Some(Outcome::Expired)
    } else {
        None
    }
}

/// Records a refused authentication in the audit trail, after the response: waiting for the
/// write would make a known client_id answer slower than an unknown one. With no
/// `organization_id` (a malformed secret, whose key was not read), it is recorded only if the
/// key exists, and looked up after the response too.
fn record_denial_of(
    service: &Service,
    client_id: &str,
    organization_id: Option<i64>,
    reason: Outcome,
    origin: &Origin,
) {
    service.count(client_id, UsageMetric::Refused(reason));
    let pool = service.pool.clone();
    let client_id = client_id.to_owned();
    let origin = origin.clone();
    actix_web::rt::spawn(async move {
        let actor = origin.actor(format!("client:{client_id}"));
        let written = db::run(&pool, move |conn| {
            let organization_id = match organization_id {
                Some(id) => id,
                None => match db::api_keys::find_by_client_id(conn, &client_id)? {
                    Some(key) => key.organization_id,
                    None => return Ok(()),
                },
            };
            let event = Event {
                organization_id: Some(organization_id),
                action: AuditAction::TokenDenied,
                target: Some(&client_id),
                outcome: reason,
                details: serde_json::json!({}),
            };
            Ok::<_, Error>(audit::record(conn, &actor, event, Utc::now())?)
        })
        .await;
        if let Err(e) = written {
            log::warn!("could not record a refused token request: {e}");
        }
    });
}

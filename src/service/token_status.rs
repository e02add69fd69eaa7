//! Token introspection (RFC 7662) and revocation (RFC 7009). The caller is an API key,
//! authenticated by its secret (HTTP Basic or the form) or by one of its access tokens. Both
//! only ever see tokens of the caller's organization (and environment, for a `test` key).

use std::num::NonZeroU32;
use std::sync::Arc;

use chrono::Utc;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use super::audit::{self, Event};
use super::callers::{self, Via};
use super::{Caller, Error, Origin, Service, grant, policy, refresh};
use crate::config::RateLimitSettings;
use crate::db::{self, write_transaction};
use crate::domain::{
    AuditAction, ManagementPermission, RefreshToken, UsageMetric, ValidationError,
};
use crate::tokens::{AccessTokenClaims, Change, MAX_LEEWAY_SECONDS};

/// At most this many single tokens are remembered as revoked at once, across all clients;
/// past it, revocation answers 503 until some expire.
pub const MAX_REVOKED_TOKENS: usize = 1_000_000;

/// How the requester authenticated.
pub enum RequesterCredentials {
    Bearer(String),
    Secret {
        client_id: String,
        client_secret: String,
    },
}

/// An API key calling introspection or revocation.
pub struct Requester {
    pub caller: Caller,
    pub client_id: String,
    pub organization: String,
}

/// Authenticates the requester.
pub async fn requester(
    service: &Service,
    credentials: RequesterCredentials,
    origin: &Origin,
) -> Result<Requester, Error> {
    match credentials {
        RequesterCredentials::Bearer(token) => {
            let caller = callers::from_token(service, &token, origin).await?;
            let Via::ApiKey { client_id, .. } = caller.via.clone() else {
                return Err(Error::MissingCredentials);
            };
            let organization_id = policy::home_organization(&caller)?;
            let organization = service
                .db(move |conn| Ok(db::organizations::find(conn, organization_id)?.name))
                .await?;
            Ok(Requester {
                caller,
                client_id,
                organization,
            })
        }
        RequesterCredentials::Secret {
            client_id,
            client_secret,
        } => {
            let client = grant::authenticate(service, &client_id, &client_secret, origin)
                .await?
                .key;
            Ok(Requester {
                caller: Caller {
                    organization_id: Some(client.organization_id),
                    permissions: client.scopes.clone(),
                    owner_user_id: None,
                    deployment: false,
                    actor: origin.actor(format!("api_key:{}", client.client_id)),
                    via: Via::ApiKey {
                        client_id: client.client_id.clone(),
                        environment: client.environment,
                    },
                },
                client_id: client.client_id.clone(),
                organization: client.organization.clone(),
            })
        }
    }
}

/// RFC 7662: the token's claims if it is live and within the requester's reach, else `None`
/// (`{"active": false}`).
pub fn introspect(
    service: &Service,
    requester: &Requester,
    token: Option<&str>,
) -> Result<Option<Arc<AccessTokenClaims>>, Error> {
    policy::require(&requester.caller, ManagementPermission::TokensIntrospect)?;
    let token = token.ok_or_else(token_required)?;
    let active = service
        .validator
        .validate(token)
        .ok()
        .filter(|c| policy::reaches_token(&requester.caller, &requester.organization, c));
    if let Some(claims) = &active {
        service.count(&claims.client_id, UsageMetric::Introspections);
    }
    Ok(active)
}

/// RFC 7009: refuses one token, by its `jti`, until it would have expired (a refresh token:
/// ends its family and refuses the access tokens issued with it). A token that is
/// invalid, already expired, or of another organization is left as it is (answered as done, so
/// the answer reveals nothing); a live token of the requester's organization issued to another
/// client is refused unless the requester holds `tokens:revoke` (RFC 7009 section 2.1).
pub async fn revoke(
    service: &Service,
    requester: Requester,
    token: Option<&str>,
) -> Result<(), Error> {
    let token = token.ok_or_else(token_required)?;
    if RefreshToken::is_tagged(token) {
        return refresh::revoke(service, requester, token).await;
    }
    let Ok(claims) = service.validator.validate(token) else {
        return Ok(());
    };
    if !policy::reaches_token(&requester.caller, &requester.organization, &claims) {
        return Ok(());
    }
    policy::may_revoke_token(&requester.caller, &requester.client_id, &claims.client_id)?;
    service.revocation_quota.admit(&requester.client_id)?;
    if service.validator.revocations().revoked_tokens() >= MAX_REVOKED_TOKENS {
        log::warn!("{MAX_REVOKED_TOKENS} tokens are revoked already: refusing more");
        return Err(Error::Unavailable {
            retry_after_seconds: 60,
        });
    }
    // Kept while any validator, with the largest leeway, could still take the token.
    let change = Change::Token {
        jti: claims.jti.clone(),
        expires_at: claims.exp + MAX_LEEWAY_SECONDS,
    };
    let (published, client_id) = (change.clone(), claims.client_id.clone());
    let Requester { caller, .. } = requester;
    let organization_id = policy::home_organization(&caller)?;
    service
        .db(move |conn| {
            write_transaction(conn, |conn| -> Result<_, Error> {
                let now = Utc::now();
                db::changes::publish(conn, &published, now.naive_utc())?;
                let event = Event::success(organization_id, AuditAction::TokenRevoked, &client_id)
                    .with(serde_json::json!({ "jti": claims.jti }));
                Ok(audit::record(conn, &caller.actor, event, now)?)
            })
        })
        .await?;
    service.apply(&[change]);
    Ok(())
}

fn token_required() -> Error {
    ValidationError::new("token", "is required").into()
}

/// How many tokens one client may revoke (`rate_limit.revocations_per_second` and
/// `revocation_burst`). With tokens living at most a day, this bounds what one client can
/// make every instance remember.
pub struct RevocationQuota {
    enabled: bool,
    per_client: DefaultKeyedRateLimiter<String>,
}

impl RevocationQuota {
    pub fn new(settings: &RateLimitSettings) -> RevocationQuota {
        let rate = NonZeroU32::new(settings.revocations_per_second).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(settings.revocation_burst).unwrap_or(NonZeroU32::MIN);
        RevocationQuota {
            enabled: settings.enabled,
            per_client: RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst)),
        }
    }

    pub(super) fn admit(&self, client_id: &str) -> Result<(), Error> {
        if !self.enabled {
            return Ok(());
        }
        let clock = governor::clock::DefaultClock::default();
        if self.per_client.len() > 100_000 {
            self.per_client.retain_recent();
        }
        self.per_client
            .check_key(&client_id.to_owned())
            .map_err(|wait| {
                use governor::clock::Clock;
                Error::RateLimited {
                    retry_after_seconds: wait.wait_time_from(clock.now()).as_secs().max(1),
                }
            })
    }
}

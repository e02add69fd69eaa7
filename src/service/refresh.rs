//! Refresh tokens (RFC 6749 section 6), for the keys created with them. They are opaque, kept
//! only as their SHA-256, and single use: each refresh hands out a new pair and spends the
//! token it was given. The tokens descended from one client-credentials grant form a family;
//! presenting a spent one again ends the whole family and refuses the access tokens issued
//! with its members (RFC 9700 section 4.14.2), since keygate cannot tell which of the two
//! holders is the thief. Revoking, disabling or rotating the key ends its refresh tokens
//! (`api_keys::cut_tokens`, `api_keys::forget_verified_secrets`).

use chrono::{DateTime, Duration, Utc};

use super::audit::{self, Event};
use super::grant::{self, Authenticated, Minter};
use super::token_status::Requester;
use super::{Error, Origin, Service, policy};
use crate::auth::client_credentials::ClientAuth;
use crate::db::api_keys::{self, ApiKey};
use crate::db::refresh_tokens::{self, NewRefreshToken, StoredRefreshToken};
use crate::db::{self, DbConnection, write_transaction};
use crate::domain::{
    AuditAction, KeyStatus, Outcome, RefreshToken, ScopeCatalog, ScopeSet, UsageMetric,
};
use crate::tokens::{Change, IssuedToken, MAX_LEEWAY_SECONDS, TokenSubject, new_jti};

/// The failure budget of an address counts refused refresh tokens under this name (they name
/// no client).
const REFRESH_FAILURES: &str = "refresh_token";

/// A refresh token handed out.
pub struct IssuedRefresh {
    pub token: RefreshToken,
    pub expires_in: i64,
    /// Unix seconds.
    pub expires_at: i64,
}

/// A token answer: the access token, and a refresh token for a key that gets them.
pub struct Issued {
    pub access: IssuedToken,
    pub refresh: Option<IssuedRefresh>,
}

/// Signs the first pair of a new family for a key just authenticated. The key is read again
/// holding its row: one disabled or revoked since it was verified has had its refresh tokens
/// ended, and must not start a family after that.
pub(super) async fn start_family(
    service: &Service,
    minter: Minter,
    client: &Authenticated,
    scopes: ScopeSet,
) -> Result<Issued, Error> {
    let client = Authenticated {
        key: client.key.clone(),
        as_of: client.as_of,
    };
    let lifetime = refresh_lifetime(service);
    service
        .db(move |conn| {
            write_transaction(conn, |conn| {
                api_keys::lock_shared(conn, &client.key.client_id)?;
                let current = api_keys::find_by_client_id(conn, &client.key.client_id)?
                    .filter(|k| k.status == KeyStatus::Enabled && k.deleted_at.is_none())
                    .ok_or(Error::InvalidClient)?;
                let now = Utc::now();
                let jti = new_jti();
                let access = minter.mint(&client.subject(&jti), &scopes, now)?;
                if !current.refresh_tokens {
                    return Ok(Issued {
                        access,
                        refresh: None,
                    });
                }
                let pair = Pair {
                    family: &new_jti(),
                    family_scopes: &scopes.to_string(),
                    lifetime,
                    now,
                };
                let refresh = pair.store(conn, &current, &access)?;
                Ok(Issued {
                    access,
                    refresh: Some(refresh),
                })
            })
        })
        .await
}

/// `grant_type=refresh_token`: trades a refresh token for a new pair. Client authentication is
/// optional; when sent, it must be the token's key. Every refusal is `invalid_grant`.
pub async fn exchange(
    service: &Service,
    presented: &str,
    client: Option<&ClientAuth>,
    requested: Option<ScopeSet>,
    origin: &Origin,
) -> Result<Issued, Error> {
    service.limiter.check(origin.address, REFRESH_FAILURES)?;
    let fail = || {
        service
            .limiter
            .record_failure(origin.address, REFRESH_FAILURES);
        Error::InvalidGrant
    };
    let token = RefreshToken::parse(presented).map_err(|_| fail())?;
    let expected_client = match client {
        Some(client) => Some(
            grant::authenticate(service, &client.client_id, &client.client_secret, origin)
                .await?
                .key
                .client_id
                .clone(),
        ),
        None => None,
    };
    let trade = Trade {
        token_hash: token.hash(),
        expected_client,
        requested,
        minter: Minter::new(service),
        catalog: service.catalog.clone(),
        lifetime: refresh_lifetime(service),
        origin: origin.clone(),
    };
    let outcome = service
        .db(move |conn| write_transaction(conn, |conn| trade.run(conn)))
        .await?;
    match outcome {
        Traded::Issued { issued, client_id } => {
            service.last_used.touch(&client_id, Utc::now());
            service.count(&client_id, UsageMetric::TokensIssued);
            Ok(issued)
        }
        Traded::Reused { changes, client_id } => {
            service.apply(&changes);
            service.count(
                &client_id,
                UsageMetric::Refused(Outcome::RefreshTokenReused),
            );
            Err(fail())
        }
        Traded::Refused(reason) => {
            if let Some((client_id, reason)) = reason {
                service.count(&client_id, UsageMetric::Refused(reason));
            }
            Err(fail())
        }
    }
}

/// Everything a refresh needs inside its transaction.
struct Trade {
    token_hash: String,
    expected_client: Option<String>,
    requested: Option<ScopeSet>,
    minter: Minter,
    catalog: ScopeCatalog,
    lifetime: i64,
    origin: Origin,
}

enum Traded {
    Issued {
        issued: Issued,
        client_id: String,
    },
    /// A spent token came back: its family is ended, these changes refuse its access tokens.
    Reused {
        changes: Vec<Change>,
        client_id: String,
    },
    /// Refused; for a token of a key that stands no more, the key and why.
    Refused(Option<(String, Outcome)>),
}

impl Trade {
    fn run(self, conn: &mut DbConnection) -> Result<Traded, Error> {
        let now = Utc::now();
        let Some((stored, client_id)) = refresh_tokens::find(conn, &self.token_hash)? else {
            return Ok(Traded::Refused(None));
        };
        // RFC 6749 section 5.2: a refresh token issued to another client is invalid_grant.
        if self
            .expected_client
            .as_ref()
            .is_some_and(|expected| *expected != client_id)
            || stored.revoked_at.is_some()
            || stored.expires_at.and_utc() <= now
        {
            return Ok(Traded::Refused(None));
        }
        if stored.used_at.is_some() {
            return self.reused(conn, &stored, &client_id, now);
        }
        api_keys::lock_shared(conn, &client_id)?;
        let Some((key, organization, owner)) = api_keys::find_with_owner(conn, &client_id)? else {
            return Ok(Traded::Refused(None));
        };
        let as_of = Utc::now().timestamp();
        let refusal = grant::key_refusal(&key, key.environment, now)
            .or_else(|| grant::holder_refusal(owner.as_ref(), &organization));
        if let Some(reason) = refusal {
            let event = Event {
                outcome: reason,
                ..Event::success(key.organization_id, AuditAction::TokenDenied, &client_id)
            };
            audit::record(conn, &self.actor(&client_id), event, now)?;
            return Ok(Traded::Refused(Some((client_id, reason))));
        }
        if !key.refresh_tokens {
            return Ok(Traded::Refused(None));
        }
        let family_scopes = ScopeSet::from_stored(&stored.scopes);
        let held = policy::key_scopes_now(
            &ScopeSet::from_stored(&key.scopes),
            owner.as_ref(),
            &organization,
            &self.catalog,
        )
        .intersection(&family_scopes);
        let scopes = match self.requested.clone() {
            Some(requested) => {
                // RFC 6749 section 6: no scope beyond what the family was granted.
                if let Some(missing) = requested.first_missing_from(&held) {
                    return Err(Error::InvalidScope(format!(
                        "scope {missing} was not granted with this refresh token"
                    )));
                }
                requested
            }
            None => held,
        };
        if !refresh_tokens::spend(conn, stored.id, now.naive_utc())? {
            // Another request spent it a moment ago: that is a reuse too.
            return self.reused(conn, &stored, &client_id, now);
        }
        let jti = new_jti();
        let subject = TokenSubject {
            client_id: &key.client_id,
            environment: key.environment,
            organization: &organization.name,
            key_expires_at: key.expires_at.map(|t| t.and_utc()),
            state_as_of: as_of,
            jti: &jti,
        };
        let access = self.minter.mint(&subject, &scopes, now)?;
        let pair = Pair {
            family: &stored.family,
            family_scopes: &stored.scopes,
            lifetime: self.lifetime,
            now,
        };
        let refresh = pair.store(conn, &key, &access)?;
        Ok(Traded::Issued {
            issued: Issued {
                access,
                refresh: Some(refresh),
            },
            client_id,
        })
    }

    /// Ends the family of a token presented after it was spent, and refuses the access tokens
    /// its members came with.
    fn reused(
        &self,
        conn: &mut DbConnection,
        stored: &StoredRefreshToken,
        client_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Traded, Error> {
        let changes = end_family(conn, &stored.family, now)?;
        if let Some(key) = api_keys::find_by_client_id(conn, client_id)? {
            let event = Event {
                outcome: Outcome::RefreshTokenReused,
                ..Event::success(key.organization_id, AuditAction::TokenDenied, client_id)
            }
            .with(serde_json::json!({
                "refresh_token_family": stored.family,
                "access_tokens_revoked": changes.len(),
            }));
            audit::record(conn, &self.actor(client_id), event, now)?;
        }
        Ok(Traded::Reused {
            changes,
            client_id: client_id.to_owned(),
        })
    }

    fn actor(&self, client_id: &str) -> super::Actor {
        self.origin.actor(format!("client:{client_id}"))
    }
}

/// A new refresh token of a family, stored beside the access token it comes with.
struct Pair<'a> {
    family: &'a str,
    family_scopes: &'a str,
    lifetime: i64,
    now: DateTime<Utc>,
}

impl Pair<'_> {
    fn store(
        &self,
        conn: &mut DbConnection,
        key: &ApiKey,
        access: &IssuedToken,
    ) -> Result<IssuedRefresh, Error> {
        let token = RefreshToken::generate();
        let mut expires_at = self.now + Duration::seconds(self.lifetime);
        // A refresh token never outlives its key.
        if let Some(key_expiry) = key.expires_at.map(|t| t.and_utc()) {
            expires_at = expires_at.min(key_expiry);
        }
        let access_expires_at = DateTime::from_timestamp(access.expires_at, 0)
            .ok_or_else(|| Error::internal(anyhow::anyhow!("access token expiry out of range")))?;
        refresh_tokens::insert(
            conn,
            &NewRefreshToken {
                api_key_id: key.id,
                family: self.family,
                token_hash: &token.hash(),
                scopes: self.family_scopes,
                created_at: self.now.naive_utc(),
                expires_at: expires_at.naive_utc(),
                access_jti: &access.jti,
                access_expires_at: access_expires_at.naive_utc(),
            },
        )?;
        Ok(IssuedRefresh {
            token,
            expires_in: (expires_at - self.now).num_seconds(),
            expires_at: expires_at.timestamp(),
        })
    }
}

fn refresh_lifetime(service: &Service) -> i64 {
    service.settings.tokens.refresh_token_lifetime_seconds as i64
}

/// Ends a family inside a write transaction, and publishes the refusal of the access tokens
/// its members came with (kept while any validator could still take them).
fn end_family(
    conn: &mut DbConnection,
    family: &str,
    now: DateTime<Utc>,
) -> Result<Vec<Change>, Error> {
    let access_tokens = refresh_tokens::end_family(conn, family, now.naive_utc())?;
    db::changes::lock(conn)?;
    let changes: Vec<Change> = access_tokens
        .into_iter()
        .map(|(jti, expires_at)| Change::Token {
            jti,
            expires_at: expires_at.and_utc().timestamp() + MAX_LEEWAY_SECONDS,
        })
        .collect();
    for change in &changes {
        db::changes::publish(conn, change, now.naive_utc())?;
    }
    Ok(changes)
}

/// RFC 7009 for a refresh token: ends its family, and refuses the access tokens issued with
/// it (section 2.1 asks for both). As for access tokens, a token that is unknown, already
/// ended, or beyond the requester's reach is left as it is and answered as done; one of
/// another client of the organization needs `tokens:revoke`.
pub(super) async fn revoke(
    service: &Service,
    requester: Requester,
    presented: &str,
) -> Result<(), Error> {
    let Ok(token) = RefreshToken::parse(presented) else {
        return Ok(());
    };
    service.revocation_quota.admit(&requester.client_id)?;
    let hash = token.hash();
    let changes = service
        .db(move |conn| {
            write_transaction(conn, |conn| -> Result<_, Error> {
                let now = Utc::now();
                let Some((stored, client_id)) = refresh_tokens::find(conn, &hash)? else {
                    return Ok(Vec::new());
                };
                let Some(key) = api_keys::find_by_client_id(conn, &client_id)? else {
                    return Ok(Vec::new());
                };
                if !policy::reaches_tokens_of(&requester.caller, &key)
                    || stored.revoked_at.is_some()
                    || stored.expires_at.and_utc() <= now
                {
                    return Ok(Vec::new());
                }
                policy::may_revoke_token(&requester.caller, &requester.client_id, &client_id)?;
                let changes = end_family(conn, &stored.family, now)?;
                let event =
                    Event::success(key.organization_id, AuditAction::TokenRevoked, &client_id)
                        .with(serde_json::json!({
                            "refresh_token_family": stored.family,
                            "access_tokens_revoked": changes.len(),
                        }));
                audit::record(conn, &requester.caller.actor, event, now)?;
                Ok(changes)
            })
        })
        .await?;
    service.apply(&changes);
    Ok(())
}

/// Ends every refresh token of a key, inside the transaction of the change that ends them.
pub(super) fn end_for_key(conn: &mut DbConnection, api_key_id: i64) -> diesel::QueryResult<usize> {
    refresh_tokens::end_for_key(conn, api_key_id, Utc::now().naive_utc())
}

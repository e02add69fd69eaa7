//! Client authentication and the client-credentials grant (RFC 6749 sections 2.3.1 and 4.4),
//! as a checklist: respect the failure budget, remember or find the key, verify the secret
//! (always exactly one bcrypt when not remembered), check status, expiry, environment and the
//! creator, narrow the scopes, sign.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::json;

use crate::auth::Origin;
use crate::auth::client_credentials::TokenRequest;
use crate::auth::verified::VerifiedKey;
use crate::db;
use crate::db::api_keys::{ApiKey, ApiKeySecret, Credentials};
use crate::domain::{ClientId, ClientSecret, Environment, ScopeSet};
use crate::error::ApiError;
use crate::lifecycle::users::permissions_of;
use crate::lifecycle::{Event, audit};
use crate::state::AppState;
use crate::tokens::{IssuedToken, TokenSubject, issue};

/// Authenticates an API key by its secret. Every failure is the same `invalid_client`.
pub async fn authenticate(
    state: &AppState,
    client_id: &str,
    client_secret: &str,
    origin: &Origin,
) -> Result<Arc<VerifiedKey>, ApiError> {
    let address = origin.address;
    let client_id = ClientId::parse(client_id).map_err(|_| ApiError::InvalidClient)?;
    state.limiter.check(address, client_id.as_str())?;
    let fail = || {
        state.limiter.record_failure(address, client_id.as_str());
        ApiError::InvalidClient
    };
    let secret = ClientSecret::parse(client_secret).map_err(|_| fail())?;
    let now = Utc::now();
    let fingerprint = state
        .verified
        .fingerprint(client_id.as_str(), secret.expose());
    if let Some(known) = state
        .verified
        .get(&fingerprint, state.validator.revocations(), now)
    {
        return Ok(known);
    }

    let found = {
        let client_id = client_id.clone();
        let prefix = secret.prefix();
        db::run(&state.pool, move |conn| {
            Ok(db::api_keys::find_credentials(
                conn,
                client_id.as_str(),
                prefix.as_str(),
            )?)
        })
        .await?
    };
    let current = found
        .as_ref()
        .and_then(|c| c.secrets.iter().find(|s| secret_is_current(s, now)));
    let candidate = current.map(|s| s.secret_hash.clone());
    // A secret with this prefix exists but its rotation grace is over.
    let secret_expired = current.is_none() && found.as_ref().is_some_and(|c| !c.secrets.is_empty());
    let secret_valid_until = current.and_then(|s| s.expires_at).map(|t| t.and_utc());
    let environment = secret.environment();
    let matched = state
        .hasher
        .verify(secret, candidate, || {
            state.limiter.check(address, client_id.as_str())
        })
        .await?;
    let Some(Credentials {
        key,
        organization,
        owner,
        ..
    }) = found
    else {
        return Err(fail());
    };
    // The reason is for the audit trail only; the client hears `invalid_client` whatever it is.
    let refusal = key_refusal(&key, environment, now)
        .or_else(|| {
            (!matched).then_some(if secret_expired {
                "expired_secret"
            } else {
                "wrong_secret"
            })
        })
        .or_else(|| {
            owner
                .as_ref()
                .filter(|o| o.status != "enabled")
                .map(|_| "owner_disabled")
        });
    if let Some(reason) = refusal {
        record_denial(state, &key, reason, origin);
        return Err(fail());
    }
    let mut scopes = ScopeSet::from_stored(&key.scopes);
    if let Some(owner) = &owner {
        scopes = scopes.intersection(&permissions_of(owner, &organization, &state.catalog));
    }
    let verified = Arc::new(VerifiedKey {
        client_id: key.client_id,
        organization_id: organization.id,
        organization: organization.name,
        environment,
        scopes,
        key_expires_at: key.expires_at.map(|t| t.and_utc()),
        secret_valid_until,
        verified_at: now.timestamp(),
    });
    state.verified.insert(fingerprint, verified.clone());
    Ok(verified)
}

/// `POST /v1/token` after parsing: authenticate, narrow to the requested scopes, sign.
pub async fn client_credentials(
    state: &AppState,
    request: TokenRequest,
    origin: &Origin,
) -> Result<IssuedToken, ApiError> {
    let requested = request
        .scope
        .as_deref()
        .map(ScopeSet::parse_delimited)
        .transpose()
        .map_err(|e| ApiError::InvalidScope(e.message))?;
    let client = authenticate(state, &request.client_id, &request.client_secret, origin).await?;
    let scopes = match requested {
        Some(requested) if !requested.is_empty() => {
            if let Some(missing) = requested.first_missing_from(&client.scopes) {
                return Err(ApiError::InvalidScope(format!(
                    "scope {missing} is not granted to this API key"
                )));
            }
            requested
        }
        _ => client.scopes.clone(),
    };

    let keyring = state.validator.keyring();
    let signer = keyring
        .signer()
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("no active signing key")))?;
    let subject = TokenSubject {
        client_id: &client.client_id,
        environment: client.environment,
        organization: &client.organization,
        key_expires_at: client.key_expires_at,
    };
    let tokens = &state.settings.tokens;
    let now = Utc::now();
    let issued = issue(
        signer,
        &state.issuer,
        &tokens.audience,
        tokens.lifetime_seconds as i64,
        &subject,
        &scopes,
        now,
    )
    .map_err(ApiError::Internal)?;
    state.last_used.touch(&client.client_id, now);
    Ok(issued)
}

fn secret_is_current(secret: &ApiKeySecret, now: DateTime<Utc>) -> bool {
    secret.revoked_at.is_none() && secret.expires_at.is_none_or(|t| t.and_utc() > now)
}

/// Why a key with a matching secret may still not authenticate (kept for the audit trail,
/// never told to the client).
fn key_refusal(key: &ApiKey, environment: Environment, now: DateTime<Utc>) -> Option<&'static str> {
    if key.deleted_at.is_some() {
        Some("deleted")
    } else if key.status != "enabled" {
        Some(if key.status == "revoked" {
            "revoked"
        } else {
            "disabled"
        })
    } else if key.environment != environment.as_str() {
        Some("wrong_environment")
    } else if key.expires_at.is_some_and(|t| t.and_utc() <= now) {
        Some("expired")
    } else {
        None
    }
}

/// Records a refused authentication of an existing key in the audit trail, after the
/// response: waiting for the write would make a known client_id answer slower than an
/// unknown one.
fn record_denial(state: &AppState, key: &ApiKey, reason: &'static str, origin: &Origin) {
    let pool = state.pool.clone();
    let (organization_id, client_id) = (key.organization_id, key.client_id.clone());
    let origin = origin.clone();
    actix_web::rt::spawn(async move {
        let actor = origin.actor(format!("client:{client_id}"));
        let _ = db::run(&pool, move |conn| {
            let event = Event {
                organization_id: Some(organization_id),
                action: "token.denied",
                target: Some(&client_id),
                outcome: reason,
                details: json!({}),
            };
            Ok(audit(conn, &actor, event, Utc::now())?)
        })
        .await;
    });
}

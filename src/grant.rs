//! The client-credentials grant (RFC 6749 section 4.4) as a checklist: parse the credentials,
//! respect the failure budget, find the key, verify the secret (always exactly one bcrypt),
//! check status, expiry and environment, narrow the scopes, sign.

use std::net::IpAddr;

use chrono::{DateTime, Utc};

use crate::auth::client_credentials::TokenRequest;
use crate::db;
use crate::db::api_keys::{ApiKey, ApiKeySecret};
use crate::domain::{ClientId, ClientSecret, Environment, ScopeSet};
use crate::error::ApiError;
use crate::state::AppState;
use crate::tokens::{IssuedToken, TokenSubject, issue};

pub async fn client_credentials(
    state: &AppState,
    request: TokenRequest,
    address: IpAddr,
) -> Result<IssuedToken, ApiError> {
    let client_id = ClientId::parse(&request.client_id).map_err(|_| ApiError::InvalidClient)?;
    state.limiter.check(address, client_id.as_str())?;
    let fail = || {
        state.limiter.record_failure(address, client_id.as_str());
        ApiError::InvalidClient
    };
    let secret = ClientSecret::parse(&request.client_secret).map_err(|_| fail())?;
    let requested = request
        .scope
        .as_deref()
        .map(ScopeSet::parse_delimited)
        .transpose()
        .map_err(|e| ApiError::InvalidScope(e.message))?;

    let now = Utc::now();
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
    let candidate = found
        .as_ref()
        .and_then(|(_, _, secrets)| secrets.iter().find(|s| secret_is_current(s, now)))
        .map(|s| s.secret_hash.clone());
    let environment = secret.environment();
    let matched = state.hasher.verify(secret, candidate).await?;
    let Some((key, organization, _)) = found.filter(|_| matched) else {
        return Err(fail());
    };
    if !key_is_usable(&key, environment, now) {
        return Err(fail());
    }

    let granted = ScopeSet::from_stored(&key.scopes);
    let scopes = match requested {
        Some(requested) if !requested.is_empty() => {
            if let Some(missing) = requested.first_missing_from(&granted) {
                return Err(ApiError::InvalidScope(format!(
                    "scope {missing} is not granted to this API key"
                )));
            }
            requested
        }
        _ => granted,
    };

    let keyring = state.validator.keyring();
    let signer = keyring
        .signer()
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("no active signing key")))?;
    let subject = TokenSubject {
        client_id: &key.client_id,
        environment,
        organization: &organization,
        key_expires_at: key.expires_at.map(|t| t.and_utc()),
    };
    let tokens = &state.settings.tokens;
    issue(
        signer,
        &state.issuer,
        &tokens.audience,
        tokens.lifetime_seconds as i64,
        &subject,
        &scopes,
        now,
    )
    .map_err(ApiError::Internal)
}

fn secret_is_current(secret: &ApiKeySecret, now: DateTime<Utc>) -> bool {
    secret.revoked_at.is_none() && secret.expires_at.is_none_or(|t| t.and_utc() > now)
}

fn key_is_usable(key: &ApiKey, environment: Environment, now: DateTime<Utc>) -> bool {
    key.status == "enabled"
        && key.deleted_at.is_none()
        && key.environment == environment.as_str()
        && key.expires_at.is_none_or(|t| t.and_utc() > now)
}

//! An API key presented directly as a bearer credential (`Authorization: Bearer kgs_…`), as
//! some services have their clients call every route: found by its secret's prefix, verified
//! by the grant's own client authentication (the same failure budget, bcrypt budget and
//! verified-secret cache, so a key seen recently costs no bcrypt and no database read), and
//! answered as the claims of a token that lives for this request only. Every call judges the
//! key's current state, so a revoked or disabled key is refused within one change-feed
//! interval, like its tokens.

use std::sync::Arc;

use chrono::Utc;

use super::grant::{self, Authenticated};
use super::{Error, Origin, Service};
use crate::auth::verified::VerifiedKey;
use crate::db;
use crate::domain::{ClientSecret, UsageMetric};
use crate::tokens::{AccessTokenClaims, Audience, TokenRejection};

/// Whether a bearer credential is an API key's secret rather than an access token (a JWT
/// never starts so).
pub fn is_api_key(credential: &str) -> bool {
    credential.starts_with(ClientSecret::TAG)
}

/// The key behind `credential`, as the claims a token of it would carry now.
pub async fn authenticate(
    service: &Service,
    credential: &str,
    origin: &Origin,
) -> Result<Arc<AccessTokenClaims>, Error> {
    if !service.settings.validation.accept_api_keys {
        return Err(Error::InvalidToken(
            "API keys are not accepted as bearer credentials here: trade the key for an access \
             token at /v1/token",
        ));
    }
    let secret = ClientSecret::parse(credential)
        .map_err(|_| Error::InvalidToken("the API key is malformed"))?;
    let fingerprint = service.verified.fingerprint("", secret.expose());
    let known = match grant::remembered(service, &fingerprint, Utc::now()) {
        Some(known) => known,
        None => {
            let known = verify(service, &secret, origin).await?;
            service.verified.insert(fingerprint, known.key.clone());
            known
        }
    };
    let key = &known.key;
    if key.token_only {
        return Err(Error::InvalidToken(
            "this API key is token-only: trade it for an access token at /v1/token",
        ));
    }
    if !service
        .validator
        .params()
        .environments
        .contains(&key.environment)
    {
        return Err(Error::InvalidToken(
            TokenRejection::WrongEnvironment.description(),
        ));
    }
    let now = Utc::now();
    service.last_used.touch(&key.client_id, now);
    service.count(&key.client_id, UsageMetric::DirectCalls);
    Ok(Arc::new(claims(service, key, known.as_of, now.timestamp())))
}

/// Finds the key by its secret's prefix and authenticates it as `/v1/token` would.
async fn verify(
    service: &Service,
    secret: &ClientSecret,
    origin: &Origin,
) -> Result<Authenticated, Error> {
    let prefix = secret.prefix();
    let candidates = service
        .db(move |conn| {
            Ok(db::api_keys::client_ids_with_secret_prefix(
                conn,
                prefix.as_str(),
            )?)
        })
        .await?;
    if candidates.is_empty() {
        // Unknown keys spend the address's failure budget like wrong secrets do.
        service.limiter.check(origin.address, "")?;
        service.limiter.record_failure(origin.address, "");
    }
    for client_id in candidates {
        match grant::authenticate(service, &client_id, secret.expose(), origin).await {
            Ok(known) => return Ok(known),
            Err(Error::InvalidClient) => continue,
            Err(other) => return Err(other),
        }
    }
    Err(Error::InvalidToken("the API key is not valid"))
}

/// What a token of this key issued now would say: its scopes, environment and organization,
/// and an expiry no later than the key's own or its secret's grace period.
fn claims(service: &Service, key: &VerifiedKey, as_of: i64, now: i64) -> AccessTokenClaims {
    let tokens = &service.settings.tokens;
    let exp = [
        key.key_expires_at.map(|t| t.timestamp()),
        key.secret_valid_until.map(|t| t.timestamp()),
    ]
    .into_iter()
    .flatten()
    .fold(now + tokens.lifetime_seconds as i64, i64::min);
    let iat = as_of.min(now);
    AccessTokenClaims {
        iss: service.issuer.clone(),
        sub: key.client_id.clone(),
        client_id: key.client_id.clone(),
        aud: Audience::One(tokens.audience_of(key.environment).to_owned()),
        iat,
        nbf: iat,
        exp,
        jti: format!("api-key-call-{}", uuid::Uuid::new_v4().simple()),
        scope: key.scopes.to_string(),
        env: key.environment,
        org: key.organization.clone(),
    }
}

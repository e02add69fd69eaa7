//! For resource servers that link keygate's library: [`connect_validator`] validates tokens in
//! memory, following keygate's change feed, and (unless told not to) accepts API keys as
//! bearer credentials the way keygate's own routes do: verified against keygate's database
//! through the same application layer, so scopes, the environment fence, revocation within a
//! feed interval, the failure budget and the verified-secret cache are keygate's own.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::LocalBoxFuture;

use crate::config::Settings;
use crate::feed;
use crate::service::{Error, Origin, Service, direct_keys};
use crate::startup::{WriteBehind, spawn_write_behind};
use crate::tokens::{
    AccessTokenClaims, ApiKeyRefusal, ApiKeyVerifier, TokenValidator, ValidationParams,
};

/// A validator that reads keygate's database (PostgreSQL, or the SQLite file) and follows its
/// change feed, so revocations reach it as fast as they reach keygate. Needs no master key
/// (HS256 tokens excepted). With `params.accept_api_keys` (the default), an API key's secret
/// is accepted as the bearer credential too; its calls count as the key's last use and usage,
/// written to keygate's database every two seconds, so the database user then needs to write
/// `api_keys.last_used_at` and `key_usage`. Call inside an actix (tokio) runtime.
pub async fn connect_validator(
    database_url: &str,
    params: ValidationParams,
    poll_interval: Duration,
) -> anyhow::Result<TokenValidator> {
    let accept_api_keys = params.accept_api_keys;
    let (issuer, audience, test_audience) = (
        params.issuer.clone(),
        params.audience.clone(),
        params.test_audience.clone(),
    );
    let (validator, pool) = feed::follow(database_url, params, poll_interval).await?;
    if accept_api_keys {
        let mut settings = Settings::built_in("embedded");
        settings.tokens.audience = audience;
        settings.tokens.test_audience = test_audience;
        settings.validation.accept_api_keys = true;
        let flush_ms = settings.server.last_used_flush_ms;
        let service = Arc::new(Service::new(
            settings,
            issuer,
            pool.clone(),
            validator.clone(),
            None,
        ));
        spawn_write_behind(
            pool,
            WriteBehind {
                last_used: service.last_used.clone(),
                usage: service.usage.clone(),
            },
            flush_ms,
        );
        validator.accept_api_keys(Arc::new(EmbeddedKeys(service)));
    }
    Ok(validator)
}

/// Verifies API keys for an embedding app, through keygate's application layer.
struct EmbeddedKeys(Arc<Service>);

impl ApiKeyVerifier for EmbeddedKeys {
    fn verify(
        &self,
        credential: String,
        address: IpAddr,
    ) -> LocalBoxFuture<'static, Result<Arc<AccessTokenClaims>, ApiKeyRefusal>> {
        let service = self.0.clone();
        Box::pin(async move {
            let origin = Origin {
                address,
                user_agent: None,
            };
            direct_keys::authenticate(&service, &credential, &origin)
                .await
                .map_err(|err| match err {
                    Error::RateLimited {
                        retry_after_seconds,
                    } => ApiKeyRefusal::RateLimited {
                        retry_after_seconds,
                    },
                    Error::Unavailable {
                        retry_after_seconds,
                    } => ApiKeyRefusal::Unavailable {
                        retry_after_seconds,
                    },
                    Error::InvalidToken(description) => ApiKeyRefusal::Invalid(description),
                    Error::InvalidClient => ApiKeyRefusal::Invalid("the API key is not valid"),
                    other => {
                        log::error!("verifying an API key: {:#}", anyhow::Error::from(other));
                        ApiKeyRefusal::Internal
                    }
                })
        })
    }
}

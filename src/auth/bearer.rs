//! `Authenticated<S>`: an actix-web extractor that validates the bearer token (RFC 6750) and
//! enforces the scopes `S` declares, so a route cannot forget its check:
//!
//! ```no_run
//! use actix_web::HttpResponse;
//! use keygate::Authenticated;
//!
//! keygate::require_scopes!(pub InvoicesRead => "invoices:read");
//!
//! async fn list_invoices(caller: Authenticated<InvoicesRead>) -> HttpResponse {
//!     HttpResponse::Ok().body(caller.client_id().to_owned())
//! }
//! ```
//!
//! The app registers a [`TokenValidator`] with `.app_data(web::Data::new(validator))`.
//!
//! On keygate's own routes, and in apps whose validator comes from
//! [`crate::connect_validator`], an API key's secret is accepted too (`Authorization: Bearer
//! kgs_…`, unless `validation.accept_api_keys` or [`crate::ValidationParams::accept_api_keys`]
//! is off), checked against the key's current state on every call.

use std::marker::PhantomData;
use std::sync::Arc;

use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, dev::Payload, web};
use futures_util::future::LocalBoxFuture;

use crate::error::ApiError;
use crate::service::direct_keys;
use crate::state::AppState;
use crate::tokens::{AccessTokenClaims, ApiKeyRefusal, TokenRejection, TokenValidator};

/// The scopes a route needs, declared on a type (see [`crate::require_scopes!`]).
pub trait ScopeRequirement {
    const SCOPES: &'static [&'static str];
}

/// Any valid token will do.
pub struct NoScope;

impl ScopeRequirement for NoScope {
    const SCOPES: &'static [&'static str] = &[];
}

/// Declares a [`ScopeRequirement`]: every listed scope must be in the token.
#[macro_export]
macro_rules! require_scopes {
    ($vis:vis $name:ident => $($scope:literal),+ $(,)?) => {
        $vis struct $name;
        impl $crate::auth::ScopeRequirement for $name {
            const SCOPES: &'static [&'static str] = &[$($scope),+];
        }
    };
}

/// The caller of a protected route: a valid, unrevoked token holding every scope of `S`.
pub struct Authenticated<S: ScopeRequirement = NoScope> {
    pub claims: Arc<AccessTokenClaims>,
    _requirement: PhantomData<S>,
}

impl<S: ScopeRequirement> Authenticated<S> {
    pub fn client_id(&self) -> &str {
        &self.claims.client_id
    }
}

impl<S: ScopeRequirement + 'static> FromRequest for Authenticated<S> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let token = match bearer_token(req) {
            Ok(token) if direct_keys::is_api_key(token) => token.to_owned(),
            _ => return authenticate::<S>(req),
        };
        // keygate's own routes: through the application layer.
        if let Some(state) = req.app_data::<web::Data<AppState>>().cloned() {
            let origin = state.origin(req);
            return Box::pin(async move {
                let claims = direct_keys::authenticate(&state.service, &token, &origin).await?;
                authorized::<S>(claims)
            });
        }
        // An app that links keygate: through its validator, if it accepts API keys.
        let verifier = validator(req).map(TokenValidator::api_key_verifier);
        match (verifier, req.peer_addr()) {
            (Ok(Some(verifier)), Some(peer)) => Box::pin(async move {
                let claims = verifier.verify(token, peer.ip()).await.map_err(refusal)?;
                authorized::<S>(claims)
            }),
            _ => authenticate::<S>(req),
        }
    }
}

fn refusal(refused: ApiKeyRefusal) -> ApiError {
    match refused {
        ApiKeyRefusal::Invalid(description) => ApiError::InvalidToken(description),
        ApiKeyRefusal::RateLimited {
            retry_after_seconds,
        } => ApiError::RateLimited {
            retry_after_seconds,
        },
        ApiKeyRefusal::Unavailable {
            retry_after_seconds,
        } => ApiError::Unavailable {
            retry_after_seconds,
        },
        ApiKeyRefusal::Internal => {
            ApiError::internal(anyhow::anyhow!("an API key could not be verified"))
        }
    }
}

/// The validator the app registered.
fn validator(req: &HttpRequest) -> Result<&TokenValidator, ApiError> {
    req.app_data::<web::Data<TokenValidator>>()
        .map(|d| d.get_ref())
        .or_else(|| req.app_data::<TokenValidator>())
        .ok_or_else(|| {
            ApiError::internal(anyhow::anyhow!(
                "no TokenValidator registered with app_data"
            ))
        })
}

/// The caller by its access token. A token signed by a key the validator does not know is
/// checked again once the keys were fetched again, when the validator can fetch them.
fn authenticate<S: ScopeRequirement + 'static>(
    req: &HttpRequest,
) -> LocalBoxFuture<'static, Result<Authenticated<S>, ApiError>> {
    let found = validator(req).and_then(|validator| Ok((validator, bearer_token(req)?)));
    let (validator, token) = match found {
        Ok(found) => found,
        Err(refused) => return Box::pin(async move { Err(refused) }),
    };
    let result = match validator.validate(token) {
        Err(TokenRejection::UnknownKey) => match validator.key_refresher() {
            Some(refresher) => {
                let (validator, token) = (validator.clone(), token.to_owned());
                return Box::pin(async move {
                    refresher.refresh().await;
                    validator
                        .validate(&token)
                        .map_err(invalid_token)
                        .and_then(authorized::<S>)
                });
            }
            None => Err(invalid_token(TokenRejection::UnknownKey)),
        },
        validated => validated.map_err(invalid_token).and_then(authorized::<S>),
    };
    Box::pin(async move { result })
}

fn invalid_token(rejection: TokenRejection) -> ApiError {
    ApiError::InvalidToken(rejection.description())
}

/// The caller, if `claims` hold every scope `S` needs.
fn authorized<S: ScopeRequirement>(
    claims: Arc<AccessTokenClaims>,
) -> Result<Authenticated<S>, ApiError> {
    if S::SCOPES.iter().any(|needed| !claims.has_scope(needed)) {
        return Err(ApiError::InsufficientScope {
            required: S::SCOPES.join(" "),
        });
    }
    Ok(Authenticated {
        claims,
        _requirement: PhantomData,
    })
}

/// The token of `Authorization: Bearer <token>` (RFC 6750 section 2.1). No header, or another
/// scheme, is a missing token; a malformed header, two headers, or a token in the URL is an
/// `invalid_request`.
pub fn bearer_token(req: &HttpRequest) -> Result<&str, ApiError> {
    if query_has_access_token(req.query_string()) {
        return Err(ApiError::MalformedAuthorization(
            "send the access token in the Authorization header, never in the URL",
        ));
    }
    let mut values = req.headers().get_all(header::AUTHORIZATION);
    let Some(value) = values.next() else {
        return Err(ApiError::MissingToken);
    };
    if values.next().is_some() {
        return Err(ApiError::MalformedAuthorization(
            "send exactly one Authorization header",
        ));
    }
    let value = value
        .to_str()
        .map_err(|_| ApiError::MalformedAuthorization("the Authorization header is not ASCII"))?;
    let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(ApiError::MissingToken);
    }
    if !is_b64token(token) {
        return Err(ApiError::MalformedAuthorization(
            "the Authorization header must be `Bearer <token>`",
        ));
    }
    Ok(token)
}

/// RFC 6750 `b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`.
fn is_b64token(token: &str) -> bool {
    let body = token.trim_end_matches('=');
    !body.is_empty()
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b))
}

fn query_has_access_token(query: &str) -> bool {
    !query.is_empty() && form_urlencoded::parse(query.as_bytes()).any(|(k, _)| k == "access_token")
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn token_of(req: &HttpRequest) -> Result<String, &'static str> {
        bearer_token(req).map(str::to_owned).map_err(|e| e.code())
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(crate::domain::property_cases(4096)))]

            /// Any header value is a token, a missing token or an `invalid_request`; a token
            /// taken is the RFC 6750 `b64token` that followed the scheme, unchanged.
            #[test]
            fn any_header_is_a_token_or_a_documented_refusal(value in "(?i:bearer )?\\PC{0,60}") {
                let Ok(value) = header::HeaderValue::from_str(&value) else {
                    return Ok(());
                };
                let req = TestRequest::default()
                    .insert_header((header::AUTHORIZATION, value.clone()))
                    .to_http_request();
                match token_of(&req) {
                    Ok(token) => {
                        let text = value.to_str().unwrap();
                        prop_assert!(text.to_ascii_lowercase().starts_with("bearer "));
                        prop_assert_eq!(&text[7..], token.as_str());
                        let well_formed = is_b64token(&token);
                        prop_assert!(well_formed);
                    }
                    Err(code) => prop_assert!(
                        ["invalid_token", "invalid_request"].contains(&code),
                        "{}", code
                    ),
                }
            }

            /// Every `b64token` is taken as it is.
            #[test]
            fn every_b64token_is_taken(token in "[A-Za-z0-9._~+/-]{1,60}=*") {
                let req = TestRequest::default()
                    .insert_header((header::AUTHORIZATION, format!("Bearer {token}")))
                    .to_http_request();
                prop_assert_eq!(token_of(&req), Ok(token));
            }
        }
    }

    #[test]
    fn accepts_the_bearer_scheme_in_any_case() {
        for scheme in ["Bearer", "bearer", "BEARER"] {
            let req = TestRequest::default()
                .insert_header((header::AUTHORIZATION, format!("{scheme} abc.def.ghi")))
                .to_http_request();
            assert_eq!(token_of(&req).unwrap(), "abc.def.ghi");
        }
    }

    #[test]
    fn no_header_or_another_scheme_is_a_missing_token() {
        let req = TestRequest::default().to_http_request();
        assert!(matches!(bearer_token(&req), Err(ApiError::MissingToken)));
        let req = TestRequest::default()
            .insert_header((header::AUTHORIZATION, "Basic YTpi"))
            .to_http_request();
        assert!(matches!(bearer_token(&req), Err(ApiError::MissingToken)));
    }

    #[test]
    fn malformed_headers_are_invalid_requests() {
        for value in [
            "Bearer",
            "Bearer ",
            "Bearer  x",
            "Bearer a b",
            "Bearer a\"b",
            "Bearer =abc",
        ] {
            let req = TestRequest::default()
                .insert_header((header::AUTHORIZATION, value))
                .to_http_request();
            assert!(
                matches!(bearer_token(&req), Err(ApiError::MalformedAuthorization(_))),
                "{value:?}"
            );
        }
    }

    #[test]
    fn two_headers_or_a_token_in_the_url_are_refused() {
        let req = TestRequest::default()
            .append_header((header::AUTHORIZATION, "Bearer a"))
            .append_header((header::AUTHORIZATION, "Bearer b"))
            .to_http_request();
        assert!(matches!(
            bearer_token(&req),
            Err(ApiError::MalformedAuthorization(_))
        ));
        let req = TestRequest::with_uri("/v1/me?access_token=abc").to_http_request();
        assert!(matches!(
            bearer_token(&req),
            Err(ApiError::MalformedAuthorization(_))
        ));
    }
}

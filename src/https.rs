//! HTTPS only, where it is asked for: `Strict-Transport-Security` on every answer sent over
//! HTTPS, and with `server.require_https` a request that did not arrive over HTTPS (keygate's
//! own TLS, or a trusted proxy's `X-Forwarded-Proto: https`) is refused before any handler
//! sees it: a `GET` is sent to the same path at the issuer when that is an `https://` URL,
//! anything else gets `400 invalid_request`. The probes and metrics answer either way, so a
//! load balancer or a container's health check can reach them on the plain port.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{Method, header};
use actix_web::middleware::Next;
use actix_web::{HttpResponse, ResponseError, web};

use crate::auth::origin;
use crate::error::ApiError;
use crate::state::AppState;

/// Paths that answer over plain HTTP even when HTTPS is required: they hold no secret.
const PLAIN_PATHS: [&str; 3] = ["/healthz", "/readyz", "/metrics"];

pub async fn middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return Ok(next.call(req).await?.map_into_left_body());
    };
    let settings = &state.service.settings;
    let https = origin::is_https(req.request(), &settings.rate_limit.trusted_proxies);
    if !https && settings.server.require_https && !PLAIN_PATHS.contains(&req.path()) {
        let refusal = refusal(&req, &state.service.issuer);
        return Ok(req.into_response(refusal).map_into_right_body());
    }
    let mut response = next.call(req).await?;
    let max_age = settings.server.hsts_max_age_seconds;
    if https && max_age > 0 {
        response.headers_mut().insert(
            header::STRICT_TRANSPORT_SECURITY,
            header::HeaderValue::from_str(&format!("max-age={max_age}"))
                .expect("digits are a valid header value"),
        );
    }
    Ok(response.map_into_left_body())
}

/// A `GET` or `HEAD` goes to the issuer over HTTPS (never to the `Host` the request named);
/// anything else is refused, as its body (perhaps a secret) already crossed in the clear.
fn refusal(req: &ServiceRequest, issuer: &str) -> HttpResponse {
    let safe = matches!(*req.method(), Method::GET | Method::HEAD);
    match issuer.strip_prefix("https://") {
        Some(_) if safe => {
            let target = match req.uri().path_and_query() {
                Some(path) => format!("{issuer}{path}"),
                None => issuer.to_owned(),
            };
            HttpResponse::PermanentRedirect()
                .insert_header((header::LOCATION, target))
                .insert_header((header::CACHE_CONTROL, "no-store"))
                .finish()
        }
        _ => ApiError::invalid_request(
            "this keygate answers over HTTPS only: send the request to its https:// address",
        )
        .error_response(),
    }
}

//! `X-Request-Id` on every answer, and on every log line written while the request is
//! served: the id a trusted proxy (`rate_limit.trusted_proxies`) sent, if it is a sensible
//! one, else a new one. A client's own id is never taken, so it cannot forge another
//! request's trail.

use std::sync::Arc;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::web;

use crate::auth::origin;
use crate::logging;
use crate::state::AppState;

pub const HEADER: HeaderName = HeaderName::from_static("x-request-id");
/// The longest id taken from a proxy.
const MAX_LEN: usize = 128;

pub async fn middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let id: Arc<str> = forwarded(&req).map_or_else(new_id, Arc::from);
    let mut response = logging::with_request_id(id.clone(), next.call(req)).await?;
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(HEADER, value);
    }
    Ok(response)
}

/// The id a trusted proxy sent.
fn forwarded(req: &ServiceRequest) -> Option<&str> {
    let state = req.app_data::<web::Data<AppState>>()?;
    let proxies = &state.service.settings.rate_limit.trusted_proxies;
    if !origin::from_trusted_proxy(req.request(), proxies) {
        return None;
    }
    req.headers()
        .get(&HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|id| is_sensible(id))
}

/// 1 to 128 characters of letters, digits and `-_.:`: what proxies generate (UUIDs, hex,
/// `host:counter`), and safe in a log line or a header.
fn is_sensible(id: &str) -> bool {
    (1..=MAX_LEN).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

fn new_id() -> Arc<str> {
    Arc::from(uuid::Uuid::new_v4().simple().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_sensible_ids_are_taken() {
        for good in [
            "a",
            "5f0c9a7e-1b2c-4d3e-8f90-123456789abc",
            "lb-1:42",
            "x.y_z",
        ] {
            assert!(is_sensible(good), "{good}");
        }
        let long = "a".repeat(MAX_LEN + 1);
        for bad in ["", "a b", "a\"b", "é", "a\nb", long.as_str()] {
            assert!(!is_sensible(bad), "{bad:?}");
        }
    }
}

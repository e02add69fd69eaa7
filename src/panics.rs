//! A panic while a request is served is answered, not dropped: that request gets the
//! documented `server_error` (500, `no-store`), the worker goes on serving its other
//! connections, and the log gets one line saying where the panic happened, tagged with the
//! request's id. The panic's message is logged as written: keygate's secret-bearing types
//! redact themselves in `Debug`, so a message that formats one shows `[redacted]`.

use std::panic::AssertUnwindSafe;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use futures_util::FutureExt;

use crate::error::ApiError;

/// Catches a panic in routing, an extractor, a handler or a middleware it wraps, and
/// answers it. Registered outermost: the request is gone once its handling has unwound, so the
/// answer is rendered by the server from the error (the headers inner middleware add, such as
/// `X-Request-Id`, are not on it; the panic's log line has the id).
pub async fn middleware<B: MessageBody>(
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<B>, actix_web::Error> {
    match AssertUnwindSafe(next.call(req)).catch_unwind().await {
        Ok(served) => served,
        Err(_) => {
            Err(ApiError::internal(anyhow::anyhow!("the request's handling panicked")).into())
        }
    }
}

/// Sends panics to the log (one line, in the log's format, with the request id when a
/// request was being served) instead of bare stderr.
pub fn log_panics() {
    std::panic::set_hook(Box::new(|info| {
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| info.payload().downcast_ref::<String>().map(String::as_str))
            .unwrap_or("(no message)");
        let place = info
            .location()
            .map_or_else(String::new, |l| format!(" at {}:{}", l.file(), l.line()));
        let thread = std::thread::current();
        log::error!(
            "thread '{}' panicked{place}: {message}",
            thread.name().unwrap_or("unnamed")
        );
    }));
}

/// Debug builds only, for keygate's own tests: a token request whose client_id is the value
/// of `KEYGATE_PANIC_ON_CLIENT_ID` panics inside the token handler, with the parsed request
/// in the panic's message. Release builds have no such hook.
#[cfg(debug_assertions)]
pub(crate) fn panic_if_asked(request: &crate::auth::client_credentials::TokenRequest) {
    use crate::auth::client_credentials::Grant;
    static CLIENT_ID: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    let asked = CLIENT_ID.get_or_init(|| std::env::var("KEYGATE_PANIC_ON_CLIENT_ID").ok());
    if let (Some(asked), Grant::ClientCredentials(client)) = (asked, &request.grant)
        && *asked == client.client_id
    {
        panic!("a fault injected while serving {request:?}");
    }
}

#[cfg(test)]
mod tests {
    use actix_web::{App, HttpResponse, test, web};

    use super::*;

    #[actix_web::test]
    async fn a_panicking_handler_is_answered_with_the_documented_error() {
        let app = test::init_service(
            App::new()
                .wrap(actix_web::middleware::from_fn(middleware))
                .route(
                    "/panics",
                    web::get().to(|| async {
                        panic!("boom");
                        #[allow(unreachable_code)]
                        HttpResponse::Ok().finish()
                    }),
                )
                .route(
                    "/fine",
                    web::get().to(|| async { HttpResponse::Ok().body("fine") }),
                ),
        )
        .await;
        let error =
            test::try_call_service(&app, test::TestRequest::get().uri("/panics").to_request())
                .await
                .expect_err("a panic is an error the server renders");
        let answer = error.error_response();
        assert_eq!(answer.status(), 500);
        assert_eq!(answer.headers().get("cache-control").unwrap(), "no-store");
        let body = actix_web::body::to_bytes(answer.into_body()).await.unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["error"], "server_error");

        let answer =
            test::call_service(&app, test::TestRequest::get().uri("/fine").to_request()).await;
        assert_eq!(answer.status(), 200, "the service still serves");
    }
}

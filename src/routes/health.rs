//! Liveness (no dependencies) and readiness (the database answers, its schema is this
//! binary's, a key signs, and the change feed is being followed).

use actix_web::{HttpResponse, web};
use diesel::RunQueryDsl;
use serde::Serialize;

use crate::db;
use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;

/// A probe's answer.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Health {
    #[schema(schema_with = health_status)]
    status: &'static str,
}

fn health_status() -> utoipa::openapi::schema::ObjectBuilder {
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some(["ok", "ready"]))
        .description(Some("`ok` from /healthz, `ready` from /readyz"))
}

#[utoipa::path(
    get,
    path = "/healthz",
    tag = "health",
    summary = "Liveness",
    description = "Depends on nothing: answers while the process serves.",
    responses((status = 200, description = "Serving", body = Health))
)]
pub async fn live() -> HttpResponse {
    HttpResponse::Ok().json(Health { status: "ok" })
}

#[utoipa::path(
    get,
    path = "/readyz",
    tag = "health",
    summary = "Readiness: the database answers, its migrations are current, a signing key is active, and the change feed is followed",
    responses(
        (status = 200, description = "Ready", body = Health),
        (status = 503, description = "Not ready; see Retry-After", body = ErrorBody),
    )
)]
pub async fn ready(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let service = &state.service;
    let unavailable = || crate::service::Error::Unavailable {
        retry_after_seconds: 1,
    };
    let (pending, signing) = db::run(&service.pool, move |conn| {
        diesel::sql_query("SELECT 1")
            .execute(conn)
            .map_err(|_| unavailable())?;
        let pending = db::pending_migrations(conn).map_err(|_| unavailable())?;
        let signing = db::signing_keys::active_count(conn).map_err(|_| unavailable())?;
        Ok::<_, crate::service::Error>((pending, signing))
    })
    .await?;
    // Serving on a schema this binary does not know, or without a key to sign with, would
    // answer token requests with errors.
    if pending > 0 || signing != 1 {
        log::error!(
            "not ready: {pending} migrations not run (run `keygate migrate`), {signing} active \
             signing keys (one expected)"
        );
        return Err(ApiError::Unavailable {
            retry_after_seconds: 1,
        });
    }
    // Forty missed polls (ten seconds at the default interval) mean revocations are not
    // arriving: take this instance out of the load balancer.
    let limit = (service.settings.feed.poll_interval_ms * 40 / 1000).max(10) as i64;
    if service.validator.seconds_since_sync() > limit {
        log::error!("the change feed has not been read for over {limit} s");
        return Err(ApiError::Unavailable {
            retry_after_seconds: 1,
        });
    }
    Ok(HttpResponse::Ok().json(Health { status: "ready" }))
}

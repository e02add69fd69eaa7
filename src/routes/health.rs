//! Liveness (no dependencies) and readiness (the database answers and the change feed is
//! being followed).

use actix_web::{HttpResponse, web};
use diesel::RunQueryDsl;
use serde_json::json;

use crate::db;
use crate::error::ApiError;
use crate::state::AppState;

pub async fn live() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

pub async fn ready(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let service = &state.service;
    db::run(&service.pool, |conn| {
        diesel::sql_query("SELECT 1").execute(conn).map_err(|_| {
            crate::service::Error::Unavailable {
                retry_after_seconds: 1,
            }
        })
    })
    .await?;
    // Forty missed polls (ten seconds at the default interval) mean revocations are not
    // arriving: take this instance out of the load balancer.
    let limit = (service.settings.feed.poll_interval_ms * 40 / 1000).max(10) as i64;
    if service.validator.seconds_since_sync() > limit {
        log::error!("the change feed has not been read for over {limit} s");
        return Err(ApiError::Unavailable {
            retry_after_seconds: 1,
        });
    }
    Ok(HttpResponse::Ok().json(json!({ "status": "ready" })))
}

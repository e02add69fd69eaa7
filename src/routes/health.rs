//! Liveness (no dependencies) and readiness (the database answers).

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
    db::run(&state.pool, |conn| {
        diesel::sql_query("SELECT 1")
            .execute(conn)
            .map_err(|_| ApiError::Unavailable {
                retry_after_seconds: 1,
            })
    })
    .await?;
    Ok(HttpResponse::Ok().json(json!({ "status": "ready" })))
}

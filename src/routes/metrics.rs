//! `GET /metrics`: what keygate measures, for Prometheus.

use actix_web::{HttpResponse, web};

use crate::error::ApiError;
use crate::state::AppState;

#[utoipa::path(
    get,
    path = "/metrics",
    tag = "health",
    summary = "Metrics in the Prometheus text format",
    description = "Unauthenticated, like the probes: serve it only where your scraper reaches \
        it (a proxy's allow list). Holds no secret and no client id.",
    responses(
        (status = 200, description = "The metrics", content_type = "text/plain; version=0.0.4", body = String),
        (status = 503, description = "The database does not answer; see Retry-After", body = crate::error::ErrorBody),
    )
)]
pub async fn metrics(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let text = state.metrics.render(&state.service).await?;
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(text))
}

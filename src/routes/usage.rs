//! Usage history: `GET /v1/api-keys/{client_id}/usage` (one key) and `GET /v1/usage` (every
//! key the caller may list), by hour or by day, from `from` to `to`.

use std::collections::BTreeMap;

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::auth::caller::{ApiKeysRead, Operator};
use crate::domain::{Granularity, UsageWindow, ValidationError};
use crate::error::ApiError;
use crate::openapi::ManagementErrors;
use crate::service::policy;
use crate::service::usage::{self, UsageCounts, UsageReport};
use crate::state::AppState;

/// The query both reports read; every parameter is optional.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code, reason = "only its shape is read, by the OpenAPI document")]
pub struct UsageParameters {
    /// Start, inclusive: an RFC 3339 time or a date (UTC), widened to its bucket. Default: 24
    /// hours (by hour) or 30 days (by day) before `to`.
    pub from: Option<String>,
    /// End, exclusive, widened to a whole bucket. Default: the end of the current bucket.
    pub to: Option<String>,
    /// `hour` (default; at most 31 days) or `day` (at most 366 days).
    #[param(value_type = Option<String>, pattern = "^(hour|day)$")]
    pub granularity: Option<String>,
}

pub(crate) fn parse_window(query: &str) -> Result<UsageWindow, ValidationError> {
    let (mut from, mut to, mut granularity) = (None, None, None);
    for (name, value) in form_urlencoded::parse(query.as_bytes()) {
        let slot = match name.as_ref() {
            "from" => &mut from,
            "to" => &mut to,
            "granularity" => &mut granularity,
            other => {
                return Err(ValidationError::new(
                    other.chars().take(40).collect::<String>(),
                    "unknown query parameter",
                ));
            }
        };
        if slot.replace(value.into_owned()).is_some() {
            return Err(ValidationError::new(name.into_owned(), "is repeated"));
        }
    }
    UsageWindow::parse(
        from.as_deref(),
        to.as_deref(),
        granularity.as_deref(),
        Utc::now(),
    )
}

/// Counters of a bucket or a window.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = UsageCounts)]
pub struct CountsView {
    /// Access tokens issued (client credentials and refresh).
    tokens_issued: i64,
    /// Token requests refused, all reasons.
    refused: i64,
    /// Refused token requests by reason (the audit trail's `outcome`: `wrong_secret`,
    /// `expired_secret`, `disabled`, `refresh_token_reused`, …); reasons with none are left out.
    refused_by_reason: BTreeMap<&'static str, i64>,
    /// Calls made with the key itself as the bearer credential.
    direct_calls: i64,
    /// Introspections that found one of the key's tokens active.
    introspections: i64,
}

impl From<&UsageCounts> for CountsView {
    fn from(counts: &UsageCounts) -> CountsView {
        CountsView {
            tokens_issued: counts.tokens_issued,
            refused: counts.refused_total(),
            refused_by_reason: counts
                .refused
                .iter()
                .map(|(reason, n)| (reason.as_str(), *n))
                .collect(),
            direct_calls: counts.direct_calls,
            introspections: counts.introspections,
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = UsageBucket)]
pub struct BucketView {
    /// The bucket's start; it lasts one `granularity`.
    start: DateTime<Utc>,
    #[serde(flatten)]
    counts: CountsView,
}

/// A window's every bucket, oldest first (those without use hold zeros), and its totals.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = UsageReport)]
pub struct ReportView {
    /// The key's client_id; absent from an organization's summary.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    client_id: Option<String>,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    #[schema(value_type = String, pattern = "^(hour|day)$")]
    granularity: Granularity,
    totals: CountsView,
    data: Vec<BucketView>,
}

impl ReportView {
    pub(crate) fn of(report: &UsageReport, client_id: Option<String>) -> ReportView {
        ReportView {
            client_id,
            from: report.window.from,
            to: report.window.to,
            granularity: report.window.granularity,
            totals: CountsView::from(&report.totals),
            data: report
                .buckets
                .iter()
                .map(|b| BucketView {
                    start: b.start,
                    counts: CountsView::from(&b.counts),
                })
                .collect(),
        }
    }
}

/// A key's totals in the summary.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = KeyUsageTotals)]
pub struct KeyTotalsView {
    client_id: String,
    name: String,
    #[serde(flatten)]
    totals: CountsView,
}

/// The summary: every key's counters added up, and each key's totals.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = OrganizationUsage)]
pub struct OrganizationUsageView {
    #[serde(flatten)]
    report: ReportView,
    /// The keys with any use in the window, most tokens issued first.
    keys: Vec<KeyTotalsView>,
}

#[utoipa::path(
    get,
    path = "/v1/api-keys/{client_id}/usage",
    tag = "api-keys",
    summary = "A key's usage history, by hour or by day",
    description = "Needs `api_keys:read` (and `api_keys:manage` for a key of someone else). \
        Counters are written behind, every few seconds; history is kept 90 days by default.",
    security(("bearerAuth" = ["api_keys:read"]), ("sessionCookie" = [])),
    params(("client_id" = String, Path, description = "The key's client_id"), UsageParameters),
    responses(ManagementErrors, (status = 200, description = "The history", body = ReportView))
)]
pub async fn key_usage(
    operator: Operator<ApiKeysRead>,
    path: web::Path<String>,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let window = parse_window(req.query_string())?;
    let report = usage::of_key(&state.service, &operator, &path, window).await?;
    Ok(HttpResponse::Ok().json(ReportView::of(&report, Some(path.into_inner()))))
}

#[utoipa::path(
    get,
    path = "/v1/usage",
    tag = "api-keys",
    summary = "The organization's usage history: every key the caller may list",
    description = "Needs `api_keys:read`; without `api_keys:manage`, only the caller's own keys \
        are counted.",
    security(("bearerAuth" = ["api_keys:read"]), ("sessionCookie" = [])),
    params(UsageParameters),
    responses(
        ManagementErrors,
        (status = 200, description = "The summary", body = OrganizationUsageView),
    )
)]
pub async fn organization_usage(
    operator: Operator<ApiKeysRead>,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let window = parse_window(req.query_string())?;
    let organization_id = policy::home_organization(&operator)?;
    let summary =
        usage::of_organization(&state.service, &operator, organization_id, window).await?;
    Ok(HttpResponse::Ok().json(OrganizationUsageView {
        report: ReportView::of(&summary.report, None),
        keys: summary
            .keys
            .iter()
            .map(|k| KeyTotalsView {
                client_id: k.client_id.clone(),
                name: k.name.clone(),
                totals: CountsView::from(&k.totals),
            })
            .collect(),
    }))
}

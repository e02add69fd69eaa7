//! Webhooks (`webhooks:manage`): `/v1/webhook-endpoints` (create, list, retrieve, update,
//! delete, roll the secret, send a test event), an endpoint's deliveries and their retry, and
//! the organization's recent events.

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::api_keys::manage::Deleted;
use super::body::JsonBody;
use super::{Page, PageParameters, integer_parameter, no_store};
use crate::auth::caller::{Operator, WebhooksManage};
use crate::db::webhooks::{Attempt, Endpoint, Event};
use crate::domain::{DeliveryStatus, EndpointStatus, EventFilter, GracePeriod, ValidationError};
use crate::error::ApiError;
use crate::openapi::ManagementErrors;
use crate::service::policy;
use crate::service::webhooks::{self, DeliveryRecord, EndpointUpdate, NewWebhookEndpoint};
use crate::state::AppState;

/// Where keygate sends an organization's events.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = WebhookEndpoint)]
pub struct EndpointView {
    #[schema(example = "we_8fK2mQ9xL3aBk2Pq7Rt1Zx0W")]
    id: String,
    #[schema(example = "https://hooks.example.com/keygate")]
    url: String,
    description: String,
    /// `["*"]`, or the event types it receives.
    #[schema(example = json!(["api_key.revoked", "api_key.rotated"]))]
    events: Vec<&'static str>,
    /// `disabled` by an operator, or by keygate after a run of failures (`failing_since`).
    status: EndpointStatus,
    /// When keygate disabled it for failing; null otherwise.
    failing_since: Option<DateTime<Utc>>,
    /// Failed deliveries in a row.
    consecutive_failures: i32,
    /// When a rolled-out secret stops signing deliveries; null when only one signs.
    previous_secret_expires_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<&Endpoint> for EndpointView {
    fn from(e: &Endpoint) -> EndpointView {
        EndpointView {
            id: e.public_id.clone(),
            url: e.url.clone(),
            description: e.description.clone(),
            events: EventFilter::from_stored(&e.events).names(),
            status: e.status,
            failing_since: e.failing_since.map(|t| t.and_utc()),
            consecutive_failures: e.consecutive_failures,
            previous_secret_expires_at: e.previous_secret_expires_at.map(|t| t.and_utc()),
            created_at: e.created_at.and_utc(),
            updated_at: e.updated_at.and_utc(),
        }
    }
}

/// An endpoint with its signing secret, shown in this answer only.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = WebhookEndpointWithSecret)]
pub struct WithSecretView {
    #[serde(flatten)]
    endpoint: EndpointView,
    /// `whsec_…` (Standard Webhooks): verify `webhook-signature` with it. Shown only here.
    secret: String,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateEndpointRequest {
    /// `https://` (plain `http://` only where the deployment allows it).
    #[schema(example = "https://hooks.example.com/keygate")]
    url: String,
    /// Event types, or `["*"]` for every one.
    #[schema(example = json!(["*"]))]
    events: Vec<String>,
    /// Up to 500 characters.
    description: Option<String>,
}

fn organization(operator: &Operator<WebhooksManage>) -> Result<i64, ApiError> {
    Ok(policy::home_organization(operator)?)
}

#[utoipa::path(
    post,
    path = "/v1/webhook-endpoints",
    tag = "webhooks",
    summary = "Create a webhook endpoint; its signing secret is in this answer only",
    description = "Needs `webhooks:manage`.",
    security(("bearerAuth" = ["webhooks:manage"]), ("sessionCookie" = [], "csrfHeader" = [])),
    request_body = CreateEndpointRequest,
    responses(
        ManagementErrors,
        (status = 201, description = "The endpoint and its secret; `no-store`", body = WithSecretView),
    )
)]
pub async fn create_endpoint(
    operator: Operator<WebhooksManage>,
    body: JsonBody<CreateEndpointRequest>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let CreateEndpointRequest {
        url,
        events,
        description,
    } = body.0;
    let new = NewWebhookEndpoint {
        url,
        events,
        description,
    };
    let created =
        webhooks::create(&state.service, &operator, organization(&operator)?, new).await?;
    Ok(no_store(HttpResponse::Created()).json(WithSecretView {
        endpoint: EndpointView::from(&created.endpoint),
        secret: created.secret.expose().to_owned(),
    }))
}

#[utoipa::path(
    get,
    path = "/v1/webhook-endpoints",
    tag = "webhooks",
    summary = "The organization's webhook endpoints",
    description = "Needs `webhooks:manage`.",
    security(("bearerAuth" = ["webhooks:manage"]), ("sessionCookie" = [])),
    responses(ManagementErrors, (status = 200, description = "Endpoints", body = Page<EndpointView>))
)]
pub async fn list_endpoints(
    operator: Operator<WebhooksManage>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let all = webhooks::list(&state.service, &operator, organization(&operator)?).await?;
    Ok(HttpResponse::Ok().json(Page::all(all.iter().map(EndpointView::from).collect())))
}

#[utoipa::path(
    get,
    path = "/v1/webhook-endpoints/{id}",
    tag = "webhooks",
    summary = "Retrieve a webhook endpoint",
    description = "Needs `webhooks:manage`.",
    security(("bearerAuth" = ["webhooks:manage"]), ("sessionCookie" = [])),
    params(("id" = String, Path, description = "The endpoint's id")),
    responses(ManagementErrors, (status = 200, description = "The endpoint", body = EndpointView))
)]
pub async fn retrieve_endpoint(
    operator: Operator<WebhooksManage>,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let endpoint =
        webhooks::get(&state.service, &operator, organization(&operator)?, &path).await?;
    Ok(HttpResponse::Ok().json(EndpointView::from(&endpoint)))
}

/// Give at least one of url, events, description, status.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(min_properties = 1)]
pub struct UpdateEndpointRequest {
    url: Option<String>,
    events: Option<Vec<String>>,
    description: Option<String>,
    /// `disabled` stops new events reaching it (queued ones wait); `enabled` resumes, and
    /// clears a failing endpoint's count.
    #[schema(value_type = Option<EndpointStatus>)]
    status: Option<String>,
}

#[utoipa::path(
    patch,
    path = "/v1/webhook-endpoints/{id}",
    tag = "webhooks",
    summary = "Change a webhook endpoint's URL, events or description, or disable or enable it",
    description = "Needs `webhooks:manage`.",
    security(("bearerAuth" = ["webhooks:manage"]), ("sessionCookie" = [], "csrfHeader" = [])),
    params(("id" = String, Path, description = "The endpoint's id")),
    request_body = UpdateEndpointRequest,
    responses(ManagementErrors, (status = 200, description = "The endpoint", body = EndpointView))
)]
pub async fn update_endpoint(
    operator: Operator<WebhooksManage>,
    path: web::Path<String>,
    body: JsonBody<UpdateEndpointRequest>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let body = body.0;
    let enabled = match body.status.as_deref().map(str::parse).transpose()? {
        None => None,
        Some(EndpointStatus::Enabled) => Some(true),
        Some(EndpointStatus::Disabled) => Some(false),
    };
    if body.url.is_none()
        && body.events.is_none()
        && body.description.is_none()
        && enabled.is_none()
    {
        return Err(ValidationError::new(
            "body",
            "nothing to change: give url, events, description or status",
        )
        .into());
    }
    let update = EndpointUpdate {
        url: body.url,
        events: body.events,
        description: body.description,
        enabled,
    };
    let organization_id = organization(&operator)?;
    let endpoint =
        webhooks::update(&state.service, &operator, organization_id, &path, update).await?;
    Ok(HttpResponse::Ok().json(EndpointView::from(&endpoint)))
}

#[utoipa::path(
    delete,
    path = "/v1/webhook-endpoints/{id}",
    tag = "webhooks",
    summary = "Delete a webhook endpoint (its delivery history stays)",
    description = "Needs `webhooks:manage`.",
    security(("bearerAuth" = ["webhooks:manage"]), ("sessionCookie" = [], "csrfHeader" = [])),
    params(("id" = String, Path, description = "The endpoint's id")),
    responses(ManagementErrors, (status = 200, description = "Deleted", body = Deleted))
)]
pub async fn delete_endpoint(
    operator: Operator<WebhooksManage>,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    webhooks::delete(&state.service, &operator, organization(&operator)?, &path).await?;
    Ok(HttpResponse::Ok().json(Deleted { deleted: true }))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RollSecretRequest {
    /// How long the old secret keeps signing deliveries beside the new one (0 to 604800).
    #[schema(minimum = 0, maximum = 604800, default = 0)]
    #[serde(default)]
    grace_period_seconds: i64,
}

#[utoipa::path(
    post,
    path = "/v1/webhook-endpoints/{id}/roll-secret",
    tag = "webhooks",
    summary = "Issue a new signing secret, shown once; the old one also signs for the grace period",
    description = "Needs `webhooks:manage`.",
    security(("bearerAuth" = ["webhooks:manage"]), ("sessionCookie" = [], "csrfHeader" = [])),
    params(("id" = String, Path, description = "The endpoint's id")),
    request_body = RollSecretRequest,
    responses(
        ManagementErrors,
        (status = 200, description = "The endpoint and its new secret; `no-store`", body = WithSecretView),
    )
)]
pub async fn roll_secret(
    operator: Operator<WebhooksManage>,
    path: web::Path<String>,
    body: JsonBody<RollSecretRequest>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let grace = GracePeriod::seconds(body.0.grace_period_seconds)?;
    let organization_id = organization(&operator)?;
    let rolled =
        webhooks::roll_secret(&state.service, &operator, organization_id, &path, grace).await?;
    Ok(no_store(HttpResponse::Ok()).json(WithSecretView {
        endpoint: EndpointView::from(&rolled.endpoint),
        secret: rolled.secret.expose().to_owned(),
    }))
}

/// A test event is queued.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Queued {
    #[schema(schema_with = always_true)]
    queued: bool,
    /// Its delivery, to follow at `/v1/webhook-deliveries/{id}`.
    #[schema(example = "whd_3kQ9xL3aBk2Pq7Rt1Zx0WfK2")]
    delivery_id: String,
}

fn always_true() -> utoipa::openapi::schema::ObjectBuilder {
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::Boolean)
        .enum_values(Some([true]))
}

#[utoipa::path(
    post,
    path = "/v1/webhook-endpoints/{id}/test",
    tag = "webhooks",
    summary = "Send a webhook_endpoint.test event to this endpoint",
    description = "Needs `webhooks:manage`. The event goes out like any other: signed, retried, \
        and listed among the endpoint's deliveries.",
    security(("bearerAuth" = ["webhooks:manage"]), ("sessionCookie" = [], "csrfHeader" = [])),
    params(("id" = String, Path, description = "The endpoint's id")),
    responses(ManagementErrors, (status = 202, description = "Queued", body = Queued))
)]
pub async fn send_test(
    operator: Operator<WebhooksManage>,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let delivery_id =
        webhooks::send_test(&state.service, &operator, organization(&operator)?, &path).await?;
    Ok(HttpResponse::Accepted().json(Queued {
        queued: true,
        delivery_id,
    }))
}

/// One attempt to deliver.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = WebhookAttempt)]
pub struct AttemptView {
    attempted_at: DateTime<Utc>,
    duration_ms: i64,
    /// The receiver's status; null when there was no answer.
    status_code: Option<i32>,
    /// Why there was no answer (timeout, refused address, …).
    error: Option<String>,
    /// The start of the receiver's answer (at most 1 KiB).
    response_body: Option<String>,
}

impl From<&Attempt> for AttemptView {
    fn from(a: &Attempt) -> AttemptView {
        AttemptView {
            attempted_at: a.attempted_at.and_utc(),
            duration_ms: a.duration_ms,
            status_code: a.status_code,
            error: a.error.clone(),
            response_body: a.response_body.clone(),
        }
    }
}

/// One event's delivery to one endpoint.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = WebhookDelivery)]
pub struct DeliveryView {
    #[schema(example = "whd_3kQ9xL3aBk2Pq7Rt1Zx0WfK2")]
    id: String,
    event_id: String,
    event_type: String,
    status: DeliveryStatus,
    attempts: i32,
    /// When the next attempt is due, while `pending`.
    next_attempt_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    attempt_log: Vec<AttemptView>,
}

impl From<&DeliveryRecord> for DeliveryView {
    fn from(r: &DeliveryRecord) -> DeliveryView {
        DeliveryView {
            id: r.delivery.public_id.clone(),
            event_id: r.event.public_id.clone(),
            event_type: r.event.event_type.clone(),
            status: r.delivery.status,
            attempts: r.delivery.attempts,
            next_attempt_at: (r.delivery.status == DeliveryStatus::Pending)
                .then(|| r.delivery.next_attempt_at.and_utc()),
            created_at: r.delivery.created_at.and_utc(),
            attempt_log: r.attempts.iter().map(AttemptView::from).collect(),
        }
    }
}

/// Filters of the deliveries list, besides paging.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code, reason = "only its shape is read, by the OpenAPI document")]
pub struct DeliveryParameters {
    /// `pending`, `succeeded` or `failed`
    #[param(value_type = Option<DeliveryStatus>)]
    pub status: Option<String>,
}

/// `limit` and `offset`, and the other parameters a list takes.
fn paging(
    query: &str,
    mut other: impl FnMut(&str, &str) -> Result<bool, ValidationError>,
) -> Result<(i64, i64), ValidationError> {
    let (mut limit, mut offset) = (100, 0);
    for (name, value) in form_urlencoded::parse(query.as_bytes()) {
        match name.as_ref() {
            "limit" => limit = integer_parameter("limit", &value, 1..=100)?,
            "offset" => offset = integer_parameter("offset", &value, 0..=10_000_000)?,
            other_name => {
                if !other(other_name, &value)? {
                    return Err(ValidationError::new(
                        other_name.chars().take(40).collect::<String>(),
                        "unknown query parameter",
                    ));
                }
            }
        }
    }
    Ok((limit, offset))
}

#[utoipa::path(
    get,
    path = "/v1/webhook-endpoints/{id}/deliveries",
    tag = "webhooks",
    summary = "An endpoint's deliveries, newest first, each with its attempts",
    description = "Needs `webhooks:manage`.",
    security(("bearerAuth" = ["webhooks:manage"]), ("sessionCookie" = [])),
    params(("id" = String, Path, description = "The endpoint's id"), DeliveryParameters, PageParameters),
    responses(ManagementErrors, (status = 200, description = "Deliveries", body = Page<DeliveryView>))
)]
pub async fn list_deliveries(
    operator: Operator<WebhooksManage>,
    path: web::Path<String>,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let mut status = None;
    let page = paging(req.query_string(), |name, value| {
        if name != "status" {
            return Ok(false);
        }
        status = Some(value.parse::<DeliveryStatus>()?);
        Ok(true)
    })?;
    let organization_id = organization(&operator)?;
    let records = webhooks::deliveries(
        &state.service,
        &operator,
        organization_id,
        &path,
        status,
        page,
    )
    .await?;
    Ok(HttpResponse::Ok().json(listed(
        records.iter().map(DeliveryView::from).collect(),
        page,
    )))
}

fn listed<T>(data: Vec<T>, (limit, offset): (i64, i64)) -> Page<T> {
    Page {
        count: offset + data.len() as i64,
        data,
        limit,
        offset,
        next_cursor: None,
    }
}

#[utoipa::path(
    get,
    path = "/v1/webhook-deliveries/{id}",
    tag = "webhooks",
    summary = "A delivery, with every attempt so far",
    description = "Needs `webhooks:manage`.",
    security(("bearerAuth" = ["webhooks:manage"]), ("sessionCookie" = [])),
    params(("id" = String, Path, description = "The delivery's id")),
    responses(ManagementErrors, (status = 200, description = "The delivery", body = DeliveryView))
)]
pub async fn get_delivery(
    operator: Operator<WebhooksManage>,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let record =
        webhooks::delivery(&state.service, &operator, organization(&operator)?, &path).await?;
    Ok(HttpResponse::Ok().json(DeliveryView::from(&record)))
}

#[utoipa::path(
    post,
    path = "/v1/webhook-deliveries/{id}/retry",
    tag = "webhooks",
    summary = "Send a delivery again now, whatever became of it",
    description = "Needs `webhooks:manage`. The delivery is queued at once with a fresh retry \
        window; it keeps its place in its endpoint's order.",
    security(("bearerAuth" = ["webhooks:manage"]), ("sessionCookie" = [], "csrfHeader" = [])),
    params(("id" = String, Path, description = "The delivery's id")),
    responses(ManagementErrors, (status = 202, description = "Queued", body = DeliveryView))
)]
pub async fn retry_delivery(
    operator: Operator<WebhooksManage>,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let record =
        webhooks::retry(&state.service, &operator, organization(&operator)?, &path).await?;
    Ok(HttpResponse::Accepted().json(DeliveryView::from(&record)))
}

/// An event, as its deliveries carry it.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = WebhookEvent)]
pub struct EventView {
    id: String,
    #[serde(rename = "type")]
    event_type: String,
    created_at: DateTime<Utc>,
    /// The body every delivery of it sends.
    #[schema(value_type = Object)]
    payload: serde_json::Value,
}

impl From<&Event> for EventView {
    fn from(e: &Event) -> EventView {
        EventView {
            id: e.public_id.clone(),
            event_type: e.event_type.clone(),
            created_at: e.created_at.and_utc(),
            payload: serde_json::from_str(&e.payload).unwrap_or_default(),
        }
    }
}

#[utoipa::path(
    get,
    path = "/v1/events",
    tag = "webhooks",
    summary = "The organization's recent events, newest first",
    description = "Needs `webhooks:manage`.",
    security(("bearerAuth" = ["webhooks:manage"]), ("sessionCookie" = [])),
    params(PageParameters),
    responses(ManagementErrors, (status = 200, description = "Events", body = Page<EventView>))
)]
pub async fn list_events(
    operator: Operator<WebhooksManage>,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let page = paging(req.query_string(), |_, _| Ok(false))?;
    let events =
        webhooks::events(&state.service, &operator, organization(&operator)?, page).await?;
    Ok(HttpResponse::Ok().json(listed(events.iter().map(EventView::from).collect(), page)))
}

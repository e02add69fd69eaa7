//! Webhooks: an organization's endpoints (`webhooks:manage`), the outbox of events, and what
//! operators see of deliveries. An event is written by [`emit`] inside the transaction of the
//! change that causes it, with one delivery per enabled endpoint that wants it, so a change
//! and its event commit together or not at all; the delivery worker
//! (`service::webhook_delivery`) sends them.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};

use super::audit::{self, Event};
use super::{Caller, Error, Service, policy};
use crate::config::WebhookSettings;
use crate::db::api_keys::ApiKey;
use crate::db::webhooks::{
    self as store, Attempt, Delivery, Endpoint, EndpointChanges, NewDelivery, NewEndpoint, NewEvent,
};
use crate::db::{self, DbConnection, write_transaction};
use crate::domain::{
    AuditAction, DeliveryStatus, EndpointStatus, EventFilter, EventType, GracePeriod,
    ManagementPermission, Metadata, ScopeSet, ValidationError, WebhookSecret, WebhookUrl, random,
};
use crate::tokens::MasterKey;

/// What sealing an endpoint's secret is bound to.
pub const SECRET_CONTEXT: &str = "webhook-endpoint-secret";
const MAX_DESCRIPTION: usize = 500;
const MAX_ENDPOINTS: usize = 20;

/// What every event needs to know of the deployment, for use inside transactions.
#[derive(Clone, Debug)]
pub struct Outbox {
    pub api_version: String,
    pub retry_for: Duration,
}

impl Outbox {
    pub fn new(settings: &WebhookSettings) -> Outbox {
        Outbox {
            api_version: settings.api_version.clone(),
            retry_for: Duration::hours(settings.retry_for_hours as i64),
        }
    }
}

/// An id for an endpoint (`we_`), event (`evt_`) or delivery (`whd_`).
fn public_id(tag: &str) -> String {
    format!("{tag}{}", random::base62(24))
}

/// Writes an event about `key` and queues it for every enabled endpoint of the key's
/// organization that wants it. Call inside the change's write transaction.
pub fn emit_key_event(
    conn: &mut DbConnection,
    outbox: &Outbox,
    key: &ApiKey,
    event_type: EventType,
    now: DateTime<Utc>,
) -> diesel::QueryResult<()> {
    let data = json!({ "api_key": key_fields(key) });
    emit(
        conn,
        outbox,
        key.organization_id,
        event_type,
        data,
        None,
        now,
    )
    .map(drop)
}

/// Scheduled events are produced for what happened in the last week: enough for a keygate
/// that was down for days, without announcing, after an upgrade, every key that ever expired.
const LOOK_BACK_DAYS: i64 = 7;
/// Events produced per kind and pass.
const SCHEDULED_BATCH: i64 = 500;

/// Produces the scheduled events now due, each once (claimed on its row, in the transaction
/// that writes it): `api_key.expiring` `notice` before a key expires (once per expiry),
/// `api_key.expired` when it has, `api_key.secret_expired` when a rotated-out secret's grace
/// ends. Returns how many it produced.
pub fn produce_scheduled(
    conn: &mut DbConnection,
    outbox: &Outbox,
    notice: Duration,
    now: DateTime<Utc>,
) -> diesel::QueryResult<usize> {
    use crate::db::schedule;
    let (at, since) = (
        now.naive_utc(),
        (now - Duration::days(LOOK_BACK_DAYS)).naive_utc(),
    );
    let mut produced = 0;
    for key in schedule::expiring(conn, at, (now + notice).naive_utc(), SCHEDULED_BATCH)? {
        let Some(expires_at) = key.expires_at else {
            continue;
        };
        produced += usize::from(write_transaction(conn, |conn| {
            let claimed = schedule::claim_expiring(conn, key.id, expires_at)?;
            if claimed {
                emit_key_event(conn, outbox, &key, EventType::ApiKeyExpiring, now)?;
            }
            Ok::<_, diesel::result::Error>(claimed)
        })?);
    }
    for key in schedule::expired(conn, since, at, SCHEDULED_BATCH)? {
        produced += usize::from(write_transaction(conn, |conn| {
            let claimed = schedule::claim_expired(conn, key.id, at)?;
            if claimed {
                emit_key_event(conn, outbox, &key, EventType::ApiKeyExpired, now)?;
            }
            Ok::<_, diesel::result::Error>(claimed)
        })?);
    }
    for (secret_id, prefix, expired_at, key) in
        schedule::secrets_expired(conn, since, at, SCHEDULED_BATCH)?
    {
        produced += usize::from(write_transaction(conn, |conn| {
            let claimed = schedule::claim_secret_expired(conn, secret_id, at)?;
            if claimed {
                let data = json!({
                    "api_key": key_fields(&key),
                    "secret": { "prefix": prefix, "expired_at": expired_at.and_utc() },
                });
                let event_type = EventType::ApiKeySecretExpired;
                emit(
                    conn,
                    outbox,
                    key.organization_id,
                    event_type,
                    data,
                    None,
                    now,
                )?;
            }
            Ok::<_, diesel::result::Error>(claimed)
        })?);
    }
    Ok(produced)
}

/// Writes an event, and a delivery of it to every enabled endpoint of the organization that
/// wants it (or only to `only`, for a test event). Returns the deliveries' public ids.
fn emit(
    conn: &mut DbConnection,
    outbox: &Outbox,
    organization_id: i64,
    event_type: EventType,
    data: Value,
    only: Option<i64>,
    now: DateTime<Utc>,
) -> diesel::QueryResult<Vec<String>> {
    let organization = db::organizations::find(conn, organization_id)?;
    let id = public_id("evt_");
    let payload = json!({
        "id": id,
        "type": event_type,
        "timestamp": now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "api_version": outbox.api_version,
        "organization": organization.name,
        "data": data,
    })
    .to_string();
    let event_id = store::insert_event(
        conn,
        &NewEvent {
            public_id: &id,
            organization_id,
            event_type: event_type.as_str(),
            payload: &payload,
            created_at: now.naive_utc(),
        },
    )?;
    let endpoints: Vec<i64> = match only {
        Some(endpoint) => vec![endpoint],
        None => store::enabled_endpoints_of(conn, organization_id)?
            .into_iter()
            .filter(|(_, events)| EventFilter::from_stored(events).matches(event_type))
            .map(|(id, _)| id)
            .collect(),
    };
    let mut deliveries = Vec::with_capacity(endpoints.len());
    for endpoint_id in endpoints {
        let delivery_id = public_id("whd_");
        store::insert_delivery(
            conn,
            &NewDelivery {
                public_id: &delivery_id,
                event_id,
                endpoint_id,
                status: DeliveryStatus::Pending,
                next_attempt_at: now.naive_utc(),
                give_up_at: (now + outbox.retry_for).naive_utc(),
                created_at: now.naive_utc(),
                updated_at: now.naive_utc(),
            },
        )?;
        deliveries.push(delivery_id);
    }
    Ok(deliveries)
}

/// A key's public fields, as events carry them (never a secret or a hash).
fn key_fields(key: &ApiKey) -> Value {
    let at = |t: Option<chrono::NaiveDateTime>| t.map(|t| t.and_utc());
    json!({
        "client_id": key.client_id,
        "name": key.name,
        "key_prefix": key.key_prefix,
        "environment": key.environment,
        "scopes": ScopeSet::from_stored(&key.scopes),
        "status": key.status,
        "token_only": key.token_only,
        "refresh_tokens": key.refresh_tokens,
        "metadata": Metadata::from_stored(&key.metadata),
        "created_at": key.created_at.and_utc(),
        "last_used_at": at(key.last_used_at),
        "expires_at": at(key.expires_at),
        "revoked_at": at(key.revoked_at),
        "deleted": key.deleted_at.is_some(),
    })
}

/// What a new endpoint asks for.
pub struct NewWebhookEndpoint {
    pub url: String,
    pub events: Vec<String>,
    pub description: Option<String>,
}

/// A new endpoint and its signing secret, shown once.
pub struct CreatedEndpoint {
    pub endpoint: Endpoint,
    pub secret: WebhookSecret,
}

fn master_key(service: &Service) -> Result<&MasterKey, Error> {
    service.master_key.as_deref().ok_or_else(|| {
        Error::internal(anyhow::anyhow!(
            "webhook secrets are sealed with the master key, which this process lacks"
        ))
    })
}

fn description(text: Option<String>) -> Result<String, ValidationError> {
    let text = text.unwrap_or_default().trim().to_owned();
    if text.chars().count() > MAX_DESCRIPTION || text.chars().any(char::is_control) {
        return Err(ValidationError::new(
            "description",
            "must be at most 500 characters, without control characters",
        ));
    }
    Ok(text)
}

fn require(caller: &Caller, organization_id: i64) -> Result<(), Error> {
    policy::require(caller, ManagementPermission::WebhooksManage)?;
    if !policy::reaches(caller, organization_id) {
        return Err(Error::NotFound);
    }
    Ok(())
}

pub async fn create(
    service: &Service,
    caller: &Caller,
    organization_id: i64,
    new: NewWebhookEndpoint,
) -> Result<CreatedEndpoint, Error> {
    require(caller, organization_id)?;
    let url = WebhookUrl::parse(&new.url, service.settings.webhooks.allow_http)?;
    let events = EventFilter::parse(&new.events)?;
    let description = description(new.description)?;
    let secret = WebhookSecret::generate();
    let sealed = master_key(service)?.seal(SECRET_CONTEXT, secret.expose().as_bytes());
    let actor = caller.actor.clone();
    let endpoint = service
        .db(move |conn| {
            write_transaction(conn, |conn| -> Result<Endpoint, Error> {
                if store::endpoints_of(conn, organization_id)?.len() >= MAX_ENDPOINTS {
                    return Err(Error::Conflict(format!(
                        "an organization has at most {MAX_ENDPOINTS} webhook endpoints"
                    )));
                }
                let now = Utc::now();
                let id = public_id("we_");
                store::insert_endpoint(
                    conn,
                    &NewEndpoint {
                        public_id: &id,
                        organization_id,
                        url: url.as_str(),
                        description: &description,
                        events: &events.to_stored(),
                        status: EndpointStatus::Enabled,
                        secret: &sealed,
                        created_at: now.naive_utc(),
                        updated_at: now.naive_utc(),
                    },
                )?;
                let event =
                    Event::success(organization_id, AuditAction::WebhookEndpointCreated, &id)
                        .with(json!({ "url": url.as_str(), "events": events.names() }));
                audit::record(conn, &actor, event, now)?;
                store::find_endpoint(conn, organization_id, &id)?.ok_or(Error::NotFound)
            })
        })
        .await?;
    Ok(CreatedEndpoint { endpoint, secret })
}

pub async fn list(
    service: &Service,
    caller: &Caller,
    organization_id: i64,
) -> Result<Vec<Endpoint>, Error> {
    require(caller, organization_id)?;
    service
        .db(move |conn| Ok(store::endpoints_of(conn, organization_id)?))
        .await
}

pub async fn get(
    service: &Service,
    caller: &Caller,
    organization_id: i64,
    public_id: &str,
) -> Result<Endpoint, Error> {
    require(caller, organization_id)?;
    let public_id = public_id.to_owned();
    service
        .db(move |conn| Ok(store::find_endpoint(conn, organization_id, &public_id)?))
        .await?
        .ok_or(Error::NotFound)
}

/// What an update changes; `None` leaves it.
#[derive(Default)]
pub struct EndpointUpdate {
    pub url: Option<String>,
    pub events: Option<Vec<String>>,
    pub description: Option<String>,
    pub enabled: Option<bool>,
}

pub async fn update(
    service: &Service,
    caller: &Caller,
    organization_id: i64,
    public_id: &str,
    update: EndpointUpdate,
) -> Result<Endpoint, Error> {
    let endpoint = get(service, caller, organization_id, public_id).await?;
    let url = update
        .url
        .as_deref()
        .map(|u| WebhookUrl::parse(u, service.settings.webhooks.allow_http))
        .transpose()?;
    let events = update
        .events
        .as_deref()
        .map(EventFilter::parse)
        .transpose()?;
    let description = update
        .description
        .map(|d| description(Some(d)))
        .transpose()?;
    let status = update.enabled.map(|on| {
        if on {
            EndpointStatus::Enabled
        } else {
            EndpointStatus::Disabled
        }
    });
    let actor = caller.actor.clone();
    service
        .db(move |conn| {
            write_transaction(conn, |conn| -> Result<Endpoint, Error> {
                let now = Utc::now();
                let stored_events = events.as_ref().map(EventFilter::to_stored);
                let changes = EndpointChanges {
                    url: url.as_ref().map(WebhookUrl::as_str),
                    description: description.as_deref(),
                    events: stored_events.as_deref(),
                    status,
                    // Enabling an endpoint (again) starts its failure count afresh.
                    consecutive_failures: (status == Some(EndpointStatus::Enabled)).then_some(0),
                    failing_since: (status == Some(EndpointStatus::Enabled)).then_some(None),
                    updated_at: Some(now.naive_utc()),
                    ..Default::default()
                };
                store::update_endpoint(conn, endpoint.id, &changes)?;
                let changed: Vec<&str> = [
                    url.as_ref().map(|_| "url"),
                    events.as_ref().map(|_| "events"),
                    description.as_ref().map(|_| "description"),
                    status.map(|_| "status"),
                ]
                .into_iter()
                .flatten()
                .collect();
                let event = Event::success(
                    organization_id,
                    AuditAction::WebhookEndpointUpdated,
                    &endpoint.public_id,
                )
                .with(json!({ "changed": changed }));
                audit::record(conn, &actor, event, now)?;
                Ok(store::endpoint_by_id(conn, endpoint.id)?)
            })
        })
        .await
}

/// Deletes an endpoint: it gets nothing more; its deliveries stay in the history.
pub async fn delete(
    service: &Service,
    caller: &Caller,
    organization_id: i64,
    public_id: &str,
) -> Result<(), Error> {
    let endpoint = get(service, caller, organization_id, public_id).await?;
    let actor = caller.actor.clone();
    service
        .db(move |conn| {
            write_transaction(conn, |conn| -> Result<(), Error> {
                let now = Utc::now();
                let changes = EndpointChanges {
                    deleted_at: Some(Some(now.naive_utc())),
                    updated_at: Some(now.naive_utc()),
                    ..Default::default()
                };
                store::update_endpoint(conn, endpoint.id, &changes)?;
                let event = Event::success(
                    organization_id,
                    AuditAction::WebhookEndpointDeleted,
                    &endpoint.public_id,
                );
                Ok(audit::record(conn, &actor, event, now)?)
            })
        })
        .await
}

/// Issues a new signing secret, shown once; deliveries are signed with the old one too until
/// the grace period ends, so receivers can switch without missing one.
pub async fn roll_secret(
    service: &Service,
    caller: &Caller,
    organization_id: i64,
    public_id: &str,
    grace: GracePeriod,
) -> Result<CreatedEndpoint, Error> {
    let endpoint = get(service, caller, organization_id, public_id).await?;
    let secret = WebhookSecret::generate();
    let sealed = master_key(service)?.seal(SECRET_CONTEXT, secret.expose().as_bytes());
    let actor = caller.actor.clone();
    let endpoint = service
        .db(move |conn| {
            write_transaction(conn, |conn| -> Result<Endpoint, Error> {
                let now = Utc::now();
                let until = grace.ends(now).map(|t| t.naive_utc());
                let changes = EndpointChanges {
                    secret: Some(&sealed),
                    previous_secret: Some(until.map(|_| endpoint.secret.as_str())),
                    previous_secret_expires_at: Some(until),
                    updated_at: Some(now.naive_utc()),
                    ..Default::default()
                };
                store::update_endpoint(conn, endpoint.id, &changes)?;
                let event = Event::success(
                    organization_id,
                    AuditAction::WebhookEndpointSecretRolled,
                    &endpoint.public_id,
                )
                .with(json!({ "grace_period_seconds": grace.as_seconds() }));
                audit::record(conn, &actor, event, now)?;
                Ok(store::endpoint_by_id(conn, endpoint.id)?)
            })
        })
        .await?;
    Ok(CreatedEndpoint { endpoint, secret })
}

/// Queues a `webhook_endpoint.test` event for this endpoint alone.
pub async fn send_test(
    service: &Service,
    caller: &Caller,
    organization_id: i64,
    public_id: &str,
) -> Result<String, Error> {
    let endpoint = get(service, caller, organization_id, public_id).await?;
    let outbox = service.outbox.clone();
    service
        .db(move |conn| {
            write_transaction(conn, |conn| -> Result<String, Error> {
                let data = json!({ "endpoint": endpoint.public_id });
                let mut deliveries = emit(
                    conn,
                    &outbox,
                    organization_id,
                    EventType::WebhookTest,
                    data,
                    Some(endpoint.id),
                    Utc::now(),
                )?;
                Ok(deliveries.pop().expect("a test event goes to its endpoint"))
            })
        })
        .await
}

/// A delivery with its event and every attempt so far.
pub struct DeliveryRecord {
    pub delivery: Delivery,
    pub event: store::Event,
    pub attempts: Vec<Attempt>,
}

/// An endpoint's deliveries, newest first.
pub async fn deliveries(
    service: &Service,
    caller: &Caller,
    organization_id: i64,
    endpoint: &str,
    status: Option<DeliveryStatus>,
    page: (i64, i64),
) -> Result<Vec<DeliveryRecord>, Error> {
    let endpoint = get(service, caller, organization_id, endpoint).await?;
    let (limit, offset) = page;
    service
        .db(move |conn| {
            let rows = store::deliveries_of(conn, endpoint.id, status, limit, offset)?;
            let ids: Vec<i64> = rows.iter().map(|(d, _)| d.id).collect();
            let mut attempts: HashMap<i64, Vec<Attempt>> = HashMap::new();
            for attempt in store::attempts_of(conn, &ids)? {
                attempts
                    .entry(attempt.delivery_id)
                    .or_default()
                    .push(attempt);
            }
            Ok(rows
                .into_iter()
                .map(|(delivery, event)| DeliveryRecord {
                    attempts: attempts.remove(&delivery.id).unwrap_or_default(),
                    delivery,
                    event,
                })
                .collect())
        })
        .await
}

/// One delivery with its attempts.
fn record(conn: &mut DbConnection, delivery_id: i64) -> Result<DeliveryRecord, Error> {
    let (delivery, event) = store::delivery_by_id(conn, delivery_id)?;
    let attempts = store::attempts_of(conn, &[delivery.id])?;
    Ok(DeliveryRecord {
        delivery,
        event,
        attempts,
    })
}

/// A delivery of the organization, with every attempt so far.
pub async fn delivery(
    service: &Service,
    caller: &Caller,
    organization_id: i64,
    public_id: &str,
) -> Result<DeliveryRecord, Error> {
    require(caller, organization_id)?;
    let public_id = public_id.to_owned();
    service
        .db(move |conn| {
            let (delivery, _, _) =
                store::find_delivery(conn, organization_id, &public_id)?.ok_or(Error::NotFound)?;
            record(conn, delivery.id)
        })
        .await
}

/// Sends a delivery again at once (with a fresh retry window), whatever became of it.
pub async fn retry(
    service: &Service,
    caller: &Caller,
    organization_id: i64,
    public_id: &str,
) -> Result<DeliveryRecord, Error> {
    require(caller, organization_id)?;
    let public_id = public_id.to_owned();
    let retry_for = service.outbox.retry_for;
    service
        .db(move |conn| {
            write_transaction(conn, |conn| -> Result<DeliveryRecord, Error> {
                let (delivery, _, _) = store::find_delivery(conn, organization_id, &public_id)?
                    .ok_or(Error::NotFound)?;
                let now = Utc::now();
                store::requeue(
                    conn,
                    delivery.id,
                    now.naive_utc(),
                    (now + retry_for).naive_utc(),
                )?;
                record(conn, delivery.id)
            })
        })
        .await
}

/// The organization's recent events, newest first.
pub async fn events(
    service: &Service,
    caller: &Caller,
    organization_id: i64,
    page: (i64, i64),
) -> Result<Vec<store::Event>, Error> {
    require(caller, organization_id)?;
    let (limit, offset) = page;
    service
        .db(move |conn| Ok(store::events_of(conn, organization_id, limit, offset)?))
        .await
}

//! Webhook endpoints, the events of the outbox, their deliveries and each delivery's attempts.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text, Timestamp};

use super::DbConnection;
use super::schema::{webhook_attempts, webhook_deliveries, webhook_endpoints, webhook_events};
use crate::domain::{DeliveryStatus, EndpointStatus};

/// No `Debug`: it holds sealed secrets.
#[derive(Clone, Queryable, Selectable)]
#[diesel(table_name = webhook_endpoints)]
pub struct Endpoint {
    pub id: i64,
    pub public_id: String,
    pub organization_id: i64,
    pub url: String,
    pub description: String,
    pub events: String,
    pub status: EndpointStatus,
    pub secret: String,
    pub previous_secret: Option<String>,
    pub previous_secret_expires_at: Option<NaiveDateTime>,
    pub consecutive_failures: i32,
    /// Set when the endpoint was disabled for failing, until it is enabled again.
    pub failing_since: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub deleted_at: Option<NaiveDateTime>,
}

#[derive(Insertable)]
#[diesel(table_name = webhook_endpoints)]
pub struct NewEndpoint<'a> {
    pub public_id: &'a str,
    pub organization_id: i64,
    pub url: &'a str,
    pub description: &'a str,
    pub events: &'a str,
    pub status: EndpointStatus,
    pub secret: &'a str,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

#[derive(Default, AsChangeset)]
#[diesel(table_name = webhook_endpoints)]
pub struct EndpointChanges<'a> {
    pub url: Option<&'a str>,
    pub description: Option<&'a str>,
    pub events: Option<&'a str>,
    pub status: Option<EndpointStatus>,
    pub secret: Option<&'a str>,
    pub previous_secret: Option<Option<&'a str>>,
    pub previous_secret_expires_at: Option<Option<NaiveDateTime>>,
    pub consecutive_failures: Option<i32>,
    pub failing_since: Option<Option<NaiveDateTime>>,
    pub updated_at: Option<NaiveDateTime>,
    pub deleted_at: Option<Option<NaiveDateTime>>,
}

pub fn insert_endpoint(conn: &mut DbConnection, endpoint: &NewEndpoint<'_>) -> QueryResult<()> {
    diesel::insert_into(webhook_endpoints::table)
        .values(endpoint)
        .execute(conn)
        .map(drop)
}

/// An organization's endpoint by its public id (deleted ones are not found).
pub fn find_endpoint(
    conn: &mut DbConnection,
    organization_id: i64,
    public_id: &str,
) -> QueryResult<Option<Endpoint>> {
    webhook_endpoints::table
        .filter(webhook_endpoints::organization_id.eq(organization_id))
        .filter(webhook_endpoints::public_id.eq(public_id))
        .filter(webhook_endpoints::deleted_at.is_null())
        .select(Endpoint::as_select())
        .first(conn)
        .optional()
}

pub fn endpoint_by_id(conn: &mut DbConnection, id: i64) -> QueryResult<Endpoint> {
    webhook_endpoints::table
        .find(id)
        .select(Endpoint::as_select())
        .first(conn)
}

/// An organization's endpoints, oldest first.
pub fn endpoints_of(conn: &mut DbConnection, organization_id: i64) -> QueryResult<Vec<Endpoint>> {
    webhook_endpoints::table
        .filter(webhook_endpoints::organization_id.eq(organization_id))
        .filter(webhook_endpoints::deleted_at.is_null())
        .order(webhook_endpoints::id.asc())
        .select(Endpoint::as_select())
        .load(conn)
}

/// The enabled endpoints of an organization: who may want an event.
pub fn enabled_endpoints_of(
    conn: &mut DbConnection,
    organization_id: i64,
) -> QueryResult<Vec<(i64, String)>> {
    webhook_endpoints::table
        .filter(webhook_endpoints::organization_id.eq(organization_id))
        .filter(webhook_endpoints::deleted_at.is_null())
        .filter(webhook_endpoints::status.eq(EndpointStatus::Enabled))
        .select((webhook_endpoints::id, webhook_endpoints::events))
        .load(conn)
}

pub fn update_endpoint(
    conn: &mut DbConnection,
    id: i64,
    changes: &EndpointChanges<'_>,
) -> QueryResult<()> {
    diesel::update(webhook_endpoints::table.find(id))
        .set(changes)
        .execute(conn)
        .map(drop)
}

#[derive(Clone, Debug, Queryable, Selectable)]
#[diesel(table_name = webhook_events)]
pub struct Event {
    pub id: i64,
    pub public_id: String,
    pub organization_id: i64,
    pub event_type: String,
    pub payload: String,
    pub created_at: NaiveDateTime,
}

#[derive(Insertable)]
#[diesel(table_name = webhook_events)]
pub struct NewEvent<'a> {
    pub public_id: &'a str,
    pub organization_id: i64,
    pub event_type: &'a str,
    pub payload: &'a str,
    pub created_at: NaiveDateTime,
}

/// Inserts an event and returns its row id.
pub fn insert_event(conn: &mut DbConnection, event: &NewEvent<'_>) -> QueryResult<i64> {
    diesel::insert_into(webhook_events::table)
        .values(event)
        .execute(conn)?;
    webhook_events::table
        .filter(webhook_events::public_id.eq(event.public_id))
        .select(webhook_events::id)
        .first(conn)
}

/// An organization's events, newest first.
pub fn events_of(
    conn: &mut DbConnection,
    organization_id: i64,
    limit: i64,
    offset: i64,
) -> QueryResult<Vec<Event>> {
    webhook_events::table
        .filter(webhook_events::organization_id.eq(organization_id))
        .order(webhook_events::id.desc())
        .limit(limit)
        .offset(offset)
        .select(Event::as_select())
        .load(conn)
}

#[derive(Clone, Debug, Queryable, Selectable)]
#[diesel(table_name = webhook_deliveries)]
pub struct Delivery {
    pub id: i64,
    pub public_id: String,
    pub event_id: i64,
    pub endpoint_id: i64,
    pub status: DeliveryStatus,
    pub attempts: i32,
    pub next_attempt_at: NaiveDateTime,
    pub give_up_at: NaiveDateTime,
    pub locked_until: Option<NaiveDateTime>,
    pub last_status_code: Option<i32>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

#[derive(Insertable)]
#[diesel(table_name = webhook_deliveries)]
pub struct NewDelivery<'a> {
    pub public_id: &'a str,
    pub event_id: i64,
    pub endpoint_id: i64,
    pub status: DeliveryStatus,
    pub next_attempt_at: NaiveDateTime,
    pub give_up_at: NaiveDateTime,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

pub fn insert_delivery(conn: &mut DbConnection, delivery: &NewDelivery<'_>) -> QueryResult<()> {
    diesel::insert_into(webhook_deliveries::table)
        .values(delivery)
        .execute(conn)
        .map(drop)
}

/// An endpoint's deliveries with their events, newest first, optionally of one status.
pub fn deliveries_of(
    conn: &mut DbConnection,
    endpoint_id: i64,
    status: Option<DeliveryStatus>,
    limit: i64,
    offset: i64,
) -> QueryResult<Vec<(Delivery, Event)>> {
    let mut query = webhook_deliveries::table
        .inner_join(webhook_events::table)
        .filter(webhook_deliveries::endpoint_id.eq(endpoint_id))
        .order(webhook_deliveries::id.desc())
        .limit(limit)
        .offset(offset)
        .select((Delivery::as_select(), Event::as_select()))
        .into_boxed();
    if let Some(status) = status {
        query = query.filter(webhook_deliveries::status.eq(status));
    }
    query.load(conn)
}

/// A delivery of an organization by its public id, with its endpoint and event.
pub fn find_delivery(
    conn: &mut DbConnection,
    organization_id: i64,
    public_id: &str,
) -> QueryResult<Option<(Delivery, Endpoint, Event)>> {
    webhook_deliveries::table
        .inner_join(webhook_endpoints::table)
        .inner_join(webhook_events::table)
        .filter(webhook_deliveries::public_id.eq(public_id))
        .filter(webhook_endpoints::organization_id.eq(organization_id))
        .filter(webhook_endpoints::deleted_at.is_null())
        .select((
            Delivery::as_select(),
            Endpoint::as_select(),
            Event::as_select(),
        ))
        .first(conn)
        .optional()
}

pub fn delivery_by_id(conn: &mut DbConnection, id: i64) -> QueryResult<(Delivery, Event)> {
    webhook_deliveries::table
        .inner_join(webhook_events::table)
        .filter(webhook_deliveries::id.eq(id))
        .select((Delivery::as_select(), Event::as_select()))
        .first(conn)
}

#[derive(QueryableByName)]
struct Due {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = BigInt)]
    endpoint_id: i64,
}

/// Deliveries not made yet, across every endpoint (the backlog).
pub fn backlog(conn: &mut DbConnection) -> QueryResult<i64> {
    webhook_deliveries::table
        .filter(webhook_deliveries::status.eq(DeliveryStatus::Pending))
        .count()
        .get_result(conn)
}

/// The deliveries due now that head their endpoint's queue: the oldest pending delivery of
/// each enabled endpoint, if its time has come and no worker holds it. Later deliveries of an
/// endpoint wait for the earlier ones, so each endpoint gets its events in order. Pairs of
/// (delivery, endpoint).
pub fn due(
    conn: &mut DbConnection,
    now: NaiveDateTime,
    limit: i64,
) -> QueryResult<Vec<(i64, i64)>> {
    let sql = match conn {
        DbConnection::Postgres(_) => {
            "SELECT d.id, d.endpoint_id FROM webhook_deliveries d \
             JOIN webhook_endpoints e ON e.id = d.endpoint_id \
             WHERE d.status = $3 AND e.status = $4 AND e.deleted_at IS NULL \
             AND d.id = (SELECT MIN(h.id) FROM webhook_deliveries h \
                         WHERE h.endpoint_id = d.endpoint_id AND h.status = $3) \
             AND d.next_attempt_at <= $1 AND (d.locked_until IS NULL OR d.locked_until < $1) \
             ORDER BY d.id LIMIT $2"
        }
        DbConnection::Sqlite(_) => {
            "SELECT d.id, d.endpoint_id FROM webhook_deliveries d \
             JOIN webhook_endpoints e ON e.id = d.endpoint_id \
             WHERE d.status = ?3 AND e.status = ?4 AND e.deleted_at IS NULL \
             AND d.id = (SELECT MIN(h.id) FROM webhook_deliveries h \
                         WHERE h.endpoint_id = d.endpoint_id AND h.status = ?3) \
             AND d.next_attempt_at <= ?1 AND (d.locked_until IS NULL OR d.locked_until < ?1) \
             ORDER BY d.id LIMIT ?2"
        }
    };
    Ok(diesel::sql_query(sql)
        .bind::<Timestamp, _>(now)
        .bind::<BigInt, _>(limit)
        .bind::<Text, _>(DeliveryStatus::Pending)
        .bind::<Text, _>(EndpointStatus::Enabled)
        .load::<Due>(conn)?
        .into_iter()
        .map(|d| (d.id, d.endpoint_id))
        .collect())
}

/// The head of one enabled endpoint's queue, if it is due now and no worker holds it.
pub fn next_due_of(
    conn: &mut DbConnection,
    endpoint_id: i64,
    now: NaiveDateTime,
) -> QueryResult<Option<i64>> {
    let enabled = webhook_endpoints::table
        .find(endpoint_id)
        .filter(webhook_endpoints::status.eq(EndpointStatus::Enabled))
        .filter(webhook_endpoints::deleted_at.is_null())
        .select(webhook_endpoints::id)
        .first::<i64>(conn)
        .optional()?
        .is_some();
    if !enabled {
        return Ok(None);
    }
    let head: Option<(i64, NaiveDateTime, Option<NaiveDateTime>)> = webhook_deliveries::table
        .filter(webhook_deliveries::endpoint_id.eq(endpoint_id))
        .filter(webhook_deliveries::status.eq(DeliveryStatus::Pending))
        .order(webhook_deliveries::id.asc())
        .select((
            webhook_deliveries::id,
            webhook_deliveries::next_attempt_at,
            webhook_deliveries::locked_until,
        ))
        .first(conn)
        .optional()?;
    Ok(head
        .filter(|(_, next, locked)| *next <= now && locked.is_none_or(|l| l < now))
        .map(|(id, ..)| id))
}

/// Takes a delivery for one attempt until `lease`, unless another worker holds it or it is
/// no longer pending; whether this call took it. The lease is the fencing token: only its
/// holder records the attempt's outcome.
pub fn claim(
    conn: &mut DbConnection,
    id: i64,
    now: NaiveDateTime,
    lease: NaiveDateTime,
) -> QueryResult<bool> {
    diesel::update(
        webhook_deliveries::table
            .filter(webhook_deliveries::id.eq(id))
            .filter(webhook_deliveries::status.eq(DeliveryStatus::Pending))
            .filter(
                webhook_deliveries::locked_until
                    .is_null()
                    .or(webhook_deliveries::locked_until.lt(now)),
            ),
    )
    .set(webhook_deliveries::locked_until.eq(lease))
    .execute(conn)
    .map(|n| n == 1)
}

/// What an attempt came to.
pub struct Outcome {
    pub status: DeliveryStatus,
    pub next_attempt_at: NaiveDateTime,
    pub status_code: Option<i32>,
    pub now: NaiveDateTime,
}

/// Records an attempt's outcome, if `lease` still holds the delivery; whether it did.
pub fn finish(
    conn: &mut DbConnection,
    id: i64,
    lease: NaiveDateTime,
    outcome: &Outcome,
) -> QueryResult<bool> {
    diesel::update(
        webhook_deliveries::table
            .filter(webhook_deliveries::id.eq(id))
            .filter(webhook_deliveries::locked_until.eq(lease)),
    )
    .set((
        webhook_deliveries::status.eq(outcome.status),
        webhook_deliveries::attempts.eq(webhook_deliveries::attempts + 1),
        webhook_deliveries::next_attempt_at.eq(outcome.next_attempt_at),
        webhook_deliveries::last_status_code.eq(outcome.status_code),
        webhook_deliveries::locked_until.eq(None::<NaiveDateTime>),
        webhook_deliveries::updated_at.eq(outcome.now),
    ))
    .execute(conn)
    .map(|n| n == 1)
}

/// Queues a delivery again at once, with a new retry window.
pub fn requeue(
    conn: &mut DbConnection,
    id: i64,
    now: NaiveDateTime,
    give_up_at: NaiveDateTime,
) -> QueryResult<()> {
    diesel::update(webhook_deliveries::table.find(id))
        .set((
            webhook_deliveries::status.eq(DeliveryStatus::Pending),
            webhook_deliveries::next_attempt_at.eq(now),
            webhook_deliveries::give_up_at.eq(give_up_at),
            webhook_deliveries::locked_until.eq(None::<NaiveDateTime>),
            webhook_deliveries::updated_at.eq(now),
        ))
        .execute(conn)
        .map(drop)
}

#[derive(Clone, Debug, Queryable, Selectable)]
#[diesel(table_name = webhook_attempts)]
pub struct Attempt {
    pub id: i64,
    pub delivery_id: i64,
    pub attempted_at: NaiveDateTime,
    pub duration_ms: i64,
    pub status_code: Option<i32>,
    pub error: Option<String>,
    pub response_body: Option<String>,
}

#[derive(Insertable)]
#[diesel(table_name = webhook_attempts)]
pub struct NewAttempt<'a> {
    pub delivery_id: i64,
    pub attempted_at: NaiveDateTime,
    pub duration_ms: i64,
    pub status_code: Option<i32>,
    pub error: Option<&'a str>,
    pub response_body: Option<&'a str>,
}

pub fn insert_attempt(conn: &mut DbConnection, attempt: &NewAttempt<'_>) -> QueryResult<()> {
    diesel::insert_into(webhook_attempts::table)
        .values(attempt)
        .execute(conn)
        .map(drop)
}

/// The attempts of these deliveries, oldest first.
pub fn attempts_of(conn: &mut DbConnection, delivery_ids: &[i64]) -> QueryResult<Vec<Attempt>> {
    webhook_attempts::table
        .filter(webhook_attempts::delivery_id.eq_any(delivery_ids))
        .order(webhook_attempts::id.asc())
        .select(Attempt::as_select())
        .load(conn)
}

/// Deletes events written before `before` whose deliveries are all finished, with those
/// deliveries and their attempts; returns how many events went. An event with a delivery
/// still pending (or queued again by hand) stays, with all of its history.
pub fn prune(conn: &mut DbConnection, before: NaiveDateTime) -> QueryResult<usize> {
    const BATCH: i64 = 1000;
    let mut pruned = 0;
    loop {
        let pending = webhook_deliveries::table
            .filter(webhook_deliveries::event_id.eq(webhook_events::id))
            .filter(webhook_deliveries::status.eq(DeliveryStatus::Pending));
        let old: Vec<i64> = webhook_events::table
            .filter(webhook_events::created_at.lt(before))
            .filter(diesel::dsl::not(diesel::dsl::exists(pending)))
            .select(webhook_events::id)
            .order(webhook_events::id.asc())
            .limit(BATCH)
            .load(conn)?;
        if old.is_empty() {
            return Ok(pruned);
        }
        // Each statement re-checks `pending`, so a delivery queued again meanwhile is kept,
        // and so is its event.
        let finished = webhook_deliveries::table
            .filter(webhook_deliveries::event_id.eq_any(&old))
            .filter(webhook_deliveries::status.ne(DeliveryStatus::Pending))
            .select(webhook_deliveries::id);
        diesel::delete(
            webhook_attempts::table.filter(webhook_attempts::delivery_id.eq_any(finished)),
        )
        .execute(conn)?;
        diesel::delete(
            webhook_deliveries::table
                .filter(webhook_deliveries::event_id.eq_any(&old))
                .filter(webhook_deliveries::status.ne(DeliveryStatus::Pending)),
        )
        .execute(conn)?;
        let left =
            webhook_deliveries::table.filter(webhook_deliveries::event_id.eq(webhook_events::id));
        let deleted = diesel::delete(
            webhook_events::table
                .filter(webhook_events::id.eq_any(&old))
                .filter(diesel::dsl::not(diesel::dsl::exists(left))),
        )
        .execute(conn)?;
        pruned += deleted;
        if (old.len() as i64) < BATCH || deleted == 0 {
            return Ok(pruned);
        }
    }
}

/// Every endpoint's sealed signing secrets: (id, secret, previous secret).
pub fn sealed_secrets(conn: &mut DbConnection) -> QueryResult<Vec<(i64, String, Option<String>)>> {
    webhook_endpoints::table
        .select((
            webhook_endpoints::id,
            webhook_endpoints::secret,
            webhook_endpoints::previous_secret,
        ))
        .order(webhook_endpoints::id.asc())
        .load(conn)
}

pub fn set_sealed_secrets(
    conn: &mut DbConnection,
    id: i64,
    secret: &str,
    previous_secret: Option<&str>,
) -> QueryResult<()> {
    diesel::update(webhook_endpoints::table.find(id))
        .set((
            webhook_endpoints::secret.eq(secret),
            webhook_endpoints::previous_secret.eq(previous_secret),
        ))
        .execute(conn)
        .map(|_| ())
}

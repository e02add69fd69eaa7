//! The delivery worker: sends the outbox's deliveries, each endpoint's in the order they were
//! made, every endpoint independently of the others.
//!
//! Each poll reads the deliveries that head their endpoint's queue and are due, and claims
//! each with a lease (a conditional update, so several instances never send one delivery at
//! once); the lease is also the fencing token under which the attempt's outcome is recorded.
//! A failed attempt is retried with exponential backoff and jitter until the delivery's retry
//! window (`webhooks.retry_for_hours`) closes; a run of `webhooks.failure_threshold` failures
//! disables the endpoint, in the audit trail. A delivery in flight when keygate stops is sent
//! again after its lease lapses: receivers see each event at least once, and drop repeats by
//! `webhook-id`.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use serde_json::json;

use super::audit::{self, Actor, Event};
use super::webhooks::{Outbox, SECRET_CONTEXT, produce_scheduled};
use crate::config::WebhookSettings;
use crate::db::webhooks::{self as store, EndpointChanges, NewAttempt, Outcome};
use crate::db::{DbPool, write_transaction};
use crate::domain::{AuditAction, DeliveryStatus, EndpointStatus, WebhookSecret};
use crate::tokens::MasterKey;
use crate::webhook_sender::{Message, Sender, Sent};

/// Deliveries looked at per poll, and sent at once by one instance.
const BATCH: i64 = 64;
/// Retries are at most this far apart.
const MAX_BACKOFF_MS: i64 = 6 * 3600 * 1000;

#[derive(Clone)]
pub struct DeliveryWorker {
    pool: DbPool,
    master_key: Arc<MasterKey>,
    settings: Arc<WebhookSettings>,
    sender: Arc<Sender>,
    /// Endpoints with a delivery in flight from this instance.
    busy: Arc<Mutex<HashSet<i64>>>,
}

impl DeliveryWorker {
    pub fn new(
        pool: DbPool,
        master_key: Arc<MasterKey>,
        settings: &WebhookSettings,
    ) -> anyhow::Result<DeliveryWorker> {
        let sender = Sender::new(
            settings.allowed_networks.clone(),
            StdDuration::from_secs(settings.timeout_seconds),
        )?;
        Ok(DeliveryWorker {
            pool,
            master_key,
            settings: Arc::new(settings.clone()),
            sender: Arc::new(sender),
            busy: Arc::default(),
        })
    }

    /// Polls forever on the current actix (tokio) runtime; another task produces the
    /// scheduled events.
    pub fn spawn(self, outbox: Outbox) {
        let scheduler = self.clone();
        actix_web::rt::spawn(async move {
            let period = StdDuration::from_millis(self.settings.poll_interval_ms);
            let mut ticker = actix_web::rt::time::interval(period);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                if let Err(e) = self.poll().await {
                    log::warn!("webhook deliveries: {e:#}");
                }
            }
        });
        actix_web::rt::spawn(async move {
            let period = StdDuration::from_millis(scheduler.settings.schedule_interval_ms);
            let mut ticker = actix_web::rt::time::interval(period);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                if let Err(e) = scheduler.produce(&outbox).await {
                    log::warn!("scheduled webhook events: {e:#}");
                }
            }
        });
    }

    /// Produces the scheduled events now due.
    async fn produce(&self, outbox: &Outbox) -> anyhow::Result<()> {
        let (pool, outbox) = (self.pool.clone(), outbox.clone());
        let notice = Duration::days(i64::from(self.settings.expiring_notice_days));
        let produced = actix_web::rt::task::spawn_blocking(move || -> anyhow::Result<usize> {
            let mut conn = pool.get()?;
            Ok(produce_scheduled(&mut conn, &outbox, notice, Utc::now())?)
        })
        .await??;
        if produced > 0 {
            log::debug!("produced {produced} scheduled webhook event(s)");
        }
        Ok(())
    }

    /// Claims what is due and starts sending it.
    async fn poll(&self) -> anyhow::Result<()> {
        let (pool, lease_for, busy) = (self.pool.clone(), self.lease(), self.busy.clone());
        let claimed = actix_web::rt::task::spawn_blocking(move || -> anyhow::Result<_> {
            let mut conn = pool.get()?;
            let now = Utc::now();
            let lease = (now + lease_for).naive_utc();
            let mut claimed = Vec::new();
            for (id, endpoint_id) in store::due(&mut conn, now.naive_utc(), BATCH)? {
                // One delivery per endpoint at a time, so each gets its events in order.
                if !busy.lock().expect("busy lock").insert(endpoint_id) {
                    continue;
                }
                if store::claim(&mut conn, id, now.naive_utc(), lease)? {
                    claimed.push((id, endpoint_id, lease));
                } else {
                    busy.lock().expect("busy lock").remove(&endpoint_id);
                }
            }
            Ok(claimed)
        })
        .await??;
        for (id, endpoint_id, lease) in claimed {
            let worker = self.clone();
            actix_web::rt::spawn(async move {
                worker.drain(endpoint_id, id, lease).await;
                worker.busy.lock().expect("busy lock").remove(&endpoint_id);
            });
        }
        Ok(())
    }

    /// Sends an endpoint's deliveries one after the other while the next is due at once, so
    /// a backlog goes out at the receiver's pace rather than one per poll.
    async fn drain(&self, endpoint_id: i64, first: i64, lease: chrono::NaiveDateTime) {
        let mut next = Some((first, lease));
        while let Some((id, lease)) = next {
            if let Err(e) = self.deliver(id, lease).await {
                log::warn!("webhook delivery {id}: {e:#}");
                return;
            }
            let (pool, lease_for) = (self.pool.clone(), self.lease());
            next = actix_web::rt::task::spawn_blocking(move || -> anyhow::Result<_> {
                let mut conn = pool.get()?;
                let now = Utc::now();
                let lease = (now + lease_for).naive_utc();
                Ok(
                    match store::next_due_of(&mut conn, endpoint_id, now.naive_utc())? {
                        Some(id) if store::claim(&mut conn, id, now.naive_utc(), lease)? => {
                            Some((id, lease))
                        }
                        _ => None,
                    },
                )
            })
            .await
            .map_err(anyhow::Error::from)
            .and_then(|claimed| claimed)
            .unwrap_or_else(|e| {
                log::warn!("webhook deliveries of endpoint {endpoint_id}: {e:#}");
                None
            });
        }
    }

    /// How long a claim holds: the send's timeout, with room to record its outcome.
    fn lease(&self) -> Duration {
        Duration::seconds(self.settings.timeout_seconds as i64 + 30)
    }

    /// One attempt of one delivery, and its outcome recorded.
    async fn deliver(&self, id: i64, lease: chrono::NaiveDateTime) -> anyhow::Result<()> {
        let pool = self.pool.clone();
        let (delivery, event, endpoint) =
            actix_web::rt::task::spawn_blocking(move || -> anyhow::Result<_> {
                let mut conn = pool.get()?;
                let (delivery, event) = store::delivery_by_id(&mut conn, id)?;
                let endpoint = store::endpoint_by_id(&mut conn, delivery.endpoint_id)?;
                Ok((delivery, event, endpoint))
            })
            .await??;
        let now = Utc::now();
        let keys = self.signing_keys(&endpoint, now)?;
        let sent = self
            .sender
            .send(&Message {
                url: &endpoint.url,
                id: &event.public_id,
                timestamp: now.timestamp(),
                body: &event.payload,
                keys: &keys,
            })
            .await;
        let (pool, settings) = (self.pool.clone(), self.settings.clone());
        actix_web::rt::task::spawn_blocking(move || -> anyhow::Result<()> {
            let mut conn = pool.get()?;
            record(&mut conn, &settings, (&delivery, &endpoint), lease, &sent)
        })
        .await?
    }

    /// The HMAC keys to sign with: the current secret, and a rolled-out one still in its
    /// grace period.
    fn signing_keys(
        &self,
        endpoint: &store::Endpoint,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Vec<Vec<u8>>> {
        let open = |sealed: &str| -> anyhow::Result<Vec<u8>> {
            let text = String::from_utf8(self.master_key.open(SECRET_CONTEXT, sealed)?)?;
            Ok(WebhookSecret::from_stored(text).key())
        };
        let mut keys = vec![open(&endpoint.secret)?];
        if let (Some(previous), Some(until)) = (
            &endpoint.previous_secret,
            endpoint.previous_secret_expires_at,
        ) && until.and_utc() > now
        {
            keys.push(open(previous)?);
        }
        Ok(keys)
    }
}

/// Records an attempt and what follows from it, in one transaction, if the lease still holds.
fn record(
    conn: &mut crate::db::DbConnection,
    settings: &WebhookSettings,
    (delivery, endpoint): (&store::Delivery, &store::Endpoint),
    lease: chrono::NaiveDateTime,
    sent: &Sent,
) -> anyhow::Result<()> {
    write_transaction(conn, |conn| -> anyhow::Result<()> {
        let now = Utc::now();
        let attempts = delivery.attempts + 1;
        let succeeded = sent.succeeded();
        let next = now + backoff(attempts, settings.first_retry_ms as i64);
        let status = if succeeded {
            DeliveryStatus::Succeeded
        } else if next.naive_utc() >= delivery.give_up_at {
            DeliveryStatus::Failed
        } else {
            DeliveryStatus::Pending
        };
        let outcome = Outcome {
            status,
            next_attempt_at: next.naive_utc(),
            status_code: sent.status.map(i32::from),
            now: now.naive_utc(),
        };
        if !store::finish(conn, delivery.id, lease, &outcome)? {
            // The lease lapsed and another worker took the delivery: its record stands.
            return Ok(());
        }
        store::insert_attempt(
            conn,
            &NewAttempt {
                delivery_id: delivery.id,
                attempted_at: now.naive_utc(),
                duration_ms: sent.duration_ms,
                status_code: sent.status.map(i32::from),
                error: sent.error.as_deref(),
                response_body: sent.body.as_deref(),
            },
        )?;
        let current = store::endpoint_by_id(conn, endpoint.id)?;
        let failures = if succeeded {
            0
        } else {
            current.consecutive_failures + 1
        };
        let failing = failures >= settings.failure_threshold as i32
            && current.status == EndpointStatus::Enabled;
        let changes = EndpointChanges {
            consecutive_failures: Some(failures),
            status: failing.then_some(EndpointStatus::Disabled),
            failing_since: failing.then_some(Some(now.naive_utc())),
            ..Default::default()
        };
        store::update_endpoint(conn, endpoint.id, &changes)?;
        if failing {
            let event = Event::success(
                current.organization_id,
                AuditAction::WebhookEndpointDisabled,
                &current.public_id,
            )
            .with(json!({ "reason": "failing", "consecutive_failures": failures }));
            audit::record(conn, &Actor::system(), event, now)?;
        }
        Ok(())
    })
}

/// How long to wait after the `attempts`-th failure: `first_ms`, twice that, four times, …
/// up to 6 hours, each with ±25 % jitter so that deliveries failing together do not all come
/// back together.
pub fn backoff(attempts: i32, first_ms: i64) -> Duration {
    let exponent = (attempts - 1).clamp(0, 30) as u32;
    let base = first_ms.saturating_mul(1 << exponent).min(MAX_BACKOFF_MS) as f64;
    let mut byte = [0u8; 1];
    crate::domain::random::fill(&mut byte);
    let jitter = 0.75 + f64::from(byte[0]) / 255.0 * 0.5;
    Duration::milliseconds((base * jitter) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_up_to_six_hours() {
        for (attempts, base) in [(1, 5.0), (2, 10.0), (3, 20.0), (10, 2560.0), (30, 21600.0)] {
            let waited = backoff(attempts, 5000).num_milliseconds() as f64 / 1000.0;
            assert!(
                (base * 0.75..=base * 1.25).contains(&waited),
                "attempt {attempts}: {waited} s"
            );
        }
    }
}

//! Changing the master key: every value it sealed (signing keys' private halves, webhook
//! endpoint secrets, values kept for a one-time view) is sealed again under the new key, in
//! one transaction, so the database never holds a mix that no single key opens.

use chrono::Utc;
use serde::Serialize;

use super::audit::{self, Event};
use super::{Caller, Error, Service, policy};
use crate::db::{self, DbConnection, write_transaction};
use crate::domain::{AuditAction, Outcome};
use crate::service::webhooks::SECRET_CONTEXT;
use crate::tokens::MasterKey;

/// How many sealed values were sealed again, and how many of them the previous key had
/// sealed (the rest were already under the current key).
#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct Rewrapped {
    pub signing_keys: usize,
    pub webhook_secrets: usize,
    pub reveals: usize,
    pub were_under_previous_key: usize,
}

/// Seals every sealed value again under the current master key (`KEYGATE_MASTER_KEY`),
/// opening each with it or with `KEYGATE_PREVIOUS_MASTER_KEY`. A value neither opens stops
/// the whole change.
pub async fn rewrap(service: &Service, caller: &Caller) -> Result<Rewrapped, Error> {
    policy::require_deployment_administrator(caller, &service.catalog)?;
    let master = service
        .master_key
        .clone()
        .ok_or_else(|| Error::internal(anyhow::anyhow!("re-sealing needs the master key")))?;
    let actor = caller.actor.clone();
    service
        .db(move |conn| {
            write_transaction(conn, |conn| -> anyhow::Result<Rewrapped> {
                let done = rewrap_all(conn, &master)?;
                let event = Event {
                    organization_id: None,
                    action: AuditAction::MasterKeyRewrapped,
                    target: None,
                    outcome: Outcome::Success,
                    details: serde_json::to_value(&done)?,
                };
                audit::record(conn, &actor, event, Utc::now())?;
                Ok(done)
            })
            .map_err(Error::Internal)
        })
        .await
}

fn rewrap_all(conn: &mut DbConnection, master: &MasterKey) -> anyhow::Result<Rewrapped> {
    if matches!(conn, DbConnection::Postgres(_)) {
        diesel::RunQueryDsl::execute(
            diesel::sql_query(
                "LOCK TABLE signing_keys, webhook_endpoints, one_time_reveals IN EXCLUSIVE MODE",
            ),
            conn,
        )?;
    }
    let mut done = Rewrapped::default();
    let mut reseal = |context: &str, sealed: &str| -> anyhow::Result<String> {
        let (plain, was_previous) = master.open_telling(context, sealed)?;
        done.were_under_previous_key += usize::from(was_previous);
        Ok(master.seal(context, &plain))
    };
    let mut counts = (0, 0, 0);
    for (id, kid, sealed) in db::signing_keys::sealed(conn)? {
        let resealed =
            reseal(&kid, &sealed).map_err(|e| e.context(format!("signing key {kid}")))?;
        db::signing_keys::set_sealed(conn, id, &resealed)?;
        counts.0 += 1;
    }
    for (id, secret, previous) in db::webhooks::sealed_secrets(conn)? {
        let secret = reseal(SECRET_CONTEXT, &secret)
            .map_err(|e| e.context(format!("webhook endpoint {id}")))?;
        let previous = previous
            .map(|p| reseal(SECRET_CONTEXT, &p))
            .transpose()
            .map_err(|e| e.context(format!("webhook endpoint {id}")))?;
        db::webhooks::set_sealed_secrets(conn, id, &secret, previous.as_deref())?;
        counts.1 += 1;
    }
    for (hash, sealed) in db::reveals::sealed(conn)? {
        let resealed = reseal(&format!("reveal:{hash}"), &sealed)
            .map_err(|e| e.context("a value kept for a one-time view"))?;
        db::reveals::set_sealed(conn, &hash, &resealed)?;
        counts.2 += 1;
    }
    (done.signing_keys, done.webhook_secrets, done.reveals) = counts;
    Ok(done)
}

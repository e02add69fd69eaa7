//! Signing-key lifecycle: a `next` key is always published ahead of use, so verifiers that
//! cache the JWKS already hold it when `rotate` makes it active; the old active key keeps
//! verifying until its last token has expired. Private halves are sealed with the master key.

use std::net::ToSocketAddrs;

use chrono::{DateTime, Duration, Utc};
use diesel::RunQueryDsl;
use secrecy::ExposeSecret;

use super::audit::{self, Actor, Event};
use super::{Caller, Error, Service, policy};
use crate::config::Settings;
use crate::db::changes;
use crate::db::signing_keys::{self, NewSigningKey, SigningKeyRow};
use crate::db::{DbConnection, write_transaction};
use crate::domain::{AuditAction, Outcome, SigningAlgorithm, SigningKeyStatus};
use crate::tokens::{Change, MasterKey, generate};

/// The master key: `KEYGATE_MASTER_KEY`; else, only where the profile allows it (development)
/// and keygate listens on a loopback address only, one generated once into
/// `signing.master_key_file`, readable by its owner only. Anywhere else there is no master key
/// to be had, and keygate refuses to start.
pub fn master_key(settings: &Settings) -> anyhow::Result<MasterKey> {
    if let Some(encoded) = &settings.master_key {
        return MasterKey::parse(encoded.expose_secret());
    }
    anyhow::ensure!(
        settings.signing.allow_generated_master_key,
        "KEYGATE_MASTER_KEY is not set. It encrypts the signing keys: generate one with \
         `openssl rand -base64 32` and give every instance the same value"
    );
    anyhow::ensure!(
        listens_on_loopback_only(&settings.server.bind),
        "KEYGATE_MASTER_KEY is not set, and keygate listens on {}, beyond this machine: a \
         generated development key is only for a loopback address. Generate one with \
         `openssl rand -base64 32` and set KEYGATE_MASTER_KEY",
        settings.server.bind
    );
    let path = &settings.signing.master_key_file;
    let (key, created) = MasterKey::load_or_create(path)?;
    if created {
        log::warn!(
            "KEYGATE_MASTER_KEY is not set: generated a development master key in {}. \
             Set KEYGATE_MASTER_KEY in production.",
            path.display()
        );
    }
    Ok(key)
}

/// Whether every address `bind` names is a loopback address.
fn listens_on_loopback_only(bind: &str) -> bool {
    bind.to_socket_addrs()
        .map(|addresses| {
            let addresses: Vec<_> = addresses.collect();
            !addresses.is_empty() && addresses.iter().all(|a| a.ip().is_loopback())
        })
        .unwrap_or(false)
}

fn insert_generated(
    conn: &mut DbConnection,
    master: &MasterKey,
    algorithm: SigningAlgorithm,
    status: SigningKeyStatus,
    now: DateTime<Utc>,
) -> anyhow::Result<String> {
    let key = generate(algorithm)?;
    let sealed = master.seal(&key.kid, &key.private);
    signing_keys::insert(
        conn,
        &NewSigningKey {
            kid: &key.kid,
            algorithm,
            status,
            public_jwk: &key.public_jwk,
            private_key: &sealed,
            created_at: now.naive_utc(),
            activated_at: (status == SigningKeyStatus::Active).then_some(now.naive_utc()),
        },
    )?;
    Ok(key.kid.clone())
}

/// Every signing key ever made, newest first.
pub async fn list(service: &Service, caller: &Caller) -> Result<Vec<SigningKeyRow>, Error> {
    policy::require_deployment_administrator(caller, &service.catalog)?;
    service.db(|conn| Ok(signing_keys::all(conn)?)).await
}

/// Rotates now (see [`rotate`]), with the verification window this deployment's tokens need:
/// their lifetime and twice the leeway.
pub async fn rotate_now(service: &Service, caller: &Caller) -> Result<Rotation, Error> {
    policy::require_deployment_administrator(caller, &service.catalog)?;
    let master = service
        .master_key
        .clone()
        .ok_or_else(|| Error::internal(anyhow::anyhow!("rotation needs the master key")))?;
    let tokens = &service.settings.tokens;
    let algorithm = tokens.algorithm;
    let overlap = Duration::seconds((tokens.lifetime_seconds + 2 * tokens.leeway_seconds) as i64);
    let actor = caller.actor.clone();
    // Every instance (this one too) reloads its keyring from the change feed.
    service
        .db(move |conn| rotate(conn, &master, algorithm, overlap, &actor).map_err(Error::Internal))
        .await
}

/// Serialises key changes across instances (two rotations at once would leave two active
/// keys), and refuses to seal new keys with a master key that cannot open the existing ones.
fn prepare(conn: &mut DbConnection, master: &MasterKey) -> anyhow::Result<()> {
    if matches!(conn, DbConnection::Postgres(_)) {
        diesel::sql_query("LOCK TABLE signing_keys IN EXCLUSIVE MODE").execute(conn)?;
    }
    for key in signing_keys::with_status(conn, SigningKeyStatus::Active)? {
        master.open(&key.kid, &key.private_key)?;
    }
    Ok(())
}

/// Makes sure there is an active key and a published next key (first start, or after an
/// algorithm change). Returns true when it created any.
pub fn ensure(
    conn: &mut DbConnection,
    master: &MasterKey,
    algorithm: SigningAlgorithm,
    now: DateTime<Utc>,
) -> anyhow::Result<bool> {
    write_transaction(conn, |conn| {
        prepare(conn, master)?;
        let mut created = false;
        if signing_keys::with_status(conn, SigningKeyStatus::Active)?.is_empty() {
            let kid = insert_generated(conn, master, algorithm, SigningKeyStatus::Active, now)?;
            log::info!("created signing key {kid} ({algorithm})");
            created = true;
        }
        // A next key of the configured algorithm: after an algorithm change, it is published
        // beside the old one, so that it is in every verifier's keyring before it signs.
        let next = signing_keys::with_status(conn, SigningKeyStatus::Next)?;
        if !next.iter().any(|k| k.algorithm == algorithm) {
            let kid = insert_generated(conn, master, algorithm, SigningKeyStatus::Next, now)?;
            log::info!("published next signing key {kid} ({algorithm})");
            created = true;
        }
        if created {
            announce(conn, now)?;
        }
        Ok(created)
    })
}

pub struct Rotation {
    pub activated: String,
    pub retired: Vec<String>,
    pub verify_until: DateTime<Utc>,
}

/// Promotes the next key, retires the active key with a verification window of `overlap`, and
/// publishes a new next key. Only a key published ahead of use ever starts signing: after an
/// algorithm change, the newest next key of the configured algorithm is promoted if one was
/// published (keygate publishes it at start); else the published next key of the old
/// algorithm is, and the first key of the new algorithm is published for the next rotation.
pub fn rotate(
    conn: &mut DbConnection,
    master: &MasterKey,
    algorithm: SigningAlgorithm,
    overlap: Duration,
    actor: &Actor,
) -> anyhow::Result<Rotation> {
    write_transaction(conn, |conn| {
        prepare(conn, master)?;
        let now = Utc::now();
        let verify_until = now + overlap;
        let mut retired = Vec::new();
        for active in signing_keys::with_status(conn, SigningKeyStatus::Active)? {
            retire(conn, &active, now, verify_until)?;
            retired.push(active.kid);
        }
        let next: Vec<SigningKeyRow> = signing_keys::with_status(conn, SigningKeyStatus::Next)?;
        let promoted = next
            .iter()
            .rev()
            .find(|k| k.algorithm == algorithm)
            .or(next.last());
        let activated = match promoted {
            Some(key) => {
                signing_keys::activate(conn, key.id, now.naive_utc())?;
                key.kid.clone()
            }
            // Nothing was ever published (a database without keys): nothing can verify yet.
            None => insert_generated(conn, master, algorithm, SigningKeyStatus::Active, now)?,
        };
        // Next keys of another algorithm were published but never signed: they go.
        for stale in next
            .iter()
            .filter(|k| k.kid != activated && k.algorithm != algorithm)
        {
            retire(conn, stale, now, now)?;
        }
        let still_next = next
            .iter()
            .any(|k| k.kid != activated && k.algorithm == algorithm);
        if !still_next {
            insert_generated(conn, master, algorithm, SigningKeyStatus::Next, now)?;
        }
        announce(conn, now)?;
        let event = Event {
            organization_id: None,
            action: AuditAction::SigningKeysRotated,
            target: Some(&activated),
            outcome: Outcome::Success,
            details: serde_json::json!({ "retired": retired, "algorithm": algorithm }),
        };
        audit::record(conn, actor, event, now)?;
        Ok(Rotation {
            activated,
            retired,
            verify_until,
        })
    })
}

/// An asymmetric key's private half is erased at once (only the public half verifies); an
/// HS256 secret verifies too, so it stays sealed until its window closes
/// ([`erase_expired_secrets`]).
fn retire(
    conn: &mut DbConnection,
    key: &SigningKeyRow,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
) -> anyhow::Result<()> {
    let symmetric = key.algorithm.is_symmetric();
    signing_keys::retire(conn, key.id, now.naive_utc(), until.naive_utc(), !symmetric)?;
    Ok(())
}

fn announce(conn: &mut DbConnection, now: DateTime<Utc>) -> diesel::QueryResult<()> {
    let change = Change::SigningKeys {
        expires_at: now.timestamp() + 86_400,
    };
    changes::publish(conn, &change, now.naive_utc())
}

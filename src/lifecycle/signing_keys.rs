//! Signing-key lifecycle: a `next` key is always published ahead of use, so verifiers that
//! cache the JWKS already hold it when `rotate` makes it active; the old active key keeps
//! verifying until its last token has expired.

use chrono::{DateTime, Duration, Utc};
use diesel::Connection;

use crate::db::DbConnection;
use crate::db::changes::{self, NewStateChange};
use crate::db::signing_keys::{self, NewSigningKey, SigningKeyRow};
use crate::tokens::{Keyring, MasterKey, SigningAlgorithm, generate};

fn insert_generated(
    conn: &mut DbConnection,
    master: &MasterKey,
    algorithm: SigningAlgorithm,
    status: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<String> {
    let key = generate(algorithm)?;
    let sealed = master.seal(&key.kid, &key.private);
    signing_keys::insert(
        conn,
        &NewSigningKey {
            kid: &key.kid,
            algorithm: algorithm.as_str(),
            status,
            public_jwk: &key.public_jwk,
            private_key: &sealed,
            created_at: now.naive_utc(),
            activated_at: (status == "active").then_some(now.naive_utc()),
        },
    )?;
    Ok(key.kid.clone())
}

/// Makes sure there is an active key and a published next key (first start, or after an
/// algorithm change). Returns true when it created any.
pub fn ensure(
    conn: &mut DbConnection,
    master: &MasterKey,
    algorithm: SigningAlgorithm,
    now: DateTime<Utc>,
) -> anyhow::Result<bool> {
    conn.transaction(|conn| {
        let mut created = false;
        if signing_keys::with_status(conn, "active")?.is_empty() {
            let kid = insert_generated(conn, master, algorithm, "active", now)?;
            log::info!("created signing key {kid} ({algorithm})");
            created = true;
        }
        if signing_keys::with_status(conn, "next")?.is_empty() {
            insert_generated(conn, master, algorithm, "next", now)?;
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

/// Promotes the next key (or, if the configured algorithm changed, a new one), retires the
/// active key with a verification window of one token lifetime plus leeway, and publishes a
/// new next key.
pub fn rotate(
    conn: &mut DbConnection,
    master: &MasterKey,
    algorithm: SigningAlgorithm,
    overlap: Duration,
    now: DateTime<Utc>,
) -> anyhow::Result<Rotation> {
    conn.transaction(|conn| {
        let verify_until = now + overlap;
        let mut retired = Vec::new();
        for active in signing_keys::with_status(conn, "active")? {
            signing_keys::retire(conn, active.id, now.naive_utc(), verify_until.naive_utc())?;
            retired.push(active.kid);
        }
        let next: Vec<SigningKeyRow> = signing_keys::with_status(conn, "next")?;
        let promoted = next
            .iter()
            .rev()
            .find(|k| k.algorithm == algorithm.as_str());
        let activated = match promoted {
            Some(key) => {
                signing_keys::activate(conn, key.id, now.naive_utc())?;
                key.kid.clone()
            }
            None => insert_generated(conn, master, algorithm, "active", now)?,
        };
        for stale in next.iter().filter(|k| k.kid != activated) {
            signing_keys::retire(conn, stale.id, now.naive_utc(), now.naive_utc())?;
        }
        insert_generated(conn, master, algorithm, "next", now)?;
        announce(conn, now)?;
        Ok(Rotation {
            activated,
            retired,
            verify_until,
        })
    })
}

fn announce(conn: &mut DbConnection, now: DateTime<Utc>) -> diesel::QueryResult<()> {
    changes::publish(
        conn,
        &NewStateChange {
            kind: "signing_keys",
            subject: "",
            not_before: now.timestamp(),
            expires_at: now.timestamp() + 86_400,
            created_at: now.naive_utc(),
        },
    )
}

/// Loads the keyring from the database.
pub fn load_keyring(
    conn: &mut DbConnection,
    master: Option<&MasterKey>,
    now: DateTime<Utc>,
) -> anyhow::Result<Keyring> {
    let rows = signing_keys::usable(conn, now.naive_utc())?;
    Keyring::from_rows(&rows, master)
}

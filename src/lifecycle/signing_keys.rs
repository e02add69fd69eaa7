//! Signing-key lifecycle: a `next` key is always published ahead of use, so verifiers that
//! cache the JWKS already hold it when `rotate` makes it active; the old active key keeps
//! verifying until its last token has expired.

use chrono::{DateTime, Duration, Utc};
use diesel::RunQueryDsl;

use crate::db::changes::{self, NewStateChange};
use crate::db::signing_keys::{self, NewSigningKey, SigningKeyRow};
use crate::db::{DbConnection, write_transaction};
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

/// Serialises key changes across instances (two rotations at once would leave two active
/// keys), and refuses to seal new keys with a master key that cannot open the existing ones.
fn prepare(conn: &mut DbConnection, master: &MasterKey) -> anyhow::Result<()> {
    if matches!(conn, DbConnection::Postgres(_)) {
        diesel::sql_query("LOCK TABLE signing_keys IN EXCLUSIVE MODE").execute(conn)?;
    }
    for key in signing_keys::with_status(conn, "active")? {
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
/// active key with a verification window of `overlap`, and publishes a new next key.
pub fn rotate(
    conn: &mut DbConnection,
    master: &MasterKey,
    algorithm: SigningAlgorithm,
    overlap: Duration,
    now: DateTime<Utc>,
) -> anyhow::Result<Rotation> {
    write_transaction(conn, |conn| {
        prepare(conn, master)?;
        let verify_until = now + overlap;
        let mut retired = Vec::new();
        for active in signing_keys::with_status(conn, "active")? {
            retire(conn, &active, now, verify_until)?;
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
            retire(conn, stale, now, now)?;
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

/// An asymmetric key's private half is erased at once (only the public half verifies); an
/// HS256 secret verifies too, so it stays sealed until its window closes
/// ([`erase_expired_secrets`]).
fn retire(
    conn: &mut DbConnection,
    key: &SigningKeyRow,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
) -> anyhow::Result<()> {
    let symmetric = key.algorithm.parse::<SigningAlgorithm>()?.is_symmetric();
    signing_keys::retire(conn, key.id, now.naive_utc(), until.naive_utc(), !symmetric)?;
    Ok(())
}

/// Erases the sealed secrets of retired keys whose verification window has closed.
pub fn erase_expired_secrets(
    conn: &mut DbConnection,
    now: DateTime<Utc>,
) -> diesel::QueryResult<usize> {
    signing_keys::erase_retired_private_keys(conn, now.naive_utc())
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

//! Bulk seeding through keygate's own schema and connection: batched multi-row inserts of
//! 1,000 keys per statement, one transaction per batch.
//!
//! Every seeded key gets a secret row with the same secret (one prefix, one bcrypt hash):
//! hashing once instead of a million times is what makes a million keys seedable, and it
//! changes nothing for keygate, which still verifies each (client_id, secret) pair on its own.

use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::Utc;
use diesel::prelude::*;
use keygate::config::DatabaseSettings;
use keygate::db::api_keys::{NewApiKey, NewApiKeySecret};
use keygate::db::schema::{api_key_secrets, api_keys};
use keygate::db::{DbConnection, connect, organizations, run_migrations, users};
use keygate::domain::{ClientId, ClientSecret, Environment, KeyStatus};

/// Rows per INSERT statement (and per transaction).
const BATCH: usize = 1_000;
/// The bcrypt cost of keygate's development profile (and of its default configuration).
pub const BCRYPT_COST: u32 = 10;
pub const ADMIN_EMAIL: &str = "bench@example.com";
/// Owns the cold pool, so that the admin's list holds exactly the warm key, the management
/// key and the `--keys` keys, whatever the size of the pool.
pub const COLD_OWNER_EMAIL: &str = "bench-cold@example.com";

pub struct Seeded {
    /// The secret every seeded key shares.
    pub secret: String,
    /// The warm key's client_id (scope `invoices:read`, owned by the admin).
    pub warm: String,
    /// The cold pool's client_ids, in seeding order.
    pub cold: Vec<String>,
    /// Keys inserted in all (warm + listable + cold).
    pub inserted: u64,
    pub elapsed: Duration,
}

/// Seeds the warm key, `listable` keys owned by the admin, and `cold` keys owned by the cold
/// pool's user, all live, enabled, scope `invoices:read`, in the `default` organization.
/// The users must exist (the harness makes them with `keygate users create`).
pub fn seed(database_url: &str, listable: u64, cold: u64) -> anyhow::Result<Seeded> {
    let pool = connect(&DatabaseSettings {
        url: database_url.parse()?,
        pool_size: 1,
        connect_timeout_seconds: 10,
    })?;
    let mut conn = pool.get().context("cannot connect to the bench database")?;
    run_migrations(&mut conn)?;
    let organization = organizations::find_by_name(&mut conn, organizations::DEFAULT_ORGANIZATION)?
        .context("the default organization is missing")?;
    let admin = users::find_by_email(&mut conn, ADMIN_EMAIL)?
        .with_context(|| format!("no user {ADMIN_EMAIL}"))?;
    let cold_owner = users::find_by_email(&mut conn, COLD_OWNER_EMAIL)?
        .with_context(|| format!("no user {COLD_OWNER_EMAIL}"))?;

    let secret = ClientSecret::generate(Environment::Live);
    let hash = bcrypt::hash(secret.expose(), BCRYPT_COST)?;
    let prefix = secret.prefix();
    let shared = SharedSecret {
        prefix: prefix.as_str(),
        hash: &hash,
    };

    let started = Instant::now();
    let mut inserted = 0;
    let mut seeder = Seeder {
        conn: &mut conn,
        organization_id: organization.id,
        secret: shared,
        clock: 0,
    };
    let warm = seeder.group("bench warm", 1, admin.id, true)?;
    inserted += 1;
    let mut last_report = Instant::now();
    let mut done = 0u64;
    while done < listable {
        let n = (listable - done).min(BATCH as u64);
        seeder.group("bench key", n, admin.id, false)?;
        done += n;
        inserted += n;
        if last_report.elapsed() > Duration::from_secs(5) {
            eprintln!(
                "  seeded {done} of {listable} keys ({:.0} keys/s)",
                done as f64 / started.elapsed().as_secs_f64()
            );
            last_report = Instant::now();
        }
    }
    let mut cold_ids = Vec::with_capacity(cold as usize);
    let mut done = 0u64;
    while done < cold {
        let n = (cold - done).min(BATCH as u64);
        cold_ids.extend(seeder.group("bench cold", n, cold_owner.id, true)?);
        done += n;
        inserted += n;
    }
    Ok(Seeded {
        secret: secret.expose().to_owned(),
        warm: warm.into_iter().next().context("the warm key")?,
        cold: cold_ids,
        inserted,
        elapsed: started.elapsed(),
    })
}

#[derive(Clone, Copy)]
struct SharedSecret<'a> {
    prefix: &'a str,
    hash: &'a str,
}

struct Seeder<'a> {
    conn: &'a mut DbConnection,
    organization_id: i64,
    secret: SharedSecret<'a>,
    /// Keys seeded so far: each is made one millisecond before the previous one, so the
    /// newest-first list has a definite order.
    clock: i64,
}

impl Seeder<'_> {
    /// Inserts one batch of `n` (at most [`BATCH`]) keys and their secret rows; returns the
    /// client_ids when asked to.
    fn group(
        &mut self,
        label: &str,
        n: u64,
        owner: i64,
        keep_ids: bool,
    ) -> anyhow::Result<Vec<String>> {
        let now = Utc::now().naive_utc();
        let client_ids: Vec<String> = (0..n)
            .map(|_| ClientId::generate().as_str().to_owned())
            .collect();
        let names: Vec<String> = (0..n)
            .map(|i| format!("{label} {}", self.clock + i as i64))
            .collect();
        let created: Vec<_> = (0..n)
            .map(|i| now - chrono::Duration::milliseconds(self.clock + i as i64))
            .collect();
        self.clock += n as i64;
        let rows: Vec<NewApiKey<'_>> = client_ids
            .iter()
            .zip(&names)
            .zip(&created)
            .map(|((client_id, name), created_at)| NewApiKey {
                organization_id: self.organization_id,
                client_id,
                name,
                environment: Environment::Live,
                scopes: "invoices:read",
                status: KeyStatus::Enabled,
                expires_at: None,
                metadata: "{}",
                created_by: Some(owner),
                created_at: *created_at,
                updated_at: *created_at,
                key_prefix: self.secret.prefix,
                token_only: false,
                refresh_tokens: false,
            })
            .collect();
        let secret = self.secret;
        // diesel's MultiConnection has no batch insert: run the batch on the backend's own
        // connection (the same code, type-checked once per backend).
        macro_rules! insert_batch {
            ($conn:expr) => {
                $conn.transaction(|conn| -> anyhow::Result<()> {
                    diesel::insert_into(api_keys::table)
                        .values(&rows)
                        .execute(conn)?;
                    let ids: Vec<(i64, chrono::NaiveDateTime)> = api_keys::table
                        .filter(api_keys::client_id.eq_any(&client_ids))
                        .select((api_keys::id, api_keys::created_at))
                        .load(conn)?;
                    anyhow::ensure!(ids.len() == rows.len(), "inserted keys not found");
                    let secrets: Vec<NewApiKeySecret<'_>> = ids
                        .iter()
                        .map(|(id, created_at)| NewApiKeySecret {
                            api_key_id: *id,
                            prefix: secret.prefix,
                            secret_hash: secret.hash,
                            created_at: *created_at,
                            expires_at: None,
                        })
                        .collect();
                    diesel::insert_into(api_key_secrets::table)
                        .values(&secrets)
                        .execute(conn)?;
                    Ok(())
                })
            };
        }
        match &mut *self.conn {
            DbConnection::Sqlite(conn) => insert_batch!(conn)?,
            DbConnection::Postgres(conn) => insert_batch!(conn)?,
        }
        Ok(if keep_ids { client_ids } else { Vec::new() })
    }
}

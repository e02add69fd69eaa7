//! Signing-key lifecycle: a `next` key is always published ahead of use, so verifiers that
//! cache the JWKS already hold it when `rotate` makes it active; the old active key keeps
//! verifying until its last token has expired. Private halves are sealed with the master key.
//! Rotations come from an operator (`rotate_now`) or from the schedule
//! (`signing.rotate_every_days`, [`RotationSchedule`]), through the same [`rotate_locked`].

use std::net::ToSocketAddrs;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use diesel::RunQueryDsl;
use secrecy::ExposeSecret;

use super::audit::{self, Actor, Event};
use super::{Caller, Error, Service, policy};
use crate::config::Settings;
use crate::db::changes;
use crate::db::signing_keys::{self, NewSigningKey, SigningKeyRow};
use crate::db::{DbConnection, DbPool, write_transaction};
use crate::domain::{AuditAction, Outcome, SigningAlgorithm, SigningKeyStatus};
use crate::tokens::{Change, MasterKey, generate};

/// The master key: `KEYGATE_MASTER_KEY`; else, only where the profile allows it (development)
/// and keygate listens on a loopback address only, one generated once into
/// `signing.master_key_file`, readable by its owner only. Anywhere else there is no master key
/// to be had, and keygate refuses to start.
pub fn master_key(settings: &Settings) -> anyhow::Result<MasterKey> {
    if let Some(encoded) = &settings.master_key {
        let key = MasterKey::parse(encoded.expose_secret())?;
        return match &settings.previous_master_key {
            Some(previous) => {
                let previous = MasterKey::parse(previous.expose_secret()).map_err(|e| {
                    anyhow::anyhow!(
                        "KEYGATE_PREVIOUS_MASTER_KEY: {}",
                        e.to_string().replace("KEYGATE_MASTER_KEY ", "")
                    )
                })?;
                Ok(key.replacing(previous))
            }
            None => Ok(key),
        };
    }
    anyhow::ensure!(
        settings.previous_master_key.is_none(),
        "KEYGATE_PREVIOUS_MASTER_KEY is set without KEYGATE_MASTER_KEY: give the new key as \
         KEYGATE_MASTER_KEY and the old one as KEYGATE_PREVIOUS_MASTER_KEY"
    );
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
    let algorithm = service.settings.tokens.algorithm;
    let overlap = verification_window(&service.settings);
    let actor = caller.actor.clone();
    // Every instance (this one too) reloads its keyring from the change feed.
    service
        .db(move |conn| rotate(conn, &master, algorithm, overlap, &actor).map_err(Error::Internal))
        .await
}

/// How long a retired key keeps verifying: the lifetime of the last token it signed, and twice
/// the leeway.
fn verification_window(settings: &Settings) -> Duration {
    let tokens = &settings.tokens;
    Duration::seconds((tokens.lifetime_seconds + 2 * tokens.leeway_seconds) as i64)
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
        rotate_locked(conn, master, algorithm, overlap, actor, None, Utc::now())
    })
}

/// The next key a rotation promotes: the newest of the configured algorithm, else the newest
/// published of another (see [`rotate`]).
fn promotable(next: &[SigningKeyRow], algorithm: SigningAlgorithm) -> Option<&SigningKeyRow> {
    next.iter()
        .rev()
        .find(|k| k.algorithm == algorithm)
        .or(next.last())
}

/// The rotation itself, inside a write transaction that went through [`prepare`]: every
/// rotation, by hand or by the schedule (`every_days`, recorded in the audit event), takes
/// this path.
fn rotate_locked(
    conn: &mut DbConnection,
    master: &MasterKey,
    algorithm: SigningAlgorithm,
    overlap: Duration,
    actor: &Actor,
    every_days: Option<i64>,
    now: DateTime<Utc>,
) -> anyhow::Result<Rotation> {
    let verify_until = now + overlap;
    let mut retired = Vec::new();
    for active in signing_keys::with_status(conn, SigningKeyStatus::Active)? {
        retire(conn, &active, now, verify_until)?;
        retired.push(active.kid);
    }
    let next: Vec<SigningKeyRow> = signing_keys::with_status(conn, SigningKeyStatus::Next)?;
    let activated = match promotable(&next, algorithm) {
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
    let mut details = serde_json::json!({ "retired": retired, "algorithm": algorithm });
    if let Some(days) = every_days {
        details["rotate_every_days"] = days.into();
    }
    let event = Event {
        organization_id: None,
        action: AuditAction::SigningKeysRotated,
        target: Some(&activated),
        outcome: Outcome::Success,
        details,
    };
    audit::record(conn, actor, event, now)?;
    Ok(Rotation {
        activated,
        retired,
        verify_until,
    })
}

/// Whether the scheduled rotation is due at `now`: the active key has signed for `period`,
/// and the key a rotation would promote has been published for as long, so that it has been
/// in every verifier's JWKS a whole period before it signs (after a change of algorithm, the
/// new algorithm's `next` key is published at start, and waits its period). Never without an
/// active key or a published next key: [`ensure`] makes those at start.
fn rotation_due(
    conn: &mut DbConnection,
    algorithm: SigningAlgorithm,
    period: Duration,
    now: DateTime<Utc>,
) -> diesel::QueryResult<bool> {
    let before = (now - period).naive_utc();
    let active = signing_keys::with_status(conn, SigningKeyStatus::Active)?;
    if active.is_empty()
        || active
            .iter()
            .any(|k| k.activated_at.unwrap_or(k.created_at) > before)
    {
        return Ok(false);
    }
    let next = signing_keys::with_status(conn, SigningKeyStatus::Next)?;
    Ok(promotable(&next, algorithm).is_some_and(|k| k.created_at <= before))
}

/// The scheduled rotation, when it is due: once, however many instances ask at once. A cheap
/// read first (most checks end there); then, inside the write transaction whose lock every key
/// change takes ([`prepare`]: the table lock on PostgreSQL, SQLite's write lock), the same
/// question again: an instance that waited for the lock while another rotated sees the fresh
/// key, and does nothing. Returns the rotation it made.
pub fn rotate_if_due(
    conn: &mut DbConnection,
    master: &MasterKey,
    algorithm: SigningAlgorithm,
    overlap: Duration,
    every_days: i64,
) -> anyhow::Result<Option<Rotation>> {
    let period = Duration::days(every_days);
    if !rotation_due(conn, algorithm, period, Utc::now())? {
        return Ok(None);
    }
    write_transaction(conn, |conn| {
        prepare(conn, master)?;
        let now = Utc::now();
        if !rotation_due(conn, algorithm, period, now)? {
            return Ok(None);
        }
        let actor = Actor::schedule();
        rotate_locked(
            conn,
            master,
            algorithm,
            overlap,
            &actor,
            Some(every_days),
            now,
        )
        .map(Some)
    })
}

/// How many rotations this instance's schedule made since it started (the other instances
/// count theirs): a counter for the metrics, read with [`RotationCount::get`].
#[derive(Debug, Default)]
pub struct RotationCount(AtomicU64);

impl RotationCount {
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    fn add_one(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

/// Rotates the signing key by itself every `signing.rotate_every_days`. Every instance runs
/// one; [`rotate_if_due`] lets only one of them rotate.
pub struct RotationSchedule {
    pool: DbPool,
    master_key: Arc<MasterKey>,
    algorithm: SigningAlgorithm,
    overlap: Duration,
    every_days: i64,
    check_every: StdDuration,
    count: Arc<RotationCount>,
}

impl RotationSchedule {
    /// The schedule `settings` ask for, counting into `count`; None when they ask for none
    /// (`signing.rotate_every_days = 0`).
    pub fn new(
        pool: DbPool,
        master_key: Arc<MasterKey>,
        settings: &Settings,
        count: Arc<RotationCount>,
    ) -> Option<RotationSchedule> {
        settings.signing.rotation_period()?;
        Some(RotationSchedule {
            pool,
            master_key,
            algorithm: settings.tokens.algorithm,
            overlap: verification_window(settings),
            every_days: settings.signing.rotate_every_days,
            check_every: StdDuration::from_millis(settings.signing.rotation_check_interval_ms),
            count,
        })
    }

    /// Checks forever on the current actix (tokio) runtime; errors are logged and retried at
    /// the next check.
    pub fn spawn(self) {
        let schedule = Arc::new(self);
        actix_web::rt::spawn(async move {
            let mut ticker = actix_web::rt::time::interval(schedule.check_every);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                let check = schedule.clone();
                match actix_web::rt::task::spawn_blocking(move || check.check()).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => log::warn!("scheduled signing-key rotation: {e:#}"),
                    Err(e) => log::error!("scheduled signing-key rotation task failed: {e}"),
                }
            }
        });
    }

    /// One check. Blocking.
    fn check(&self) -> anyhow::Result<()> {
        let mut conn = self.pool.get()?;
        let rotation = rotate_if_due(
            &mut conn,
            &self.master_key,
            self.algorithm,
            self.overlap,
            self.every_days,
        )?;
        if let Some(rotation) = rotation {
            self.count.add_one();
            log::info!(
                "scheduled rotation (signing.rotate_every_days = {}): signing key {} is active; \
                 retired {} verifies tokens until {}",
                self.every_days,
                rotation.activated,
                rotation.retired.join(", "),
                rotation.verify_until.format("%Y-%m-%d %H:%M:%S UTC")
            );
        }
        Ok(())
    }
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

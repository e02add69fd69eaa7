//! Keeps a [`TokenValidator`] current from the database: the change feed (revocations,
//! rotations) is polled in the background, so validation itself never reads the database.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::sync::broadcast;

use crate::config::Settings;
use crate::db::changes::{self, StateChangeRow};
use crate::db::{self, DbConnection, DbPool};
use crate::tokens::{
    Change, Keyring, MasterKey, StoredSigningKey, TokenValidator, ValidationParams,
};

const BATCH: i64 = 1000;

pub struct ChangeFeed {
    pool: DbPool,
    validator: TokenValidator,
    master_key: Option<Arc<MasterKey>>,
    last_id: i64,
    housekeeping: Housekeeping,
    /// Who hears of each poll's changes as they are applied (the revocation stream).
    announce: Option<broadcast::Sender<Arc<FeedBatch>>>,
}

/// What one poll of the change feed read: the changes, each with its position in the feed,
/// and the time as of which every earlier change is known.
#[derive(Debug)]
pub struct FeedBatch {
    pub changes: Vec<(i64, Change)>,
    pub as_of: i64,
}

/// How often housekeeping (pruning the feed, expired sessions, old usage counters and
/// webhook history; erasing retired secrets) runs, and what it keeps.
#[derive(Clone, Copy, Debug)]
pub struct Housekeeping {
    pub every: Duration,
    pub usage_for: chrono::Duration,
    pub webhooks_for: chrono::Duration,
}

impl Housekeeping {
    pub fn from_settings(settings: &Settings) -> Housekeeping {
        Housekeeping {
            every: Duration::from_secs(settings.feed.housekeeping_interval_seconds),
            usage_for: chrono::Duration::days(i64::from(settings.usage.retention_days)),
            webhooks_for: chrono::Duration::days(i64::from(settings.webhooks.retention_days)),
        }
    }
}

impl Default for Housekeeping {
    fn default() -> Housekeeping {
        Housekeeping {
            every: Duration::from_secs(600),
            usage_for: chrono::Duration::days(90),
            webhooks_for: chrono::Duration::days(30),
        }
    }
}

impl ChangeFeed {
    /// Loads the keyring and every change still in force, and remembers where the feed ends.
    pub fn bootstrap(
        pool: DbPool,
        params: ValidationParams,
        master_key: Option<Arc<MasterKey>>,
    ) -> anyhow::Result<ChangeFeed> {
        let mut conn = pool.get()?;
        let now = Utc::now();
        // Read the end of the feed first: anything appended meanwhile is applied twice,
        // which is harmless, rather than not at all.
        let last_id = changes::last_id(&mut conn)?;
        let keyring = load_keyring(&mut conn, master_key.as_deref(), now)?;
        let validator = TokenValidator::new(params, keyring);
        let in_force = changes::in_force(&mut conn, now.timestamp())?;
        validator
            .revocations()
            .apply(&to_changes(&in_force), now.timestamp());
        validator.mark_synced(now.timestamp());
        drop(conn);
        Ok(ChangeFeed {
            pool,
            validator,
            master_key,
            last_id,
            housekeeping: Housekeeping::default(),
            announce: None,
        })
    }

    /// Tells `subscribers` of each poll's changes once they are applied here.
    pub fn announce_to(mut self, subscribers: broadcast::Sender<Arc<FeedBatch>>) -> ChangeFeed {
        self.announce = Some(subscribers);
        self
    }

    pub fn with_housekeeping(mut self, housekeeping: Housekeeping) -> ChangeFeed {
        self.housekeeping = housekeeping;
        self
    }

    pub fn validator(&self) -> TokenValidator {
        self.validator.clone()
    }

    /// Reads what was appended since the last poll and applies it. Blocking. The position
    /// only advances past changes that were applied, so a failed keyring reload is retried.
    pub fn poll_once(&mut self) -> anyhow::Result<usize> {
        let mut conn = self.pool.get()?;
        // Read under the feed's read lock: every change not seen took its time after `as_of`.
        let (as_of, rows) = db::write_transaction(&mut conn, |conn| -> anyhow::Result<_> {
            changes::lock_for_reading(conn)?;
            let as_of = Utc::now().timestamp();
            let mut rows = Vec::new();
            loop {
                let after = rows.last().map_or(self.last_id, |r: &StateChangeRow| r.id);
                let batch = changes::since(conn, after, BATCH)?;
                let full = batch.len() as i64 == BATCH;
                rows.extend(batch);
                if !full {
                    break;
                }
            }
            Ok((as_of, rows))
        })?;
        if let Some(last) = rows.last() {
            let last_id = last.id;
            self.apply(&mut conn, &rows)?;
            self.last_id = last_id;
            if let Some(subscribers) = &self.announce {
                // Nobody listening is not an error.
                let _ = subscribers.send(Arc::new(FeedBatch {
                    changes: numbered_changes(&rows),
                    as_of,
                }));
            }
        }
        self.validator.mark_synced(as_of);
        Ok(rows.len())
    }

    fn apply(&self, conn: &mut DbConnection, rows: &[StateChangeRow]) -> anyhow::Result<()> {
        let now = Utc::now();
        if self
            .validator
            .revocations()
            .apply(&to_changes(rows), now.timestamp())
        {
            let keyring = load_keyring(conn, self.master_key.as_deref(), now)?;
            self.validator.replace_keyring(keyring);
            log::info!("signing keys reloaded from the change feed");
        }
        Ok(())
    }

    /// Deletes what stopped mattering. Only an instance that holds the master key (keygate
    /// itself, not a resource server) does housekeeping.
    fn housekeeping(&self) -> anyhow::Result<()> {
        if self.master_key.is_none() {
            return Ok(());
        }
        let mut conn = self.pool.get()?;
        let now = Utc::now();
        changes::prune(&mut conn, now.timestamp())?;
        db::sessions::prune(&mut conn, now.naive_utc())?;
        db::login_failures::prune(&mut conn, (now - chrono::Duration::days(1)).naive_utc())?;
        db::reveals::prune(&mut conn, now.naive_utc())?;
        db::refresh_tokens::prune(&mut conn, now.naive_utc())?;
        db::usage::prune(&mut conn, (now - self.housekeeping.usage_for).naive_utc())?;
        let webhooks = db::webhooks::prune(
            &mut conn,
            (now - self.housekeeping.webhooks_for).naive_utc(),
        )?;
        if webhooks > 0 {
            log::info!("housekeeping deleted {webhooks} webhook events past their retention");
        }
        db::signing_keys::erase_retired_private_keys(&mut conn, now.naive_utc())?;
        Ok(())
    }

    /// Polls forever on the current actix/tokio runtime; errors are logged and retried.
    pub fn spawn(mut self, interval: Duration) -> actix_web::rt::task::JoinHandle<()> {
        actix_web::rt::spawn(async move {
            let mut ticker = actix_web::rt::time::interval(interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let every = (self.housekeeping.every.as_millis() / interval.as_millis().max(1)).max(1);
            let mut polls: u128 = 0;
            loop {
                ticker.tick().await;
                polls += 1;
                let housekeeping = polls.is_multiple_of(every);
                let result = actix_web::rt::task::spawn_blocking(move || {
                    let outcome = self.poll_once();
                    if housekeeping && let Err(e) = self.housekeeping() {
                        log::warn!("housekeeping failed: {e:#}");
                    }
                    (self, outcome)
                })
                .await;
                match result {
                    Ok((feed, outcome)) => {
                        self = feed;
                        if let Err(e) = outcome {
                            log::error!("change feed poll failed (retrying every tick): {e:#}");
                        }
                    }
                    Err(e) => {
                        log::error!("change feed task failed: {e}");
                        return;
                    }
                }
            }
        })
    }
}

/// Loads the keyring: every signing key that may still verify a token at `now`.
pub fn load_keyring(
    conn: &mut DbConnection,
    master: Option<&MasterKey>,
    now: chrono::DateTime<Utc>,
) -> anyhow::Result<Keyring> {
    let rows = db::signing_keys::usable(conn, now.naive_utc())?;
    Keyring::from_stored(
        rows.iter().map(|row| StoredSigningKey {
            kid: &row.kid,
            algorithm: row.algorithm,
            status: row.status,
            public_jwk: &row.public_jwk,
            sealed_private_key: &row.private_key,
            verify_until: row.verify_until.map(|t| t.and_utc().timestamp()),
        }),
        master,
    )
}

/// The changes of `rows` this version knows, each with its position in the feed.
pub fn numbered_changes(rows: &[StateChangeRow]) -> Vec<(i64, Change)> {
    rows.iter()
        .filter_map(|row| {
            Change::from_feed(&row.kind, &row.subject, row.not_before, row.expires_at)
                .map(|change| (row.id, change))
        })
        .collect()
}

fn to_changes(rows: &[StateChangeRow]) -> Vec<Change> {
    rows.iter()
        .filter_map(|row| {
            Change::from_feed(&row.kind, &row.subject, row.not_before, row.expires_at)
        })
        .collect()
}

/// A validator that reads keygate's database (PostgreSQL, or the SQLite file) and follows its
/// change feed, and the pool it reads through. Needs no master key (HS256 tokens excepted).
/// Call inside an actix (tokio) runtime.
pub async fn follow(
    database_url: &str,
    params: ValidationParams,
    poll_interval: Duration,
) -> anyhow::Result<(TokenValidator, DbPool)> {
    let settings = crate::config::DatabaseSettings {
        url: database_url.parse()?,
        pool_size: 2,
        connect_timeout_seconds: 5,
    };
    let feed = actix_web::rt::task::spawn_blocking(move || {
        let pool = db::connect(&settings)?;
        ChangeFeed::bootstrap(pool, params, None)
    })
    .await??;
    let (validator, pool) = (feed.validator(), feed.pool.clone());
    feed.spawn(poll_interval);
    Ok((validator, pool))
}

//! Keeps a [`TokenValidator`] current from the database: the change feed (revocations,
//! rotations) is polled in the background, so validation itself never reads the database.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;

use crate::db::changes::{self, StateChangeRow};
use crate::db::{self, DbConnection, DbPool};
use crate::lifecycle::signing_keys::{erase_expired_secrets, load_keyring};
use crate::tokens::{Change, MasterKey, TokenValidator, ValidationParams};

const BATCH: i64 = 1000;
/// Housekeeping (pruning the feed and expired sessions, erasing retired secrets) every this
/// many polls.
const HOUSEKEEPING_EVERY: u64 = 2400;

pub struct ChangeFeed {
    pool: DbPool,
    validator: TokenValidator,
    master_key: Option<Arc<MasterKey>>,
    last_id: i64,
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
        validator.mark_synced();
        drop(conn);
        Ok(ChangeFeed {
            pool,
            validator,
            master_key,
            last_id,
        })
    }

    pub fn validator(&self) -> TokenValidator {
        self.validator.clone()
    }

    /// Reads what was appended since the last poll and applies it. Blocking. The position
    /// only advances past changes that were applied, so a failed keyring reload is retried.
    pub fn poll_once(&mut self) -> anyhow::Result<usize> {
        let mut conn = self.pool.get()?;
        let mut applied = 0;
        loop {
            let rows = changes::since(&mut conn, self.last_id, BATCH)?;
            let Some(last) = rows.last() else { break };
            let last_id = last.id;
            self.apply(&mut conn, &rows)?;
            self.last_id = last_id;
            applied += rows.len();
            if (rows.len() as i64) < BATCH {
                break;
            }
        }
        self.validator.mark_synced();
        Ok(applied)
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
        erase_expired_secrets(&mut conn, now)?;
        Ok(())
    }

    /// Polls forever on the current actix/tokio runtime; errors are logged and retried.
    pub fn spawn(mut self, interval: Duration) -> actix_web::rt::task::JoinHandle<()> {
        actix_web::rt::spawn(async move {
            let mut ticker = actix_web::rt::time::interval(interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut polls: u64 = 0;
            loop {
                ticker.tick().await;
                polls += 1;
                let housekeeping = polls % HOUSEKEEPING_EVERY == 0;
                let result = actix_web::rt::task::spawn_blocking(move || {
                    let outcome = self.poll_once();
                    if housekeeping {
                        if let Err(e) = self.housekeeping() {
                            log::warn!("housekeeping failed: {e:#}");
                        }
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

fn to_changes(rows: &[StateChangeRow]) -> Vec<Change> {
    rows.iter()
        .filter_map(|row| {
            Change::from_feed(&row.kind, &row.subject, row.not_before, row.expires_at)
        })
        .collect()
}

/// For resource servers that link keygate's library: a validator that reads keygate's
/// database (PostgreSQL, or the SQLite file) and follows its change feed, so revocations
/// reach it as fast as they reach keygate. Needs no master key (HS256 tokens excepted).
/// Call inside an actix (tokio) runtime.
pub async fn connect_validator(
    database_url: &str,
    params: ValidationParams,
    poll_interval: Duration,
) -> anyhow::Result<TokenValidator> {
    let settings = crate::config::DatabaseSettings {
        url: database_url.to_owned(),
        pool_size: 2,
        connect_timeout_seconds: 5,
    };
    let feed = actix_web::rt::task::spawn_blocking(move || {
        let pool = db::connect(&settings)?;
        ChangeFeed::bootstrap(pool, params, None)
    })
    .await??;
    let validator = feed.validator();
    feed.spawn(poll_interval);
    Ok(validator)
}

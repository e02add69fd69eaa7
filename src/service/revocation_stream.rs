//! The revocation stream's source: what a resource server that knows only keygate's URL must
//! hear to refuse revoked tokens (keys cut, single tokens revoked, signing keys changed),
//! read from the change feed. A follower catches up from the database (everything after its
//! last event, or, new or unknown, everything still in force), then hears each of this
//! instance's feed polls as they are applied.

use std::sync::Arc;

use chrono::Utc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, broadcast};

use super::{Caller, Error, Service, policy};
use crate::db::{self, changes};
use crate::domain::ManagementPermission;
use crate::feed::{FeedBatch, numbered_changes};
use crate::tokens::Change;

/// How many of the feed's polls a slow follower may fall behind before it catches up from
/// the database instead.
const BACKLOG: usize = 256;
/// Followers one instance serves at once; more are told to come back (`503`).
const MAX_FOLLOWERS: usize = 1024;
/// Rows read per query while catching up.
const BATCH: i64 = 1000;

/// Where each poll of the change feed is announced, and how many follow it.
pub struct Followers {
    announce: broadcast::Sender<Arc<FeedBatch>>,
    slots: Arc<Semaphore>,
}

impl Default for Followers {
    fn default() -> Followers {
        Followers {
            announce: broadcast::channel(BACKLOG).0,
            slots: Arc::new(Semaphore::new(MAX_FOLLOWERS)),
        }
    }
}

impl Followers {
    /// How many follow the stream on this instance now.
    pub fn count(&self) -> usize {
        MAX_FOLLOWERS - self.slots.available_permits()
    }

    /// What the change feed announces its polls to.
    pub fn announcer(&self) -> broadcast::Sender<Arc<FeedBatch>> {
        self.announce.clone()
    }
}

/// A follower's place: hold it for as long as the stream is open.
pub struct Following {
    pub polls: broadcast::Receiver<Arc<FeedBatch>>,
    pub _slot: OwnedSemaphorePermit,
}

/// What a follower is told while catching up.
#[derive(Debug)]
pub struct CatchUp {
    /// Changes after the follower's position, with theirs.
    pub changes: Vec<(i64, Change)>,
    /// The feed's end when read: the follower's position afterwards.
    pub position: i64,
    /// Every change made before this time (unix seconds) is in `changes` or known to the
    /// follower already.
    pub as_of: i64,
}

/// Starts following the feed for `caller`, who needs `revocations:read` (deployment-wide).
/// Subscribes before catching up, so that nothing written between the two is missed.
pub async fn follow(
    service: &Service,
    caller: &Caller,
    after: Option<i64>,
) -> Result<(Following, CatchUp), Error> {
    may_follow(caller)?;
    let slot = service
        .followers
        .slots
        .clone()
        .try_acquire_owned()
        .map_err(|_| Error::Unavailable {
            retry_after_seconds: 5,
        })?;
    let polls = service.followers.announce.subscribe();
    let caught_up = catch_up(service, after).await?;
    Ok((Following { polls, _slot: slot }, caught_up))
}

/// Whether `caller` may (still) follow the stream.
pub fn may_follow(caller: &Caller) -> Result<(), Error> {
    policy::require(caller, ManagementPermission::RevocationsRead)
}

/// Everything after `after` (a position this feed gave), or everything still in force for a
/// follower without one, or with a position this feed never gave (a database restored or
/// replaced). Rows that were pruned after a position had expired: a follower misses nothing
/// that still matters.
pub async fn catch_up(service: &Service, after: Option<i64>) -> Result<CatchUp, Error> {
    service
        .db(move |conn| {
            db::write_transaction(conn, |conn| -> Result<CatchUp, Error> {
                // As the feed's own poll: every change not read now is made after `as_of`.
                changes::lock_for_reading(conn)?;
                let as_of = Utc::now().timestamp();
                let end = changes::last_id(conn)?;
                let rows = match after.filter(|after| *after <= end) {
                    Some(after) => {
                        let mut rows = Vec::new();
                        loop {
                            let from = rows
                                .last()
                                .map_or(after, |r: &changes::StateChangeRow| r.id);
                            let batch = changes::since(conn, from, BATCH)?;
                            let full = batch.len() as i64 == BATCH;
                            rows.extend(batch);
                            if !full {
                                break rows;
                            }
                        }
                    }
                    None => changes::in_force(conn, as_of)?,
                };
                Ok(CatchUp {
                    changes: followed(numbered_changes(&rows)),
                    position: end,
                    as_of,
                })
            })
        })
        .await
}

/// The changes a follower hears of: not secret rotations, which matter only to keygate's own
/// cache of verified secrets.
pub fn followed(changes: Vec<(i64, Change)>) -> Vec<(i64, Change)> {
    changes
        .into_iter()
        .filter(|(_, change)| !matches!(change, Change::Secrets { .. }))
        .collect()
}

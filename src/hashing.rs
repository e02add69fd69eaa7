//! bcrypt on a bounded budget: at most `threads` verifications run at once (the rest of the
//! cores stay free for validation traffic), at most `max_pending` wait, and an unknown
//! client_id is checked against a dummy hash of the same cost, so timing reveals nothing.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::Semaphore;

use crate::domain::{ClientSecret, random};
use crate::error::ApiError;

pub struct SecretHasher {
    permits: Semaphore,
    waiting: AtomicUsize,
    max_pending: usize,
    dummy_hash: Arc<str>,
}

impl SecretHasher {
    pub fn new(cost: u32, threads: usize, max_pending: usize) -> anyhow::Result<SecretHasher> {
        let threads = if threads == 0 {
            (std::thread::available_parallelism().map_or(1, |n| n.get()) / 2).max(1)
        } else {
            threads
        };
        let dummy_hash = bcrypt::hash(random::base62(40), cost)?;
        Ok(SecretHasher {
            permits: Semaphore::new(threads),
            waiting: AtomicUsize::new(0),
            max_pending: max_pending.max(1),
            dummy_hash: dummy_hash.into(),
        })
    }

    /// Whether `secret` matches `hash`; with no hash, burns the same time and answers false.
    pub async fn verify(
        &self,
        secret: ClientSecret,
        hash: Option<String>,
    ) -> Result<bool, ApiError> {
        if self.waiting.fetch_add(1, Ordering::AcqRel) >= self.max_pending {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            return Err(ApiError::Unavailable {
                retry_after_seconds: 1,
            });
        }
        let permit = self.permits.acquire().await;
        self.waiting.fetch_sub(1, Ordering::AcqRel);
        let _permit = permit.map_err(ApiError::internal)?;
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| self.dummy_hash.to_string());
        let matched =
            actix_web::web::block(move || bcrypt::verify(secret.expose(), &hash).unwrap_or(false))
                .await
                .map_err(ApiError::internal)?;
        Ok(known && matched)
    }
}

//! bcrypt on a bounded budget: at most `threads` verifications run at once (the rest of the
//! cores stay free for validation traffic), at most `max_pending` wait, and an unknown
//! client_id (or email) is checked against a dummy hash of the same cost, so timing reveals
//! nothing. A request that is cancelled while it waits or hashes gives its place back only
//! when the hashing it started is over.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use tokio::sync::Semaphore;

use crate::domain::{ClientSecret, random};
use crate::error::ApiError;

pub struct SecretHasher {
    permits: Arc<Semaphore>,
    waiting: AtomicUsize,
    max_pending: usize,
    dummy_hash: Arc<str>,
    /// A dummy at the password cost, made on first use (most instances never see a login).
    dummy_password_hash: OnceLock<Arc<str>>,
    password_cost: u32,
}

/// Holds a place in the queue; dropping it (also by cancellation) gives the place back.
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl SecretHasher {
    pub fn new(
        cost: u32,
        password_cost: u32,
        threads: usize,
        max_pending: usize,
    ) -> anyhow::Result<SecretHasher> {
        let threads = if threads == 0 {
            (std::thread::available_parallelism().map_or(1, |n| n.get()) / 2).max(1)
        } else {
            threads
        };
        let dummy_hash = bcrypt::hash(random::base62(40), cost)?;
        Ok(SecretHasher {
            permits: Arc::new(Semaphore::new(threads)),
            waiting: AtomicUsize::new(0),
            max_pending: max_pending.max(1),
            dummy_hash: dummy_hash.into(),
            dummy_password_hash: OnceLock::new(),
            password_cost,
        })
    }

    /// Whether `secret` matches `hash`; with no hash, burns the same time and answers false.
    /// `admit` runs once a hashing thread is free, right before hashing: a rate limit checked
    /// there also stops requests that queued before it tripped.
    pub async fn verify(
        &self,
        secret: ClientSecret,
        hash: Option<String>,
        admit: impl FnOnce() -> Result<(), ApiError>,
    ) -> Result<bool, ApiError> {
        let dummy = self.dummy_hash.clone();
        self.verify_with(secret.expose().to_owned(), hash, dummy, admit)
            .await
    }

    /// The same for an operator's password, against a dummy of the password cost.
    pub async fn verify_password(
        &self,
        password: &str,
        hash: Option<String>,
    ) -> Result<bool, ApiError> {
        let password_cost = self.password_cost;
        let dummy = match self.dummy_password_hash.get() {
            Some(dummy) => dummy.clone(),
            None => {
                let made =
                    actix_web::web::block(move || bcrypt::hash(random::base62(24), password_cost))
                        .await
                        .map_err(ApiError::internal)?
                        .map_err(ApiError::internal)?;
                self.dummy_password_hash.get_or_init(|| made.into()).clone()
            }
        };
        self.verify_with(password.to_owned(), hash, dummy, || Ok(()))
            .await
    }

    async fn verify_with(
        &self,
        candidate: String,
        hash: Option<String>,
        dummy: Arc<str>,
        admit: impl FnOnce() -> Result<(), ApiError>,
    ) -> Result<bool, ApiError> {
        let waiting = Waiting(&self.waiting);
        if self.waiting.fetch_add(1, Ordering::AcqRel) >= self.max_pending {
            return Err(ApiError::Unavailable {
                retry_after_seconds: 1,
            });
        }
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(ApiError::internal)?;
        drop(waiting);
        admit()?;
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| dummy.to_string());
        // The permit moves into the blocking task: if this request is cancelled, the thread
        // stays counted until its bcrypt is done.
        let matched = actix_web::web::block(move || {
            let _permit = permit;
            bcrypt::verify(candidate.as_bytes(), &hash).unwrap_or(false)
        })
        .await
        .map_err(ApiError::internal)?;
        Ok(known && matched)
    }

    /// Requests waiting for a hashing thread now.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Environment;

    #[actix_rt::test]
    async fn cancelled_requests_give_their_place_back() {
        let hasher = SecretHasher::new(4, 4, 1, 2).unwrap();
        for _ in 0..5 {
            let secret = ClientSecret::generate(Environment::Live);
            let future = hasher.verify(secret, None, || Ok(()));
            // Poll once and drop: the request is cancelled while it queues or hashes.
            let _ = futures_util::poll!(Box::pin(future));
        }
        assert_eq!(hasher.waiting(), 0);
        let secret = ClientSecret::generate(Environment::Live);
        let hash = bcrypt::hash(secret.expose(), 4).unwrap();
        assert!(hasher.verify(secret, Some(hash), || Ok(())).await.unwrap());
    }

    #[actix_rt::test]
    async fn admission_is_checked_once_a_thread_is_free() {
        let hasher = SecretHasher::new(4, 4, 1, 2).unwrap();
        let secret = ClientSecret::generate(Environment::Live);
        let refused = hasher
            .verify(secret, None, || {
                Err(ApiError::RateLimited {
                    retry_after_seconds: 1,
                })
            })
            .await;
        assert!(matches!(refused, Err(ApiError::RateLimited { .. })));
    }
}

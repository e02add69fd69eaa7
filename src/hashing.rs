//! bcrypt on bounded budgets: at most `threads` hashes run at once (the other cores stay free
//! for validation traffic), at most `max_pending` wait, and an unknown client_id (or email) is
//! checked against a dummy hash of the same cost, so timing reveals nothing. Operators'
//! passwords (the slow hash) have a budget of their own, so log-ins and token requests never
//! take each other's threads. A request that is cancelled while it waits or hashes gives its
//! place back only when the hashing it started is over. Every bcrypt keygate runs goes through
//! here, and none holds a database connection.
//!
//! Each budget hashes on threads of its own that run at the lowest scheduling priority (nice
//! 19 on Unix): bcrypt takes whatever CPU the request workers leave, so validating tokens,
//! which every call to a protected API does, keeps its speed while cold clients saturate
//! bcrypt. bcrypt still gets every idle cycle, and a small share when there are none.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};

use prometheus::IntCounter;
use tokio::sync::Semaphore;

use crate::domain::{ClientSecret, Password, random};

/// Why a hash was not computed.
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// Too many requests already wait for this budget.
    #[error("too many requests wait for a hashing thread")]
    Busy,
    #[error("hashing failed")]
    Failed(#[source] anyhow::Error),
}

/// Work for a hashing thread.
type Job = Box<dyn FnOnce() + Send>;

/// A budget's own threads, at the lowest priority; they stop when the budget is dropped.
struct Threads {
    jobs: mpsc::Sender<Job>,
}

impl Threads {
    fn start(count: usize, name: &str) -> Threads {
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for n in 0..count {
            let queue = queue.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("{name}-{n}"))
                .spawn(move || {
                    lowest_priority();
                    loop {
                        // The lock is released as soon as a job is taken.
                        let job = queue
                            .lock()
                            .map_err(drop)
                            .and_then(|q| q.recv().map_err(drop));
                        let Ok(job) = job else { break };
                        // A panicking job drops its answer's sender: its caller gets an error,
                        // and the thread goes on.
                        let _ = std::panic::catch_unwind(AssertUnwindSafe(job));
                    }
                });
            if let Err(e) = spawned {
                log::error!("could not start a hashing thread: {e}");
            }
        }
        Threads { jobs }
    }

    /// `work`'s result, computed on one of these threads.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, HashError> {
        let (answer, answered) = tokio::sync::oneshot::channel();
        self.jobs
            .send(Box::new(move || {
                let _ = answer.send(work());
            }))
            .map_err(|_| HashError::Failed(anyhow::anyhow!("no hashing thread is running")))?;
        answered
            .await
            .map_err(|_| HashError::Failed(anyhow::anyhow!("the hashing thread failed")))
    }
}

/// Lowers the calling thread to nice 19 (on Linux, a thread's own setting).
fn lowest_priority() {
    #[cfg(unix)]
    if let Err(e) = rustix::process::nice(19) {
        log::warn!("bcrypt runs at normal priority: {e}");
    }
}

/// One budget: its threads, its queue, and the cost of the hashes it makes.
struct Budget {
    threads: Threads,
    permits: Arc<Semaphore>,
    waiting: AtomicUsize,
    max_pending: usize,
    cost: u32,
    /// A hash of a random value at `cost`, made on first use.
    dummy: OnceLock<Arc<str>>,
}

/// Holds a place in the queue; dropping it (also by cancellation) gives the place back.
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Budget {
    fn new(name: &str, cost: u32, threads: usize, max_pending: usize) -> Budget {
        Budget {
            threads: Threads::start(threads.max(1), name),
            permits: Arc::new(Semaphore::new(threads.max(1))),
            waiting: AtomicUsize::new(0),
            max_pending: max_pending.max(1),
            cost,
            dummy: OnceLock::new(),
        }
    }

    /// Runs `work` on a blocking thread once this budget has a thread free; `admit` runs right
    /// before (a rate limit checked there also stops requests that queued before it tripped).
    async fn run<T, E>(
        &self,
        admit: impl FnOnce() -> Result<(), E>,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<HashError>,
    {
        let waiting = Waiting(&self.waiting);
        if self.waiting.fetch_add(1, Ordering::AcqRel) >= self.max_pending {
            return Err(HashError::Busy.into());
        }
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| HashError::Failed(e.into()))?;
        drop(waiting);
        admit()?;
        // The permit moves into the job: if this request is cancelled, the thread stays
        // counted until its bcrypt is done.
        let done = self.threads.run(move || {
            let _permit = permit;
            work()
        });
        Ok(done.await?)
    }

    async fn dummy(&self) -> Result<Arc<str>, HashError> {
        if let Some(dummy) = self.dummy.get() {
            return Ok(dummy.clone());
        }
        let cost = self.cost;
        let made = self
            .run(
                || Ok::<(), HashError>(()),
                move || bcrypt::hash(random::base62(40), cost),
            )
            .await?
            .map_err(|e| HashError::Failed(e.into()))?;
        Ok(self.dummy.get_or_init(|| made.into()).clone())
    }

    async fn hash(&self, value: String) -> Result<String, HashError> {
        let cost = self.cost;
        self.run(
            || Ok::<(), HashError>(()),
            move || bcrypt::hash(value, cost),
        )
        .await?
        .map_err(|e| HashError::Failed(e.into()))
    }

    /// Whether `candidate` matches `hash`; with no hash, burns the same time and answers
    /// false.
    async fn verify<E: From<HashError>>(
        &self,
        candidate: String,
        hash: Option<String>,
        admit: impl FnOnce() -> Result<(), E>,
    ) -> Result<bool, E> {
        let dummy = self.dummy().await?;
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| dummy.to_string());
        let matched = self
            .run(admit, move || {
                bcrypt::verify(candidate.as_bytes(), &hash).unwrap_or(false)
            })
            .await?;
        Ok(known && matched)
    }
}

pub struct SecretHasher {
    secrets: Budget,
    passwords: Budget,
    /// `keygate_secret_checks_total`: client secrets checked against their bcrypt hash (or
    /// the dummy one), so operators and benchmarks see what token requests cost (unregistered:
    /// keygate's `/metrics` registers it).
    pub secret_checks: IntCounter,
}

/// The sizes of the two budgets.
pub struct HashingLimits {
    pub secret_cost: u32,
    pub password_cost: u32,
    /// 0: half the cores, at least one.
    pub threads: usize,
    pub max_pending: usize,
    pub login_threads: usize,
    pub max_pending_logins: usize,
}

impl SecretHasher {
    pub fn new(limits: &HashingLimits) -> SecretHasher {
        let threads = if limits.threads == 0 {
            (std::thread::available_parallelism().map_or(1, |n| n.get()) / 2).max(1)
        } else {
            limits.threads
        };
        SecretHasher {
            secrets: Budget::new("bcrypt", limits.secret_cost, threads, limits.max_pending),
            passwords: Budget::new(
                "bcrypt-login",
                limits.password_cost,
                limits.login_threads,
                limits.max_pending_logins,
            ),
            secret_checks: IntCounter::new(
                "keygate_secret_checks_total",
                "Client secrets checked with bcrypt (token requests the verified-secret cache did not answer)",
            )
            .expect("a valid metric"),
        }
    }

    /// Whether `secret` matches `hash` (see [`Budget::verify`]).
    pub async fn verify_secret<E: From<HashError>>(
        &self,
        secret: &ClientSecret,
        hash: Option<String>,
        admit: impl FnOnce() -> Result<(), E>,
    ) -> Result<bool, E> {
        let checked = self.secrets.verify(secret.expose().to_owned(), hash, || {
            admit()?;
            self.secret_checks.inc();
            Ok(())
        });
        checked.await
    }

    /// The same for an operator's password, on the log-in budget.
    pub async fn verify_password(
        &self,
        password: &str,
        hash: Option<String>,
    ) -> Result<bool, HashError> {
        self.passwords
            .verify(password.to_owned(), hash, || Ok::<(), HashError>(()))
            .await
    }

    /// The bcrypt hash a new secret is stored as.
    pub async fn hash_secret(&self, secret: &ClientSecret) -> Result<String, HashError> {
        self.secrets.hash(secret.expose().to_owned()).await
    }

    /// The bcrypt hash a new password is stored as.
    pub async fn hash_password(&self, password: &Password) -> Result<String, HashError> {
        self.passwords.hash(password.expose().to_owned()).await
    }

    /// Token requests waiting for a hashing thread now.
    pub fn waiting(&self) -> usize {
        self.secrets.waiting.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Environment;

    fn hasher(threads: usize, max_pending: usize) -> SecretHasher {
        SecretHasher::new(&HashingLimits {
            secret_cost: 4,
            password_cost: 4,
            threads,
            max_pending,
            login_threads: 1,
            max_pending_logins: 2,
        })
    }

    #[cfg(target_os = "linux")]
    #[actix_rt::test]
    async fn bcrypt_runs_on_threads_of_its_own_at_the_lowest_priority() {
        let hasher = hasher(1, 2);
        let (name, nice) = hasher
            .secrets
            .threads
            .run(|| {
                let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
                // After the command's closing parenthesis: the state (field 3) .. nice (19).
                let fields = stat.rsplit_once(')').unwrap().1;
                let nice: i32 = fields.split_whitespace().nth(16).unwrap().parse().unwrap();
                (std::thread::current().name().map(str::to_owned), nice)
            })
            .await
            .unwrap();
        assert_eq!(name.as_deref(), Some("bcrypt-0"));
        assert_eq!(nice, 19);
    }

    #[actix_rt::test]
    async fn cancelled_requests_give_their_place_back() {
        let hasher = hasher(1, 2);
        for _ in 0..5 {
            let secret = ClientSecret::generate(Environment::Live);
            let future = hasher.verify_secret(&secret, None, || Ok::<(), HashError>(()));
            // Poll once and drop: the request is cancelled while it queues or hashes.
            let _ = futures_util::poll!(Box::pin(future));
        }
        assert_eq!(hasher.waiting(), 0);
        let secret = ClientSecret::generate(Environment::Live);
        let hash = hasher.hash_secret(&secret).await.unwrap();
        assert!(
            hasher
                .verify_secret(&secret, Some(hash), || Ok::<(), HashError>(()))
                .await
                .unwrap()
        );
    }

    #[actix_rt::test]
    async fn admission_is_checked_once_a_thread_is_free() {
        let hasher = hasher(1, 2);
        let secret = ClientSecret::generate(Environment::Live);
        let refused = hasher
            .verify_secret(&secret, None, || Err(HashError::Busy))
            .await;
        assert!(matches!(refused, Err(HashError::Busy)));
    }

    #[actix_rt::test]
    async fn token_requests_are_served_while_log_ins_hold_every_password_thread() {
        let hasher = hasher(1, 2);
        let secret = ClientSecret::generate(Environment::Live);
        let hash = hasher.hash_secret(&secret).await.unwrap();
        // Every log-in thread is busy (and its one waiting place taken).
        let _busy = hasher
            .passwords
            .permits
            .clone()
            .acquire_owned()
            .await
            .unwrap();
        let queued = hasher.verify_password("a password of twelve", None);
        let _ = futures_util::poll!(Box::pin(queued));
        let verified = tokio::time::timeout(
            std::time::Duration::from_secs(30),
            hasher.verify_secret(&secret, Some(hash), || Ok::<(), HashError>(())),
        )
        .await
        .expect("a token request does not wait for log-ins");
        assert!(verified.unwrap());
    }

    #[actix_rt::test]
    async fn passwords_hash_and_verify_on_their_own_budget() {
        let hasher = hasher(1, 2);
        let password = Password::parse("correct horse battery staple").unwrap();
        let hash = hasher.hash_password(&password).await.unwrap();
        assert!(
            hasher
                .verify_password(password.expose(), Some(hash.clone()))
                .await
                .unwrap()
        );
        assert!(
            !hasher
                .verify_password("wrong password!", Some(hash))
                .await
                .unwrap()
        );
        assert!(
            !hasher
                .verify_password(password.expose(), None)
                .await
                .unwrap()
        );
    }
}

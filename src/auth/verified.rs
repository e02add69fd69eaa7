//! Secrets verified recently, so that a client asking for tokens again (every 15 minutes, or
//! far more often) costs no bcrypt and no database read. Entries are keyed by an HMAC of
//! client_id and secret under a key that exists only in this process's memory, so the cache
//! holds nothing that would let anyone recover or test a secret. An entry is only used while
//! young (`cache.verified_secret_seconds`), before its secret's grace period and its key's
//! expiry, and while the change feed says nothing changed about its key since it was made.
//!
//! Verifications of one fingerprint that are in flight at the same time share one run
//! ([`InFlight`]): a fleet of workers starting with the same credentials costs one bcrypt, and
//! a wrong secret, whose fingerprint differs, shares nothing with a right one.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use aws_lc_rs::hmac;
use chrono::{DateTime, Utc};
use prometheus::{IntCounter, IntCounterVec, Opts};
use quick_cache::sync::Cache;

use crate::domain::{Environment, ScopeSet, random};
use crate::tokens::Revocations;

/// What a verified secret authenticates: the key as it stood at verification.
#[derive(Clone, Debug)]
pub struct VerifiedKey {
    pub client_id: String,
    pub organization_id: i64,
    pub organization: String,
    pub environment: Environment,
    /// The key's scopes, narrowed by its creator's permissions.
    pub scopes: ScopeSet,
    pub key_expires_at: Option<DateTime<Utc>>,
    /// The end of the secret's grace period, after a rotation.
    pub secret_valid_until: Option<DateTime<Utc>>,
    /// Only traded for tokens: never accepted as a bearer credential itself.
    pub token_only: bool,
    /// Gets a refresh token beside each access token.
    pub refresh_tokens: bool,
    /// Unix seconds.
    pub verified_at: i64,
}

pub type Fingerprint = [u8; 32];

pub struct VerifiedSecrets {
    cache: Option<Cache<Fingerprint, Arc<VerifiedKey>>>,
    mac: hmac::Key,
    max_age_seconds: i64,
    /// `keygate_verified_secret_cache_total{result}`: `hit` or `miss` (unregistered: keygate's
    /// `/metrics` registers it).
    pub lookups: IntCounterVec,
    hit: IntCounter,
    miss: IntCounter,
}

impl VerifiedSecrets {
    /// `capacity` 0 or `max_age_seconds` 0 turn the cache off.
    pub fn new(capacity: usize, max_age_seconds: i64) -> VerifiedSecrets {
        let mut key = [0u8; 32];
        random::fill(&mut key);
        let lookups = IntCounterVec::new(
            Opts::new(
                "keygate_verified_secret_cache_total",
                "Lookups of client secrets verified before, by result (a miss costs a bcrypt)",
            ),
            &["result"],
        )
        .expect("a valid metric");
        VerifiedSecrets {
            cache: (capacity > 0 && max_age_seconds > 0).then(|| Cache::new(capacity)),
            mac: hmac::Key::new(hmac::HMAC_SHA256, &key),
            max_age_seconds,
            hit: lookups.with_label_values(&["hit"]),
            miss: lookups.with_label_values(&["miss"]),
            lookups,
        }
    }

    pub fn fingerprint(&self, client_id: &str, secret: &str) -> Fingerprint {
        let mut context = hmac::Context::with_key(&self.mac);
        context.update(client_id.as_bytes());
        context.update(&[0]);
        context.update(secret.as_bytes());
        let mut out = [0u8; 32];
        out.copy_from_slice(context.sign().as_ref());
        out
    }

    /// The verified key, if an entry is still good at `now`.
    pub fn get(
        &self,
        fingerprint: &Fingerprint,
        revocations: &Revocations,
        now: DateTime<Utc>,
    ) -> Option<Arc<VerifiedKey>> {
        let found = self.lookup(fingerprint, revocations, now);
        match found {
            Some(_) => self.hit.inc(),
            None => self.miss.inc(),
        }
        found
    }

    /// Whether `entry` may still answer at `now`, by its age and its secret's and key's ends.
    fn is_current(&self, entry: &VerifiedKey, now: DateTime<Utc>) -> bool {
        now.timestamp() - entry.verified_at < self.max_age_seconds
            && entry.secret_valid_until.is_none_or(|t| t > now)
            && entry.key_expires_at.is_none_or(|t| t > now)
    }

    /// Drops every entry that could no longer answer at `now`. The cache only evicts when it
    /// is full, so without this an instance would hold every client seen until `capacity`
    /// entries; with it, only those verified within `cache.verified_secret_seconds`.
    pub fn forget_stale(&self, now: DateTime<Utc>) {
        if let Some(cache) = &self.cache {
            cache.retain(|_, entry| self.is_current(entry, now));
        }
    }

    fn lookup(
        &self,
        fingerprint: &Fingerprint,
        revocations: &Revocations,
        now: DateTime<Utc>,
    ) -> Option<Arc<VerifiedKey>> {
        let cache = self.cache.as_ref()?;
        let entry = cache.get(fingerprint)?;
        let good = self.is_current(&entry, now)
            && !revocations.credentials_changed_since(&entry.client_id, entry.verified_at);
        if good {
            Some(entry)
        } else {
            cache.remove(fingerprint);
            None
        }
    }

    pub fn insert(&self, fingerprint: Fingerprint, key: Arc<VerifiedKey>) {
        if let Some(cache) = &self.cache {
            cache.insert(fingerprint, key);
        }
    }

    pub fn len(&self) -> usize {
        self.cache.as_ref().map_or(0, Cache::len)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Runs of one fingerprint's verification that are under way: callers of one fingerprint
/// that overlap share the first one's result. A run ends with its caller: when that caller is
/// cancelled, one of those waiting runs the work in its place.
pub struct InFlight<V> {
    runs: Mutex<HashMap<Fingerprint, Arc<tokio::sync::OnceCell<V>>>>,
}

impl<V> Default for InFlight<V> {
    fn default() -> Self {
        InFlight {
            runs: Mutex::new(HashMap::new()),
        }
    }
}

impl<V: Clone> InFlight<V> {
    /// `work`'s result, or that of a run of the same fingerprint already under way.
    pub async fn run<F, Fut>(&self, fingerprint: Fingerprint, work: F) -> V
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = V>,
    {
        let run = Arc::clone(
            self.runs
                .lock()
                .expect("the in-flight map is never poisoned")
                .entry(fingerprint)
                .or_default(),
        );
        let leave = Leave {
            runs: &self.runs,
            fingerprint,
            run,
        };
        leave.run.get_or_init(work).await.clone()
    }

    /// Fingerprints with a run under way (or waited for).
    pub fn len(&self) -> usize {
        self.runs.lock().map_or(0, |runs| runs.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A caller's part in a run: when the run is over (or nobody else waits for it), the map
/// forgets it, so that the next caller verifies afresh.
struct Leave<'a, V> {
    runs: &'a Mutex<HashMap<Fingerprint, Arc<tokio::sync::OnceCell<V>>>>,
    fingerprint: Fingerprint,
    run: Arc<tokio::sync::OnceCell<V>>,
}

impl<V> Drop for Leave<'_, V> {
    fn drop(&mut self) {
        let Ok(mut runs) = self.runs.lock() else {
            return;
        };
        let ours = runs
            .get(&self.fingerprint)
            .is_some_and(|run| Arc::ptr_eq(run, &self.run));
        // Held by the map and by this caller only: nobody waits for it any more.
        let abandoned = Arc::strong_count(&self.run) == 2;
        if ours && (self.run.initialized() || abandoned) {
            runs.remove(&self.fingerprint);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokens::Change;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn entry(client_id: &str, verified_at: i64) -> Arc<VerifiedKey> {
        Arc::new(VerifiedKey {
            client_id: client_id.into(),
            organization_id: 1,
            organization: "default".into(),
            environment: Environment::Live,
            scopes: ScopeSet::default(),
            key_expires_at: None,
            secret_valid_until: None,
            token_only: false,
            refresh_tokens: false,
            verified_at,
        })
    }

    #[test]
    fn stale_entries_are_forgotten_before_the_cache_is_full() {
        let cache = VerifiedSecrets::new(1000, 300);
        let now = Utc::now();
        let fresh = cache.fingerprint("fresh", "s");
        let old = cache.fingerprint("old", "s");
        cache.insert(fresh, entry("fresh", now.timestamp() - 10));
        cache.insert(old, entry("old", now.timestamp() - 300));
        cache.forget_stale(now);
        assert_eq!(cache.len(), 1);
        let revocations = Revocations::default();
        assert!(cache.get(&fresh, &revocations, now).is_some());
        assert!(cache.get(&old, &revocations, now).is_none());
    }

    #[test]
    fn fingerprints_bind_the_client_and_the_secret() {
        let cache = VerifiedSecrets::new(10, 300);
        assert_ne!(cache.fingerprint("a", "s"), cache.fingerprint("b", "s"));
        assert_ne!(cache.fingerprint("a", "s1"), cache.fingerprint("a", "s2"));
        assert_ne!(cache.fingerprint("ab", "c"), cache.fingerprint("a", "bc"));
        let other_process = VerifiedSecrets::new(10, 300);
        assert_ne!(
            cache.fingerprint("a", "s"),
            other_process.fingerprint("a", "s")
        );
    }

    #[test]
    fn entries_are_forgotten_when_old_or_when_the_feed_says_the_key_changed() {
        let cache = VerifiedSecrets::new(10, 300);
        let revocations = Revocations::default();
        let now = Utc::now();
        let fp = cache.fingerprint("a", "s");
        cache.insert(fp, entry("a", now.timestamp()));
        assert!(cache.get(&fp, &revocations, now).is_some());
        assert!(
            cache
                .get(&fp, &revocations, now + chrono::Duration::seconds(301))
                .is_none(),
            "too old"
        );

        cache.insert(fp, entry("a", now.timestamp()));
        revocations.apply(
            &[Change::Secrets {
                client_id: "a".into(),
                changed_at: now.timestamp(),
                expires_at: now.timestamp() + 900,
            }],
            now.timestamp(),
        );
        assert!(cache.get(&fp, &revocations, now).is_none(), "rotated");
        assert!(cache.is_empty());
    }

    #[test]
    fn a_secret_past_its_grace_period_is_not_served() {
        let cache = VerifiedSecrets::new(10, 300);
        let now = Utc::now();
        let fp = cache.fingerprint("a", "s");
        let mut verified = (*entry("a", now.timestamp())).clone();
        verified.secret_valid_until = Some(now + chrono::Duration::seconds(5));
        cache.insert(fp, Arc::new(verified));
        let revocations = Revocations::default();
        assert!(cache.get(&fp, &revocations, now).is_some());
        assert!(
            cache
                .get(&fp, &revocations, now + chrono::Duration::seconds(6))
                .is_none()
        );
    }

    #[test]
    fn a_disabled_cache_remembers_nothing() {
        let cache = VerifiedSecrets::new(0, 300);
        let fp = cache.fingerprint("a", "s");
        cache.insert(fp, entry("a", Utc::now().timestamp()));
        assert!(
            cache
                .get(&fp, &Revocations::default(), Utc::now())
                .is_none()
        );
    }

    #[actix_rt::test]
    async fn callers_of_one_fingerprint_share_one_run_and_others_run_their_own() {
        let flights = InFlight::<u32>::default();
        let runs = AtomicUsize::new(0);
        let (open, gate) = tokio::sync::watch::channel(false);
        let call = |fingerprint: Fingerprint, value: u32| {
            let mut gate = gate.clone();
            let runs = &runs;
            flights.run(fingerprint, move || async move {
                runs.fetch_add(1, Ordering::SeqCst);
                gate.wait_for(|open| *open).await.unwrap();
                value
            })
        };
        let same = futures_util::future::join_all((0..16).map(|i| call([1; 32], i)));
        let other = call([2; 32], 99);
        let opener = async {
            tokio::task::yield_now().await;
            open.send(true).unwrap();
        };
        let (same, other, ()) = tokio::join!(same, other, opener);
        assert!(same.iter().all(|v| *v == same[0]), "{same:?}");
        assert_eq!(other, 99);
        assert_eq!(runs.load(Ordering::SeqCst), 2, "one run per fingerprint");
        assert!(flights.is_empty(), "finished runs are forgotten");

        // A later caller verifies afresh.
        assert_eq!(flights.run([1; 32], || async { 7 }).await, 7);
    }

    #[actix_rt::test]
    async fn a_cancelled_runner_hands_the_work_to_a_waiting_caller() {
        let flights = InFlight::<u8>::default();
        let mut first = Box::pin(flights.run([3; 32], std::future::pending::<u8>));
        assert!(futures_util::poll!(first.as_mut()).is_pending());
        let mut second = Box::pin(flights.run([3; 32], || async { 5 }));
        assert!(futures_util::poll!(second.as_mut()).is_pending());
        drop(first);
        assert_eq!(second.await, 5);
        assert!(flights.is_empty());

        // A run nobody waits for any more is forgotten too.
        let mut alone = Box::pin(flights.run([4; 32], std::future::pending::<u8>));
        assert!(futures_util::poll!(alone.as_mut()).is_pending());
        assert_eq!(flights.len(), 1);
        drop(alone);
        assert!(flights.is_empty());
    }
}

//! Brute-force protection for client authentication (RFC 6749 sections 2.3.1 and 10.10):
//! failures are counted per source address and per (address, client_id) with governor's
//! GCRA; once a budget is spent, that source (or that source for that client) is answered 429
//! with `Retry-After` until the budget refills. Counting per address keeps an attacker from
//! locking a client out for everyone else.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::config::RateLimitSettings;
use crate::error::ApiError;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Subject {
    Address(IpAddr),
    Client(IpAddr, String),
}

pub struct FailureLimiter {
    enabled: bool,
    per_address: DefaultKeyedRateLimiter<IpAddr>,
    per_client: DefaultKeyedRateLimiter<(IpAddr, String)>,
    blocked: Mutex<HashMap<Subject, Instant>>,
}

impl FailureLimiter {
    pub fn new(settings: &RateLimitSettings) -> FailureLimiter {
        let per_minute = NonZeroU32::new(settings.failures_per_minute.max(1)).expect("non-zero");
        let burst = NonZeroU32::new(settings.failure_burst.max(1)).expect("non-zero");
        let quota = Quota::per_minute(per_minute).allow_burst(burst);
        FailureLimiter {
            enabled: settings.enabled,
            per_address: RateLimiter::keyed(quota),
            per_client: RateLimiter::keyed(quota),
            blocked: Mutex::new(HashMap::new()),
        }
    }

    /// Refuses a request from a source that has spent its failure budget.
    pub fn check(&self, address: IpAddr, client_id: &str) -> Result<(), ApiError> {
        if !self.enabled {
            return Ok(());
        }
        let now = Instant::now();
        let blocked = self.blocked.lock().expect("limiter lock");
        let until = [
            Subject::Address(address),
            Subject::Client(address, client_id.to_owned()),
        ]
        .iter()
        .filter_map(|s| blocked.get(s))
        .filter(|until| **until > now)
        .max()
        .copied();
        match until {
            Some(until) => Err(ApiError::RateLimited {
                retry_after_seconds: until.duration_since(now).as_secs().max(1),
            }),
            None => Ok(()),
        }
    }

    /// Counts a failed authentication.
    pub fn record_failure(&self, address: IpAddr, client_id: &str) {
        if !self.enabled {
            return;
        }
        let clock = DefaultClock::default();
        let mut refused = Vec::new();
        if let Err(wait) = self.per_address.check_key(&address) {
            refused.push((Subject::Address(address), wait.wait_time_from(clock.now())));
        }
        let pair = (address, client_id.to_owned());
        if let Err(wait) = self.per_client.check_key(&pair) {
            refused.push((
                Subject::Client(address, client_id.to_owned()),
                wait.wait_time_from(clock.now()),
            ));
        }
        if refused.is_empty() {
            return;
        }
        let now = Instant::now();
        let mut blocked = self.blocked.lock().expect("limiter lock");
        if blocked.len() > 100_000 {
            blocked.retain(|_, until| *until > now);
        }
        for (subject, wait) in refused {
            blocked.insert(subject, now + wait.max(Duration::from_secs(1)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(burst: u32) -> FailureLimiter {
        FailureLimiter::new(&RateLimitSettings {
            enabled: true,
            failures_per_minute: 1,
            failure_burst: burst,
        })
    }

    #[test]
    fn blocks_a_source_once_its_failures_exceed_the_burst() {
        let limiter = limiter(3);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..3 {
            limiter.record_failure(ip, "c");
            assert!(limiter.check(ip, "c").is_ok());
        }
        limiter.record_failure(ip, "c");
        match limiter.check(ip, "c") {
            Err(ApiError::RateLimited {
                retry_after_seconds,
            }) => assert!(retry_after_seconds >= 1),
            other => panic!("expected 429, got {other:?}"),
        }
    }

    #[test]
    fn other_sources_are_not_locked_out() {
        let limiter = limiter(1);
        let attacker: IpAddr = "192.0.2.1".parse().unwrap();
        let victim: IpAddr = "192.0.2.2".parse().unwrap();
        limiter.record_failure(attacker, "c");
        limiter.record_failure(attacker, "c");
        assert!(limiter.check(attacker, "c").is_err());
        assert!(limiter.check(victim, "c").is_ok());
    }

    #[test]
    fn a_disabled_limiter_never_refuses() {
        let limiter = FailureLimiter::new(&RateLimitSettings {
            enabled: false,
            failures_per_minute: 1,
            failure_burst: 1,
        });
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..10 {
            limiter.record_failure(ip, "c");
        }
        assert!(limiter.check(ip, "c").is_ok());
    }
}

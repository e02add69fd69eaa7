//! Brute-force protection for client authentication and console logins (RFC 6749 sections
//! 2.3.1 and 10.10): failures are counted per source address and per (address, client) with
//! governor's GCRA; once a budget is spent, that source (or that source for that client) is
//! answered 429 with `Retry-After` until the budget refills. Counting per address keeps an
//! attacker from locking a client out for everyone else. IPv6 sources count per /64 (what one
//! subscriber gets). Log-ins count every attempt, before the password is checked, so that
//! guesses sent at once cannot all pass before the first failure is counted.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::config::RateLimitSettings;

/// A source that has spent its budget, and how long until it may try again.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("too many attempts; retry after {0} s")]
pub struct RetryAfter(pub u64);

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Subject {
    Address(IpAddr),
    Client(IpAddr, String),
}

pub struct FailureLimiter {
    enabled: bool,
    /// A budget of one failure: every failure blocks its source for one refill.
    single: Option<Duration>,
    /// Attempts counted before they are judged (`admit`), `failure_burst` at once.
    attempts: DefaultKeyedRateLimiter<IpAddr>,
    per_address: DefaultKeyedRateLimiter<IpAddr>,
    per_client: DefaultKeyedRateLimiter<(IpAddr, String)>,
    blocked: Mutex<HashMap<Subject, Instant>>,
    failures: AtomicU64,
}

/// The key a source counts under: IPv6 addresses by their /64.
pub fn source_key(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) if v6.to_ipv4_mapped().is_none() => {
            let segments = v6.segments();
            IpAddr::V6(Ipv6Addr::new(
                segments[0],
                segments[1],
                segments[2],
                segments[3],
                0,
                0,
                0,
                0,
            ))
        }
        IpAddr::V6(v6) => IpAddr::V4(v6.to_ipv4_mapped().expect("checked")),
        v4 => v4,
    }
}

impl FailureLimiter {
    pub fn new(settings: &RateLimitSettings) -> FailureLimiter {
        let per_minute = NonZeroU32::new(settings.failures_per_minute.max(1)).expect("non-zero");
        let burst = settings.failure_burst.max(1);
        let attempts =
            Quota::per_minute(per_minute).allow_burst(NonZeroU32::new(burst).expect("non-zero"));
        // A source is blocked by the failure that spends its budget (the `failure_burst`-th),
        // so the failures before it are one fewer than the budget.
        let before_the_last = NonZeroU32::new(burst - 1).unwrap_or(NonZeroU32::MIN);
        let failures = Quota::per_minute(per_minute).allow_burst(before_the_last);
        FailureLimiter {
            enabled: settings.enabled,
            single: (burst == 1).then(|| failures.replenish_interval()),
            attempts: RateLimiter::keyed(attempts),
            per_address: RateLimiter::keyed(failures),
            per_client: RateLimiter::keyed(failures),
            blocked: Mutex::new(HashMap::new()),
            failures: AtomicU64::new(0),
        }
    }

    /// Refuses a request from a source that has spent its failure budget.
    pub fn check(&self, address: IpAddr, client: &str) -> Result<(), RetryAfter> {
        if !self.enabled {
            return Ok(());
        }
        let address = source_key(address);
        let now = Instant::now();
        let blocked = self.blocked.lock().expect("limiter lock");
        let until = [
            Subject::Address(address),
            Subject::Client(address, client.to_owned()),
        ]
        .iter()
        .filter_map(|s| blocked.get(s))
        .filter(|until| **until > now)
        .max()
        .copied();
        match until {
            Some(until) => Err(RetryAfter(until.duration_since(now).as_secs().max(1))),
            None => Ok(()),
        }
    }

    /// Counts one attempt from `address` against its budget, before the attempt is judged;
    /// refuses it once the budget is spent.
    pub fn admit(&self, address: IpAddr) -> Result<(), RetryAfter> {
        if !self.enabled {
            return Ok(());
        }
        let clock = DefaultClock::default();
        self.attempts
            .check_key(&source_key(address))
            .map_err(|wait| RetryAfter(wait.wait_time_from(clock.now()).as_secs().max(1)))
    }

    /// Counts a failed authentication.
    pub fn record_failure(&self, address: IpAddr, client: &str) {
        if !self.enabled {
            return;
        }
        let address = source_key(address);
        let clock = DefaultClock::default();
        let mut refused = Vec::new();
        let pair = (address, client.to_owned());
        match self.single {
            Some(period) => {
                refused.push((Subject::Address(address), period));
                refused.push((Subject::Client(address, client.to_owned()), period));
            }
            None => {
                if let Err(wait) = self.per_address.check_key(&address) {
                    refused.push((Subject::Address(address), wait.wait_time_from(clock.now())));
                }
                if let Err(wait) = self.per_client.check_key(&pair) {
                    refused.push((
                        Subject::Client(address, client.to_owned()),
                        wait.wait_time_from(clock.now()),
                    ));
                }
            }
        }
        // Now and then, forget sources whose budget has refilled, so memory stays bounded.
        if self.failures.fetch_add(1, Ordering::Relaxed) % 4096 == 4095 {
            self.per_address.retain_recent();
            self.per_client.retain_recent();
            self.attempts.retain_recent();
            let now = Instant::now();
            self.blocked
                .lock()
                .expect("limiter lock")
                .retain(|_, until| *until > now);
        }
        if refused.is_empty() {
            return;
        }
        let now = Instant::now();
        let mut blocked = self.blocked.lock().expect("limiter lock");
        for (subject, wait) in refused {
            blocked.insert(subject, now + wait.max(Duration::from_secs(1)));
        }
    }
}

/// Token requests allowed per client and per source address, whatever their outcome
/// (`rate_limit.client_requests_per_second` and `address_requests_per_second`, with their
/// bursts): a runaway app or a flood from one address gets 429 before it costs a hash or a
/// signature. A rate of 0 turns that limit off; `rate_limit.enabled = false` turns both off.
pub struct RequestLimiter {
    per_client: Option<DefaultKeyedRateLimiter<String>>,
    per_address: Option<DefaultKeyedRateLimiter<IpAddr>>,
    admitted: AtomicU64,
}

fn keyed<K: std::hash::Hash + Eq + Clone>(
    enabled: bool,
    per_second: u32,
    burst: u32,
) -> Option<DefaultKeyedRateLimiter<K>> {
    let rate = NonZeroU32::new(per_second).filter(|_| enabled)?;
    let burst = NonZeroU32::new(burst.max(per_second)).expect("at least the rate");
    Some(RateLimiter::keyed(
        Quota::per_second(rate).allow_burst(burst),
    ))
}

impl RequestLimiter {
    pub fn new(settings: &RateLimitSettings) -> RequestLimiter {
        RequestLimiter {
            per_client: keyed(
                settings.enabled,
                settings.client_requests_per_second,
                settings.client_request_burst,
            ),
            per_address: keyed(
                settings.enabled,
                settings.address_requests_per_second,
                settings.address_request_burst,
            ),
            admitted: AtomicU64::new(0),
        }
    }

    /// Counts one token request from `address` for `client` (when it names one); refuses it
    /// when either budget is spent. The address is counted first, so a flood of made-up
    /// client ids from one address is stopped by its address's budget.
    pub fn admit(&self, address: IpAddr, client: Option<&str>) -> Result<(), RetryAfter> {
        let clock = DefaultClock::default();
        let refused = |wait: governor::NotUntil<_>| {
            RetryAfter(wait.wait_time_from(clock.now()).as_secs().max(1))
        };
        if let Some(limiter) = &self.per_address {
            limiter.check_key(&source_key(address)).map_err(refused)?;
        }
        if let (Some(limiter), Some(client)) = (&self.per_client, client) {
            limiter.check_key(&client.to_owned()).map_err(refused)?;
        }
        // Now and then, forget keys whose budget has refilled, so memory stays bounded.
        if self.admitted.fetch_add(1, Ordering::Relaxed) % 8192 == 8191 {
            if let Some(limiter) = &self.per_address {
                limiter.retain_recent();
            }
            if let Some(limiter) = &self.per_client {
                limiter.retain_recent();
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(burst: u32) -> RateLimitSettings {
        RateLimitSettings {
            enabled: true,
            failures_per_minute: 1,
            failure_burst: burst,
            revocations_per_second: 1,
            revocation_burst: 1,
            client_requests_per_second: 0,
            client_request_burst: 0,
            address_requests_per_second: 0,
            address_request_burst: 0,
            trusted_proxies: Vec::new(),
        }
    }

    #[test]
    fn requests_are_limited_per_client_and_per_address() {
        let limiter = RequestLimiter::new(&RateLimitSettings {
            client_requests_per_second: 1,
            client_request_burst: 3,
            address_requests_per_second: 1,
            address_request_burst: 5,
            ..settings(1)
        });
        let (one, two): (IpAddr, IpAddr) =
            ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        for _ in 0..3 {
            assert!(limiter.admit(one, Some("busy")).is_ok());
        }
        assert!(
            limiter.admit(two, Some("busy")).is_err(),
            "the client's budget is spent"
        );
        assert!(
            limiter.admit(one, Some("calm")).is_ok(),
            "another client is not"
        );
        assert!(limiter.admit(one, None).is_ok());
        assert!(
            limiter.admit(one, Some("other")).is_err(),
            "the address's budget is spent"
        );
        assert!(
            limiter.admit(two, Some("other")).is_ok(),
            "another address's is not"
        );
    }

    #[test]
    fn a_rate_of_zero_or_a_disabled_limiter_admits_everything() {
        for (enabled, rate) in [(true, 0), (false, 1)] {
            let limiter = RequestLimiter::new(&RateLimitSettings {
                enabled,
                client_requests_per_second: rate,
                client_request_burst: 1,
                address_requests_per_second: rate,
                address_request_burst: 1,
                ..settings(1)
            });
            let ip: IpAddr = "192.0.2.1".parse().unwrap();
            for _ in 0..100 {
                assert!(limiter.admit(ip, Some("c")).is_ok());
            }
        }
    }

    #[test]
    fn a_burst_of_n_allows_exactly_n_failures() {
        for burst in 1..=4 {
            let limiter = FailureLimiter::new(&settings(burst));
            let ip: IpAddr = "192.0.2.1".parse().unwrap();
            for failure in 1..=burst {
                assert!(
                    limiter.check(ip, "c").is_ok(),
                    "burst {burst}, before failure {failure}"
                );
                limiter.record_failure(ip, "c");
            }
            assert!(
                limiter.check(ip, "c").is_err(),
                "burst {burst}: refused after {burst}"
            );
        }
    }

    #[test]
    fn blocks_a_source_once_its_failures_spend_the_burst() {
        let limiter = FailureLimiter::new(&settings(3));
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..2 {
            limiter.record_failure(ip, "c");
            assert!(limiter.check(ip, "c").is_ok());
        }
        limiter.record_failure(ip, "c");
        match limiter.check(ip, "c") {
            Err(RetryAfter(seconds)) => assert!(seconds >= 1),
            other => panic!("expected 429, got {other:?}"),
        }
    }

    #[test]
    fn other_sources_are_not_locked_out() {
        let limiter = FailureLimiter::new(&settings(1));
        let attacker: IpAddr = "192.0.2.1".parse().unwrap();
        let victim: IpAddr = "192.0.2.2".parse().unwrap();
        limiter.record_failure(attacker, "c");
        limiter.record_failure(attacker, "c");
        assert!(limiter.check(attacker, "c").is_err());
        assert!(limiter.check(victim, "c").is_ok());
    }

    #[test]
    fn ipv6_sources_count_per_slash_64() {
        let limiter = FailureLimiter::new(&settings(1));
        let one: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let same_subnet: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let other_subnet: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        limiter.record_failure(one, "c");
        limiter.record_failure(one, "c");
        assert!(limiter.check(same_subnet, "d").is_err());
        assert!(limiter.check(other_subnet, "d").is_ok());
    }

    #[test]
    fn a_disabled_limiter_never_refuses() {
        let mut s = settings(1);
        s.enabled = false;
        let limiter = FailureLimiter::new(&s);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..10 {
            limiter.record_failure(ip, "c");
        }
        assert!(limiter.check(ip, "c").is_ok());
    }

    #[test]
    fn admission_counts_every_attempt_before_it_is_judged() {
        let limiter = FailureLimiter::new(&settings(2));
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        assert!(limiter.admit(ip).is_ok());
        assert!(limiter.admit(ip).is_ok());
        assert!(limiter.admit(ip).is_err());
        assert!(limiter.admit("192.0.2.2".parse().unwrap()).is_ok());
    }
}

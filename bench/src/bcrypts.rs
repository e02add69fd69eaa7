//! What bcrypt costs keygate when many clients ask at once, and when clients renew their
//! tokens: keygate counts the client secrets it checks with bcrypt
//! (`keygate_secret_checks_total` at `GET /metrics`), and these scenarios read that counter
//! before and after.
//!
//! - **herd**: connections opened beforehand send the first `POST /v1/token` of a key never
//!   verified, all at once (a fleet of workers starting together); the time until the last is
//!   answered, and the bcrypts they cost.
//! - **renewals**: clients each ask for a token, then again every period, their starts spread
//!   over one period, for a few rounds; the bcrypts per renewal.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::bail;
use hdrhistogram::Histogram;
use tokio::time::{Instant, sleep_until};

use crate::load::{self, Connection, Template};
use crate::token_body;

/// keygate's counter of client secrets checked with bcrypt.
pub const SECRET_CHECKS: &str = "keygate_secret_checks_total";
/// How long one answer may take before it counts as failed.
const ANSWER_LIMIT: Duration = Duration::from_secs(30);

/// `keygate_secret_checks_total` now; `None` when keygate's `/metrics` does not have it.
pub async fn secret_checks(addr: SocketAddr) -> anyhow::Result<Option<u64>> {
    let probe = Template::get(addr, "/metrics");
    let (status, body) = load::once(addr, probe.request(), ANSWER_LIMIT).await?;
    if !status.is_success() {
        bail!("GET /metrics answered {status}");
    }
    Ok(counter(&String::from_utf8_lossy(&body), SECRET_CHECKS))
}

/// The value of an unlabelled counter in the Prometheus text format.
fn counter(text: &str, name: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let value = line.strip_prefix(name)?.strip_prefix(' ')?;
        let value: f64 = value.split_whitespace().next()?.parse().ok()?;
        Some(value as u64)
    })
}

/// `after - before`, or `None` when either is unknown.
fn delta(before: Option<u64>, after: Option<u64>) -> Option<u64> {
    Some(after?.saturating_sub(before?))
}

fn count_text(n: Option<u64>) -> String {
    n.map_or_else(
        || format!("n/a ({SECRET_CHECKS} is not in keygate's /metrics)"),
        |n| n.to_string(),
    )
}

fn statuses_text(statuses: &BTreeMap<u16, u64>, failed: u64) -> String {
    let mut parts: Vec<String> = statuses
        .iter()
        .map(|(status, n)| format!("{n} x {status}"))
        .collect();
    if failed > 0 {
        parts.push(format!("{failed} without an answer"));
    }
    parts.join(", ")
}

/// What the herd measured.
pub struct Herd {
    pub requests: usize,
    /// From the moment every request is let go to the last answer.
    pub last_answer: Duration,
    pub first_answer: Duration,
    pub statuses: BTreeMap<u16, u64>,
    pub failed: u64,
    /// The counter's increase; `None` when keygate does not count.
    pub bcrypts: Option<u64>,
}

impl Herd {
    pub fn line(&self) -> String {
        format!(
            "herd: {} first POST /v1/token of a key never verified, sent at once on connections \
             opened beforehand: last answered after {:.1} ms (first after {:.1} ms; {}); bcrypts: {} \
             (target: 1, and the last answer well under 200 ms)",
            self.requests,
            self.last_answer.as_secs_f64() * 1000.0,
            self.first_answer.as_secs_f64() * 1000.0,
            statuses_text(&self.statuses, self.failed),
            count_text(self.bcrypts),
        )
    }
}

/// `requests` first token requests for `client_id`, all at once.
pub async fn herd(
    addr: SocketAddr,
    client_id: &str,
    secret: &str,
    requests: usize,
) -> anyhow::Result<Herd> {
    let mut connections = Vec::with_capacity(requests);
    for _ in 0..requests {
        connections.push(Connection::open(addr).await?);
    }
    let before = secret_checks(addr).await?;
    let template = Template::post(
        addr,
        "/v1/token",
        "application/json",
        token_body(client_id, secret),
    );
    // Every task has its request built and waits at the barrier; the last to arrive (this
    // one) lets them all go.
    let gate = Arc::new(tokio::sync::Barrier::new(requests + 1));
    let tasks: Vec<_> = connections
        .into_iter()
        .map(|mut connection| {
            let request = template.request();
            let gate = gate.clone();
            tokio::spawn(async move {
                gate.wait().await;
                let answer = connection.send(request, ANSWER_LIMIT).await;
                (answer.map(|(status, _, _)| status.as_u16()), Instant::now())
            })
        })
        .collect();
    gate.wait().await;
    let released = Instant::now();
    let mut herd = Herd {
        requests,
        last_answer: Duration::ZERO,
        first_answer: Duration::MAX,
        statuses: BTreeMap::new(),
        failed: 0,
        bcrypts: None,
    };
    for task in tasks {
        let (answer, at) = task.await?;
        let took = at.saturating_duration_since(released);
        herd.last_answer = herd.last_answer.max(took);
        herd.first_answer = herd.first_answer.min(took);
        match answer {
            Ok(status) => *herd.statuses.entry(status).or_default() += 1,
            Err(_) => herd.failed += 1,
        }
    }
    herd.bcrypts = delta(before, secret_checks(addr).await?);
    Ok(herd)
}

/// The renewal schedule.
#[derive(Clone, Copy, Debug)]
pub struct Schedule {
    /// Time between a client's token requests.
    pub period: Duration,
    /// Renewals per client after its first request.
    pub rounds: u32,
}

/// What one renewal run measured.
pub struct Renewals {
    pub clients: usize,
    pub schedule: Schedule,
    /// `cache.verified_secret_seconds` keygate ran with.
    pub verified_secret_seconds: u64,
    /// First requests answered 200 (each necessarily a bcrypt).
    pub first_ok: u64,
    /// Renewals answered 200.
    pub renewals_ok: u64,
    /// Every status (first requests and renewals).
    pub statuses: BTreeMap<u16, u64>,
    pub failed: u64,
    /// Requests sent more than 100 ms after their slot (keygate answered the previous late).
    pub behind: u64,
    pub latency: Histogram<u64>,
    pub elapsed: Duration,
    pub bcrypts: Option<u64>,
}

impl Renewals {
    /// bcrypts per renewal: those of the first requests taken out.
    pub fn per_renewal(&self) -> Option<f64> {
        let bcrypts = self.bcrypts?;
        (self.renewals_ok > 0)
            .then(|| bcrypts.saturating_sub(self.first_ok) as f64 / self.renewals_ok as f64)
    }

    pub fn line(&self) -> String {
        let per = self.per_renewal().map_or_else(
            || format!("n/a ({SECRET_CHECKS} is not in keygate's /metrics)"),
            |p| format!("{p:.3}"),
        );
        let q = |q: f64| {
            if self.latency.is_empty() {
                0.0
            } else {
                self.latency.value_at_quantile(q) as f64 / 1000.0
            }
        };
        format!(
            "renewals with cache.verified_secret_seconds = {}: {} clients, a token every {:.1} s, \
             {} renewals each, in {:.1} s: bcrypts per renewal {per} ({} bcrypts, {} of them \
             first requests, {} renewals answered; {}; {} sent late; p50 {:.2} ms, p99 {:.2} ms)",
            self.verified_secret_seconds,
            self.clients,
            self.schedule.period.as_secs_f64(),
            self.schedule.rounds,
            self.elapsed.as_secs_f64(),
            self.bcrypts.map_or_else(|| "n/a".into(), |b| b.to_string()),
            self.first_ok,
            self.renewals_ok,
            statuses_text(&self.statuses, self.failed),
            self.behind,
            q(0.50),
            q(0.99),
        )
    }
}

struct ClientResult {
    first_ok: u64,
    renewals_ok: u64,
    statuses: BTreeMap<u16, u64>,
    failed: u64,
    behind: u64,
    latency: Histogram<u64>,
}

/// Each of `client_ids` (keys never verified, sharing `secret`) asks for a token at its
/// start, spread over one period, then once every period for `schedule.rounds` renewals. A
/// request whose slot passed while the previous was awaited goes at once.
pub async fn renewals(
    addr: SocketAddr,
    client_ids: &[String],
    secret: &str,
    schedule: Schedule,
    verified_secret_seconds: u64,
) -> anyhow::Result<Renewals> {
    let clients = client_ids.len();
    let mut connections = Vec::with_capacity(clients);
    for _ in 0..clients {
        connections.push(Connection::open(addr).await?);
    }
    let before = secret_checks(addr).await?;
    let started = Instant::now() + Duration::from_millis(100);
    let tasks: Vec<_> = client_ids
        .iter()
        .zip(connections)
        .enumerate()
        .map(|(i, (client_id, mut connection))| {
            let template = Template::post(
                addr,
                "/v1/token",
                "application/json",
                token_body(client_id, secret),
            );
            let offset = schedule.period.mul_f64(i as f64 / clients as f64);
            tokio::spawn(async move {
                let mut result = ClientResult {
                    first_ok: 0,
                    renewals_ok: 0,
                    statuses: BTreeMap::new(),
                    failed: 0,
                    behind: 0,
                    latency: Histogram::new_with_bounds(1, 60_000_000, 3)
                        .expect("valid histogram bounds"),
                };
                for round in 0..=schedule.rounds {
                    let slot = started + offset + schedule.period * round;
                    sleep_until(slot).await;
                    let sent = Instant::now();
                    if sent.duration_since(slot) > Duration::from_millis(100) {
                        result.behind += 1;
                    }
                    match connection.send(template.request(), ANSWER_LIMIT).await {
                        Ok((status, _, _)) => {
                            let micros = sent.elapsed().as_micros() as u64;
                            result.latency.saturating_record(micros.max(1));
                            *result.statuses.entry(status.as_u16()).or_default() += 1;
                            if status.is_success() {
                                if round == 0 {
                                    result.first_ok += 1;
                                } else {
                                    result.renewals_ok += 1;
                                }
                            }
                        }
                        Err(_) => {
                            result.failed += 1;
                            match Connection::open(addr).await {
                                Ok(fresh) => connection = fresh,
                                Err(_) => break,
                            }
                        }
                    }
                }
                result
            })
        })
        .collect();
    let mut run = Renewals {
        clients,
        schedule,
        verified_secret_seconds,
        first_ok: 0,
        renewals_ok: 0,
        statuses: BTreeMap::new(),
        failed: 0,
        behind: 0,
        latency: Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds"),
        elapsed: Duration::ZERO,
        bcrypts: None,
    };
    for task in tasks {
        let client = task.await?;
        run.first_ok += client.first_ok;
        run.renewals_ok += client.renewals_ok;
        for (status, n) in client.statuses {
            *run.statuses.entry(status).or_default() += n;
        }
        run.failed += client.failed;
        run.behind += client.behind;
        run.latency.add(&client.latency).expect("same bounds");
    }
    run.elapsed = started.elapsed();
    run.bcrypts = delta(before, secret_checks(addr).await?);
    Ok(run)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unlabelled_counter_is_read_from_the_text_format() {
        let text = "# HELP keygate_secret_checks_total Client secrets checked\n\
                    # TYPE keygate_secret_checks_total counter\n\
                    keygate_secret_checks_total_other 9\n\
                    keygate_secret_checks_total 42\n";
        assert_eq!(counter(text, SECRET_CHECKS), Some(42));
        assert_eq!(
            counter("keygate_tokens_issued_total 3\n", SECRET_CHECKS),
            None
        );
        assert_eq!(delta(Some(40), Some(42)), Some(2));
        assert_eq!(delta(None, Some(42)), None);
    }
}

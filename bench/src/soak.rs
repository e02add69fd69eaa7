//! The soak: keygate under mixed traffic for a given time, each operation paced at a fixed
//! rate on a fixed number of keep-alive connections (so bounded in requests and in requests
//! under way), every answer checked against the status it should have. Then:
//!
//! - no 5xx: every answer of 500 and above is counted, and must be none;
//! - no lost write: what clients were told (keys created, rotated and revoked, tokens revoked)
//!   is compared with the database, read through `keygate::db` after keygate is stopped;
//! - flat memory: keygate's `VmRSS` is sampled every few seconds, and must not grow by more
//!   than [`MEMORY_BOUND`] from the end of the warm-up to the end;
//! - p50/p99 per operation, in `bench/results/soak.txt` and `soak.csv` (the memory samples in
//!   `soak-memory.csv`).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use anyhow::Context;
use base64::Engine;
use bytes::Bytes;
use diesel::prelude::*;
use hdrhistogram::Histogram;
use hyper::StatusCode;
use keygate::config::DatabaseSettings;
use keygate::db::connect;
use keygate::db::schema::{api_key_secrets, api_keys, state_changes};
use serde_json::json;
use tokio::time::{Instant, sleep, sleep_until};

use crate::load::{Connection, Template};
use crate::server::Keygate;
use crate::token_body;

/// How much keygate's resident memory may grow from the end of the warm-up to the end.
pub const MEMORY_BOUND: f64 = 0.20;
/// How often keygate's resident memory is read.
const MEMORY_EVERY: Duration = Duration::from_secs(5);
/// The longest one answer may take; a request still unanswered then counts as failed.
const ANSWER_LIMIT: Duration = Duration::from_secs(10);
/// A worker that fell behind its schedule catches up by at most this much (no bursts).
const CATCH_UP: Duration = Duration::from_millis(100);
/// Keys verified before the soak whose tokens `token_warm` asks for, round robin.
pub const WARM_KEYS: usize = 8;
/// Tokens `validate` takes from, round robin; `token_warm` puts every token it gets there.
const TOKEN_RING: usize = 256;
/// Soak-created keys kept live before `key_revoke` takes one (so that rotations have keys).
const LIVE_KEYS_KEPT: usize = 10;
/// How often the management token is renewed (it lives 900 s).
const MANAGEMENT_TOKEN_EVERY: Duration = Duration::from_secs(300);
/// Names of the keys the soak creates.
const KEY_NAME: &str = "soak key";

/// The operations of the soak.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    TokenWarm,
    TokenCold,
    Validate,
    List,
    KeyCreate,
    KeyRotate,
    KeyRevoke,
    TokenRevoke,
}

/// Each operation's rate (requests per second), connections, and what it is.
const PLAN: [(Op, f64, usize); 8] = [
    (Op::TokenWarm, 2_000.0, 8),
    (Op::Validate, 4_000.0, 8),
    (Op::TokenCold, 4.0, 4),
    (Op::List, 20.0, 2),
    (Op::KeyCreate, 2.0, 1),
    (Op::KeyRotate, 2.0, 1),
    (Op::KeyRevoke, 1.0, 1),
    (Op::TokenRevoke, 5.0, 1),
];

impl Op {
    fn index(self) -> usize {
        PLAN.iter()
            .position(|(op, _, _)| *op == self)
            .expect("every operation is planned")
    }

    fn name(self) -> &'static str {
        match self {
            Op::TokenWarm => "token_warm",
            Op::TokenCold => "token_cold",
            Op::Validate => "validate",
            Op::List => "list",
            Op::KeyCreate => "key_create",
            Op::KeyRotate => "key_rotate",
            Op::KeyRevoke => "key_revoke",
            Op::TokenRevoke => "token_revoke",
        }
    }

    fn request(self) -> &'static str {
        match self {
            Op::TokenWarm => "POST /v1/token, key verified before",
            Op::TokenCold => "POST /v1/token, key never verified",
            Op::Validate => "GET /v1/me/permissions, bearer token",
            Op::List => "GET /v1/api-keys?limit=100",
            Op::KeyCreate => "POST /v1/api-keys",
            Op::KeyRotate => "POST /v1/api-keys/{id}/rotate",
            Op::KeyRevoke => "POST /v1/api-keys/{id}/revoke",
            Op::TokenRevoke => "POST /v1/revoke (RFC 7009)",
        }
    }

    fn expected(self) -> StatusCode {
        match self {
            Op::KeyCreate => StatusCode::CREATED,
            _ => StatusCode::OK,
        }
    }
}

/// One operation's answers.
#[derive(Clone)]
struct OpStats {
    sent: u64,
    expected: u64,
    unexpected: BTreeMap<u16, u64>,
    server_errors: u64,
    failed: u64,
    first_problem: Option<String>,
    latency: Histogram<u64>,
}

impl OpStats {
    fn new() -> OpStats {
        OpStats {
            sent: 0,
            expected: 0,
            unexpected: BTreeMap::new(),
            server_errors: 0,
            failed: 0,
            first_problem: None,
            latency: Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds"),
        }
    }

    fn merge(&mut self, other: &OpStats) {
        self.sent += other.sent;
        self.expected += other.expected;
        for (status, n) in &other.unexpected {
            *self.unexpected.entry(*status).or_default() += n;
        }
        self.server_errors += other.server_errors;
        self.failed += other.failed;
        if self.first_problem.is_none() {
            self.first_problem.clone_from(&other.first_problem);
        }
        self.latency.add(&other.latency).expect("same bounds");
    }

    fn unexpected_total(&self) -> u64 {
        self.unexpected.values().sum()
    }

    fn quantile_ms(&self, q: f64) -> f64 {
        if self.latency.is_empty() {
            0.0
        } else {
            self.latency.value_at_quantile(q) as f64 / 1000.0
        }
    }
}

/// Every operation's answers, one entry per [`PLAN`] row.
#[derive(Clone)]
struct Stats([OpStats; PLAN.len()]);

impl Stats {
    fn new() -> Stats {
        Stats(std::array::from_fn(|_| OpStats::new()))
    }

    fn of(&mut self, op: Op) -> &mut OpStats {
        &mut self.0[op.index()]
    }

    fn merge(&mut self, other: &Stats) {
        for (mine, theirs) in self.0.iter_mut().zip(&other.0) {
            mine.merge(theirs);
        }
    }
}

/// What clients were told keygate had done.
#[derive(Default)]
struct Ledger {
    /// Keys created: client_id, and the secret prefix of the last answer about it.
    created: HashMap<String, String>,
    /// Rotations answered 200, per key.
    rotations: HashMap<String, u64>,
    /// Keys whose revoke was answered 200.
    revoked: Vec<String>,
    /// Tokens whose RFC 7009 revoke was answered 200: jti and expiry (Unix seconds).
    revoked_tokens: Vec<(String, i64)>,
    /// Writes sent but never answered (or answered 5xx): their outcome is unknown, so the
    /// database may hold them without a client having been told.
    unanswered_writes: u64,
}

/// What the soak's workers share.
struct Shared {
    addr: SocketAddr,
    secret: String,
    warm_keys: Vec<String>,
    cold_keys: Vec<String>,
    cold_next: AtomicUsize,
    warm_next: AtomicUsize,
    tokens: RwLock<Vec<String>>,
    token_next: AtomicUsize,
    validate_next: AtomicUsize,
    management: (String, String),
    management_token: RwLock<String>,
    /// Soak-created keys not being rotated or revoked right now, oldest first.
    live: Mutex<VecDeque<String>>,
    created: AtomicU64,
    ledger: Mutex<Ledger>,
}

/// An answer: the status and the body, or why there is none.
type Answer = Result<(StatusCode, Bytes), String>;

impl Shared {
    fn token_request(&self, client_id: &str) -> Template {
        Template::post(
            self.addr,
            "/v1/token",
            "application/json",
            token_body(client_id, &self.secret),
        )
    }

    fn management_token(&self) -> String {
        self.management_token
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Sends `template` on `conn` (opened on first use, again after a failure), records the
    /// answer under `op`, and returns it when it is the expected status.
    async fn send(
        &self,
        conn: &mut Option<Connection>,
        stats: &mut Stats,
        op: Op,
        template: &Template,
    ) -> Option<Bytes> {
        let stats = stats.of(op);
        stats.sent += 1;
        let sent = Instant::now();
        let answer: Answer = async {
            if conn.is_none() {
                *conn = Some(
                    Connection::open(self.addr)
                        .await
                        .map_err(|e| format!("{e:#}"))?,
                );
            }
            let connection = conn.as_mut().expect("opened above");
            connection
                .send(template.request(), ANSWER_LIMIT)
                .await
                .map(|(status, _, body)| (status, body))
                .map_err(|e| format!("{e:#}"))
        }
        .await;
        match answer {
            Ok((status, body)) => {
                let micros = sent.elapsed().as_micros() as u64;
                stats.latency.saturating_record(micros.max(1));
                if status == op.expected() {
                    stats.expected += 1;
                    return Some(body);
                }
                if status.is_server_error() {
                    stats.server_errors += 1;
                } else {
                    *stats.unexpected.entry(status.as_u16()).or_default() += 1;
                }
                if stats.first_problem.is_none() {
                    stats.first_problem = Some(format!(
                        "HTTP {status}: {}",
                        String::from_utf8_lossy(&body[..body.len().min(200)])
                    ));
                }
                None
            }
            Err(e) => {
                stats.failed += 1;
                if stats.first_problem.is_none() {
                    stats.first_problem = Some(e);
                }
                // The connection may hold an unanswered request: start afresh.
                *conn = None;
                None
            }
        }
    }

    fn unanswered_write(&self, stats: &Stats, op: Op, before: &OpStats) {
        let after = &stats.0[op.index()];
        if after.server_errors > before.server_errors || after.failed > before.failed {
            self.ledger
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .unanswered_writes += 1;
        }
    }

    /// One request (or two, for `token_revoke`) of `op`.
    async fn step(&self, op: Op, conn: &mut Option<Connection>, stats: &mut Stats) {
        match op {
            Op::TokenWarm => {
                let i = self.warm_next.fetch_add(1, Ordering::Relaxed);
                let template = self.token_request(&self.warm_keys[i % self.warm_keys.len()]);
                if let Some(body) = self.send(conn, stats, op, &template).await
                    && let Ok(token) = crate::access_token(&body)
                {
                    let slot = self.token_next.fetch_add(1, Ordering::Relaxed) % TOKEN_RING;
                    let mut tokens = self.tokens.write().unwrap_or_else(|e| e.into_inner());
                    if tokens.len() < TOKEN_RING {
                        tokens.push(token);
                    } else {
                        tokens[slot] = token;
                    }
                }
            }
            Op::TokenCold => {
                let i = self.cold_next.fetch_add(1, Ordering::Relaxed);
                let template = self.token_request(&self.cold_keys[i % self.cold_keys.len()]);
                self.send(conn, stats, op, &template).await;
            }
            Op::Validate => {
                let token = {
                    let tokens = self.tokens.read().unwrap_or_else(|e| e.into_inner());
                    if tokens.is_empty() {
                        return;
                    }
                    let i = self.validate_next.fetch_add(1, Ordering::Relaxed);
                    tokens[i % tokens.len()].clone()
                };
                let template = Template::get(self.addr, "/v1/me/permissions").bearer(&token);
                self.send(conn, stats, op, &template).await;
            }
            Op::List => {
                let template = Template::get(self.addr, "/v1/api-keys?limit=100")
                    .bearer(&self.management_token());
                self.send(conn, stats, op, &template).await;
            }
            Op::KeyCreate => {
                let n = self.created.fetch_add(1, Ordering::Relaxed);
                let body =
                    json!({ "name": format!("{KEY_NAME} {n}"), "scopes": ["invoices:read"] });
                let template = Template::post(
                    self.addr,
                    "/v1/api-keys",
                    "application/json",
                    Bytes::from(body.to_string()),
                )
                .bearer(&self.management_token());
                let before = stats.0[op.index()].clone();
                match self.send(conn, stats, op, &template).await {
                    Some(body) => {
                        if let Some((client_id, prefix)) = key_of(&body) {
                            self.ledger
                                .lock()
                                .unwrap_or_else(|e| e.into_inner())
                                .created
                                .insert(client_id.clone(), prefix);
                            self.live
                                .lock()
                                .unwrap_or_else(|e| e.into_inner())
                                .push_back(client_id);
                        }
                    }
                    None => self.unanswered_write(stats, op, &before),
                }
            }
            Op::KeyRotate => {
                let Some(client_id) = self
                    .live
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .pop_front()
                else {
                    return;
                };
                let template = Template::post(
                    self.addr,
                    &format!("/v1/api-keys/{client_id}/rotate"),
                    "application/json",
                    Bytes::from_static(br#"{"grace_period_seconds":0}"#),
                )
                .bearer(&self.management_token());
                let before = stats.0[op.index()].clone();
                match self.send(conn, stats, op, &template).await {
                    Some(body) => {
                        let mut ledger = self.ledger.lock().unwrap_or_else(|e| e.into_inner());
                        *ledger.rotations.entry(client_id.clone()).or_default() += 1;
                        if let Some((_, prefix)) = key_of(&body) {
                            ledger.created.insert(client_id.clone(), prefix);
                        }
                    }
                    None => self.unanswered_write(stats, op, &before),
                }
                self.live
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push_back(client_id);
            }
            Op::KeyRevoke => {
                let client_id = {
                    let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
                    if live.len() <= LIVE_KEYS_KEPT {
                        return;
                    }
                    live.pop_front().expect("more than kept")
                };
                let template = Template::post(
                    self.addr,
                    &format!("/v1/api-keys/{client_id}/revoke"),
                    "application/json",
                    Bytes::new(),
                )
                .bearer(&self.management_token());
                let before = stats.0[op.index()].clone();
                match self.send(conn, stats, op, &template).await {
                    Some(_) => self
                        .ledger
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .revoked
                        .push(client_id),
                    None => self.unanswered_write(stats, op, &before),
                }
            }
            Op::TokenRevoke => {
                // A token of its own (counted with token_warm), revoked with its key's
                // credentials by HTTP Basic; never one `validate` uses.
                let client_id = &self.warm_keys[0];
                let template = self.token_request(client_id);
                let Some(body) = self.send(conn, stats, Op::TokenWarm, &template).await else {
                    return;
                };
                let Ok(token) = crate::access_token(&body) else {
                    return;
                };
                let Some(claims) = jti_and_expiry(&token) else {
                    return;
                };
                let basic = base64::engine::general_purpose::STANDARD
                    .encode(format!("{client_id}:{}", self.secret));
                let template = Template::post(
                    self.addr,
                    "/v1/revoke",
                    "application/x-www-form-urlencoded",
                    Bytes::from(format!("token={token}&token_type_hint=access_token")),
                )
                .authorization(&format!("Basic {basic}"));
                let before = stats.0[op.index()].clone();
                match self.send(conn, stats, op, &template).await {
                    Some(_) => self
                        .ledger
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .revoked_tokens
                        .push(claims),
                    None => self.unanswered_write(stats, op, &before),
                }
            }
        }
    }
}

/// `client_id` and `key_prefix` of a key in an answer.
fn key_of(body: &[u8]) -> Option<(String, String)> {
    let key: serde_json::Value = serde_json::from_slice(body).ok()?;
    Some((
        key["client_id"].as_str()?.to_owned(),
        key["key_prefix"].as_str().unwrap_or("").to_owned(),
    ))
}

/// `jti` and `exp` of a JWT's claims.
fn jti_and_expiry(token: &str) -> Option<(String, i64)> {
    let claims = token.split('.').nth(1)?;
    let claims = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(claims)
        .ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&claims).ok()?;
    Some((claims["jti"].as_str()?.to_owned(), claims["exp"].as_i64()?))
}

/// One connection of `op`: a request every `interval` from `first` until `until`.
async fn worker(
    shared: Arc<Shared>,
    op: Op,
    interval: Duration,
    first: Instant,
    until: Instant,
) -> Stats {
    let mut stats = Stats::new();
    let mut conn = None;
    let mut next = first;
    while next < until {
        sleep_until(next).await;
        shared.step(op, &mut conn, &mut stats).await;
        next = (next + interval).max(Instant::now() - CATCH_UP);
    }
    stats
}

/// Renews the management token until `until`.
async fn management_tokens(shared: Arc<Shared>, until: Instant) -> Stats {
    let mut stats = Stats::new();
    let mut conn = None;
    loop {
        let next = Instant::now() + MANAGEMENT_TOKEN_EVERY;
        if next >= until {
            return stats;
        }
        sleep_until(next).await;
        let template = shared
            .token_request(&shared.management.0)
            .with_body(token_body(&shared.management.0, &shared.management.1));
        if let Some(body) = shared
            .send(&mut conn, &mut stats, Op::TokenWarm, &template)
            .await
            && let Ok(token) = crate::access_token(&body)
        {
            *shared
                .management_token
                .write()
                .unwrap_or_else(|e| e.into_inner()) = token;
        }
    }
}

/// What the soak needs of the run.
pub struct Soak<'a> {
    pub seconds: u64,
    pub database_url: &'a str,
    pub secret: &'a str,
    /// Keys verified before the soak (the first one's tokens are also revoked).
    pub warm_keys: Vec<String>,
    /// Keys never verified, each used once while they last.
    pub cold_keys: Vec<String>,
    /// The management key (client_id, secret) and a token of it.
    pub management: (&'a str, &'a str),
    pub management_token: String,
}

/// The report and whether the soak passed.
pub struct Outcome {
    pub text: String,
    pub csv: String,
    pub memory_csv: String,
    pub failures: Vec<String>,
}

/// What the database holds of what clients were told.
struct Stored {
    created: u64,
    soak_keys: u64,
    prefix_as_told: u64,
    rotations: u64,
    rotations_short: u64,
    revoked: u64,
    soak_keys_revoked: u64,
    tokens_in_force: u64,
    tokens_told_in_force: u64,
}

impl Soak<'_> {
    /// Runs the traffic and samples memory; returns the merged answers and the samples
    /// (seconds since the start, KiB).
    async fn traffic(
        &self,
        addr: SocketAddr,
        pid: u32,
    ) -> (Stats, Vec<(f64, u64)>, Ledger, f64, usize) {
        let shared = Arc::new(Shared {
            addr,
            secret: self.secret.to_owned(),
            warm_keys: self.warm_keys.clone(),
            cold_keys: self.cold_keys.clone(),
            cold_next: AtomicUsize::new(0),
            warm_next: AtomicUsize::new(0),
            tokens: RwLock::new(Vec::with_capacity(TOKEN_RING)),
            token_next: AtomicUsize::new(0),
            validate_next: AtomicUsize::new(0),
            management: (self.management.0.to_owned(), self.management.1.to_owned()),
            management_token: RwLock::new(self.management_token.clone()),
            live: Mutex::new(VecDeque::new()),
            created: AtomicU64::new(0),
            ledger: Mutex::new(Ledger::default()),
        });
        let start = Instant::now();
        let until = start + Duration::from_secs(self.seconds);
        let mut tasks = Vec::new();
        for (op, rate, connections) in PLAN {
            let interval = Duration::from_secs_f64(connections as f64 / rate);
            for c in 0..connections {
                // Connections of one operation start spread over one interval.
                let first = start + interval.mul_f64(c as f64 / connections as f64);
                tasks.push(tokio::spawn(worker(
                    shared.clone(),
                    op,
                    interval,
                    first,
                    until,
                )));
            }
        }
        tasks.push(tokio::spawn(management_tokens(shared.clone(), until)));
        let sampler = tokio::spawn(async move {
            let mut samples = Vec::new();
            let mut next = start;
            loop {
                if let Some(kib) = crate::server::rss_kib(pid) {
                    samples.push((next.duration_since(start).as_secs_f64(), kib));
                }
                next += MEMORY_EVERY;
                if next > until {
                    break;
                }
                sleep_until(next).await;
            }
            samples
        });
        let mut progress = start;
        // Progress every minute while the workers run.
        while Instant::now() < until {
            progress += Duration::from_secs(60);
            sleep_until(progress.min(until)).await;
            eprintln!(
                "  soak: {:.0} of {} s",
                start.elapsed().as_secs_f64().min(self.seconds as f64),
                self.seconds
            );
        }
        let mut stats = Stats::new();
        for task in tasks {
            if let Ok(worker_stats) = task.await {
                stats.merge(&worker_stats);
            }
        }
        let elapsed = start.elapsed().as_secs_f64();
        let samples = sampler.await.unwrap_or_default();
        let cold_used = shared.cold_next.load(Ordering::Relaxed);
        let ledger = std::mem::take(&mut *shared.ledger.lock().unwrap_or_else(|e| e.into_inner()));
        (stats, samples, ledger, elapsed, cold_used)
    }
}

/// Reads back, through keygate's schema, what the ledger says clients were told.
fn stored(database_url: &str, ledger: &Ledger) -> anyhow::Result<Stored> {
    let pool = connect(&DatabaseSettings {
        url: database_url.parse()?,
        pool_size: 1,
        connect_timeout_seconds: 10,
    })?;
    let mut conn = pool.get().context("cannot connect to the bench database")?;
    let told: Vec<String> = ledger.created.keys().cloned().collect();
    let mut keys: Vec<(i64, String, String, String)> = Vec::with_capacity(told.len());
    for chunk in told.chunks(500) {
        keys.extend(
            api_keys::table
                .filter(api_keys::client_id.eq_any(chunk))
                .select((
                    api_keys::id,
                    api_keys::client_id,
                    api_keys::status,
                    api_keys::key_prefix,
                ))
                .load::<(i64, String, String, String)>(&mut conn)?,
        );
    }
    let soak_keys: i64 = api_keys::table
        .filter(api_keys::name.like(format!("{KEY_NAME} %")))
        .count()
        .get_result(&mut conn)?;
    let soak_keys_revoked: i64 = api_keys::table
        .filter(api_keys::name.like(format!("{KEY_NAME} %")))
        .filter(api_keys::revoked_at.is_not_null())
        .count()
        .get_result(&mut conn)?;
    let ids: Vec<i64> = keys.iter().map(|k| k.0).collect();
    let mut secrets: HashMap<i64, u64> = HashMap::new();
    for chunk in ids.chunks(500) {
        for id in api_key_secrets::table
            .filter(api_key_secrets::api_key_id.eq_any(chunk))
            .select(api_key_secrets::api_key_id)
            .load::<i64>(&mut conn)?
        {
            *secrets.entry(id).or_default() += 1;
        }
    }
    let revoked: std::collections::HashSet<&str> =
        ledger.revoked.iter().map(String::as_str).collect();
    let mut out = Stored {
        created: keys.len() as u64,
        soak_keys: soak_keys as u64,
        prefix_as_told: 0,
        rotations: 0,
        rotations_short: 0,
        revoked: 0,
        soak_keys_revoked: soak_keys_revoked as u64,
        tokens_in_force: 0,
        tokens_told_in_force: 0,
    };
    for (id, client_id, status, prefix) in &keys {
        if ledger.created.get(client_id) == Some(prefix) {
            out.prefix_as_told += 1;
        }
        // Each rotation adds a secret row to the one the key was made with.
        let rotations = secrets.get(id).copied().unwrap_or(0).saturating_sub(1);
        out.rotations += rotations;
        if rotations < ledger.rotations.get(client_id).copied().unwrap_or(0) {
            out.rotations_short += 1;
        }
        if revoked.contains(client_id.as_str()) && status == "revoked" {
            out.revoked += 1;
        }
    }
    // A revoked token's entry stays until the token would have expired: only those are
    // expected.
    let now = chrono::Utc::now().timestamp();
    let in_force: Vec<String> = ledger
        .revoked_tokens
        .iter()
        .filter(|(_, exp)| *exp > now + 5)
        .map(|(jti, _)| jti.clone())
        .collect();
    out.tokens_told_in_force = in_force.len() as u64;
    for chunk in in_force.chunks(500) {
        let found: i64 = state_changes::table
            .filter(state_changes::kind.eq("token"))
            .filter(state_changes::subject.eq_any(chunk))
            .count()
            .get_result(&mut conn)?;
        out.tokens_in_force += found as u64;
    }
    Ok(out)
}

/// Runs the soak against `keygate`, then stops it and reads the database.
pub async fn run(soak: Soak<'_>, header: &str, mut keygate: Keygate) -> anyhow::Result<Outcome> {
    eprintln!(
        "soak: {} s of mixed traffic, keygate's memory read every {} s...",
        soak.seconds,
        MEMORY_EVERY.as_secs()
    );
    let (stats, samples, ledger, elapsed, cold_used) =
        soak.traffic(keygate.addr, keygate.pid()).await;
    // Let keygate finish what it was given (write-behind), then stop it: what the database
    // holds now is what survives.
    sleep(Duration::from_secs(1)).await;
    let mut notes = Vec::new();
    let mut failures = Vec::new();
    if let Err(e) = keygate.check_running() {
        failures.push(format!("keygate stopped during the soak: {e:#}"));
    }
    let (logged, tail) = keygate.log_summary(5);
    if logged > 0 {
        notes.push(format!(
            "keygate logged {logged} line(s) at warn or above; the last:\n{tail}"
        ));
    }
    drop(keygate);
    let (stored, ledger) = {
        let url = soak.database_url.to_owned();
        tokio::task::spawn_blocking(move || {
            let stored = stored(&url, &ledger)?;
            Ok::<_, anyhow::Error>((stored, ledger))
        })
        .await??
    };
    Ok(report(
        &soak,
        header,
        &Measured {
            stats,
            samples,
            ledger,
            stored,
            elapsed,
            cold_used,
        },
        failures,
        notes,
    ))
}

fn mib(kib: f64) -> f64 {
    kib / 1024.0
}

/// Least-squares slope of (seconds, KiB), in MiB per hour.
fn slope_mib_per_hour(samples: &[(f64, u64)]) -> Option<f64> {
    if samples.len() < 3 {
        return None;
    }
    let n = samples.len() as f64;
    let mean_t = samples.iter().map(|s| s.0).sum::<f64>() / n;
    let mean_m = samples.iter().map(|s| s.1 as f64).sum::<f64>() / n;
    let cov: f64 = samples
        .iter()
        .map(|s| (s.0 - mean_t) * (s.1 as f64 - mean_m))
        .sum();
    let var: f64 = samples.iter().map(|s| (s.0 - mean_t).powi(2)).sum();
    (var > 0.0).then(|| mib(cov / var) * 3600.0)
}

/// The warm-up: the first minute, or a fifth of a shorter soak.
fn warmup_seconds(seconds: f64) -> f64 {
    (seconds / 5.0).min(60.0)
}

/// What the soak measured, for its report.
struct Measured {
    stats: Stats,
    /// keygate's `VmRSS`: seconds since the start, KiB.
    samples: Vec<(f64, u64)>,
    ledger: Ledger,
    stored: Stored,
    elapsed: f64,
    /// token_cold requests made (more than the pool: keys reused).
    cold_used: usize,
}

fn report(
    soak: &Soak<'_>,
    header: &str,
    measured: &Measured,
    mut failures: Vec<String>,
    notes: Vec<String>,
) -> Outcome {
    let Measured {
        stats,
        samples,
        ledger,
        stored,
        elapsed,
        cold_used,
    } = measured;
    let (elapsed, cold_used) = (*elapsed, *cold_used);
    let mut text = String::from(header);
    let _ = writeln!(
        text,
        "soak: {elapsed:.0} s of mixed traffic on loopback (each operation paced at its rate on \
         its own keep-alive connections; an answer may take {} s)\n",
        ANSWER_LIMIT.as_secs()
    );
    let _ = writeln!(
        text,
        "{:<13} {:<38} {:>6} {:>9} {:>8} {:>9} {:>10} {:>4} {:>6} {:>8} {:>8} {:>8}",
        "operation",
        "request",
        "rate",
        "requests",
        "per s",
        "expected",
        "unexpected",
        "5xx",
        "failed",
        "p50 ms",
        "p99 ms",
        "max ms"
    );
    let _ = writeln!(text, "{}", "-".repeat(138));
    let mut csv = String::from(
        "operation,request,planned_per_sec,connections,seconds,requests,per_sec,expected,\
         unexpected,server_errors,failed,p50_ms,p90_ms,p99_ms,max_ms\n",
    );
    let mut server_errors = 0;
    let mut unexpected = 0;
    let mut failed = 0;
    for ((op, rate, connections), s) in PLAN.iter().zip(&stats.0) {
        server_errors += s.server_errors;
        unexpected += s.unexpected_total();
        failed += s.failed;
        let _ = writeln!(
            text,
            "{:<13} {:<38} {:>6} {:>9} {:>8.1} {:>9} {:>10} {:>4} {:>6} {:>8.2} {:>8.2} {:>8.2}",
            op.name(),
            op.request(),
            rate,
            s.sent,
            s.sent as f64 / elapsed,
            s.expected,
            s.unexpected_total(),
            s.server_errors,
            s.failed,
            s.quantile_ms(0.50),
            s.quantile_ms(0.99),
            s.quantile_ms(1.0),
        );
        let _ = writeln!(
            csv,
            "{},\"{}\",{},{},{:.1},{},{:.1},{},{},{},{},{:.3},{:.3},{:.3},{:.3}",
            op.name(),
            op.request(),
            rate,
            connections,
            elapsed,
            s.sent,
            s.sent as f64 / elapsed,
            s.expected,
            s.unexpected_total(),
            s.server_errors,
            s.failed,
            s.quantile_ms(0.50),
            s.quantile_ms(0.90),
            s.quantile_ms(0.99),
            s.quantile_ms(1.0),
        );
    }
    text.push('\n');
    for (op, s) in PLAN.iter().map(|p| p.0).zip(&stats.0) {
        if let Some(problem) = &s.first_problem {
            let statuses: Vec<String> = s
                .unexpected
                .iter()
                .map(|(status, n)| format!("{n} x {status}"))
                .collect();
            let _ = writeln!(
                text,
                "{}: {} unexpected ({}), {} 5xx, {} failed; the first: {problem}",
                op.name(),
                s.unexpected_total(),
                statuses.join(", "),
                s.server_errors,
                s.failed
            );
        }
    }
    let _ = writeln!(
        text,
        "answers: {server_errors} 5xx, {unexpected} other unexpected statuses, {failed} without an answer"
    );
    if server_errors > 0 {
        failures.push(format!("{server_errors} answers were 5xx"));
    }

    // Writes: told against stored.
    let told_rotations: u64 = ledger.rotations.values().sum();
    let lost_created = (ledger.created.len() as u64).saturating_sub(stored.created);
    let lost_revoked = (ledger.revoked.len() as u64).saturating_sub(stored.revoked);
    let lost_tokens = stored
        .tokens_told_in_force
        .saturating_sub(stored.tokens_in_force);
    let lost = lost_created + stored.rotations_short + lost_revoked + lost_tokens;
    let _ = writeln!(
        text,
        "\nwrites, what clients were told against the database (read through keygate::db after \
         keygate was stopped):"
    );
    let _ = writeln!(
        text,
        "  keys created:  told {}, in the database {} (keys named \"{KEY_NAME} …\" in the database: {})",
        ledger.created.len(),
        stored.created,
        stored.soak_keys
    );
    let _ = writeln!(
        text,
        "  keys rotated:  told {told_rotations} rotations of {} keys, in the database {} (secret rows \
         beyond each key's first); keys with fewer than told: {}; keys whose current secret prefix \
         is the last one told: {} of {}",
        ledger.rotations.len(),
        stored.rotations,
        stored.rotations_short,
        stored.prefix_as_told,
        stored.created
    );
    let _ = writeln!(
        text,
        "  keys revoked:  told {}, revoked in the database {} (soak keys revoked in the database: {})",
        ledger.revoked.len(),
        stored.revoked,
        stored.soak_keys_revoked
    );
    let _ = writeln!(
        text,
        "  tokens revoked (RFC 7009): told {} ({} not yet expired), in the database's change feed {}",
        ledger.revoked_tokens.len(),
        stored.tokens_told_in_force,
        stored.tokens_in_force
    );
    let _ = writeln!(
        text,
        "  writes without an answer or answered 5xx (outcome unknown): {}",
        ledger.unanswered_writes
    );
    let _ = writeln!(text, "  lost writes: {lost}");
    if lost > 0 {
        failures.push(format!(
            "{lost} writes told to clients are not in the database"
        ));
    }
    if stored.prefix_as_told < stored.created && ledger.unanswered_writes == 0 {
        failures.push(format!(
            "{} keys' current secret prefix is not the last one told",
            stored.created - stored.prefix_as_told
        ));
    }

    // Memory.
    let mut memory_csv = String::from("seconds,vmrss_kib\n");
    for (t, kib) in samples {
        let _ = writeln!(memory_csv, "{t:.1},{kib}");
    }
    let _ = writeln!(
        text,
        "\nkeygate's resident memory (VmRSS, every {} s, {} samples):",
        MEMORY_EVERY.as_secs(),
        samples.len()
    );
    let mut checkpoints = Vec::new();
    let mut minute = 0.0;
    for (i, (t, kib)) in samples.iter().enumerate() {
        let last = i + 1 == samples.len();
        if *t >= minute || last {
            checkpoints.push(format!(
                "{}:{:02} {:.1} MiB{}",
                (*t as u64) / 60,
                (*t as u64) % 60,
                mib(*kib as f64),
                if last { " (end)" } else { "" }
            ));
            minute = (*t / 60.0).floor() * 60.0 + 60.0;
        }
    }
    let _ = writeln!(text, "  checkpoints: {}", checkpoints.join(", "));
    let warmup = warmup_seconds(elapsed);
    let after: Vec<(f64, u64)> = samples
        .iter()
        .copied()
        .filter(|(t, _)| *t >= warmup)
        .collect();
    let mean = |range: &[(f64, u64)]| {
        range.iter().map(|s| s.1 as f64).sum::<f64>() / range.len().max(1) as f64
    };
    let window = (60.0_f64).min(elapsed / 5.0);
    let first_minute: Vec<_> = samples
        .iter()
        .copied()
        .filter(|(t, _)| *t < window)
        .collect();
    let last_minute: Vec<_> = samples
        .iter()
        .copied()
        .filter(|(t, _)| *t > elapsed - window)
        .collect();
    let _ = writeln!(
        text,
        "  first {window:.0} s: mean {:.1} MiB; last {window:.0} s: mean {:.1} MiB",
        mib(mean(&first_minute)),
        mib(mean(&last_minute))
    );
    match (after.first(), after.last()) {
        (Some(&(t0, reference)), Some(&(t1, end))) if t1 > t0 => {
            let growth = end as f64 / reference as f64 - 1.0;
            let slope = slope_mib_per_hour(&after);
            let _ = writeln!(
                text,
                "  after the warm-up ({warmup:.0} s): {:.1} MiB at {t0:.0} s, {:.1} MiB at the end \
                 ({:+.1}%; bound +{:.0}%); slope {} over {:.0} s; max {:.1} MiB",
                mib(reference as f64),
                mib(end as f64),
                growth * 100.0,
                MEMORY_BOUND * 100.0,
                slope.map_or_else(|| "n/a".into(), |s| format!("{s:+.2} MiB/hour")),
                t1 - t0,
                mib(after.iter().map(|s| s.1).max().unwrap_or(0) as f64),
            );
            if growth > MEMORY_BOUND {
                failures.push(format!(
                    "resident memory grew by {:.1}% after the warm-up (bound {:.0}%)",
                    growth * 100.0,
                    MEMORY_BOUND * 100.0
                ));
            }
        }
        _ => {
            let _ = writeln!(text, "  too few samples after the warm-up to judge");
            failures.push("too few memory samples after the warm-up".into());
        }
    }
    if cold_used > soak.cold_keys.len() {
        let _ = writeln!(
            text,
            "note: the cold pool ({} keys) ran out: {} token_cold requests reused a verified key; raise --cold-keys",
            soak.cold_keys.len(),
            cold_used - soak.cold_keys.len()
        );
    }
    let _ = writeln!(
        text,
        "load average at the end: {}",
        crate::Machine::read().load
    );
    for note in notes {
        let _ = writeln!(text, "note: {note}");
    }
    if failures.is_empty() {
        let _ = writeln!(
            text,
            "soak passed: no 5xx, no lost write, memory within +{:.0}%",
            MEMORY_BOUND * 100.0
        );
    } else {
        let _ = writeln!(text, "soak FAILED: {}", failures.join("; "));
    }
    Outcome {
        text,
        csv,
        memory_csv,
        failures,
    }
}

/// Writes `soak.txt`, `soak.csv` and `soak-memory.csv` into `results`.
pub fn write(results: &Path, outcome: &Outcome) -> anyhow::Result<()> {
    for (name, content) in [
        ("soak.txt", &outcome.text),
        ("soak.csv", &outcome.csv),
        ("soak-memory.csv", &outcome.memory_csv),
    ] {
        let path = results.join(name);
        std::fs::write(&path, content)
            .with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_steady_series_has_no_slope_and_a_rising_one_has() {
        let flat: Vec<(f64, u64)> = (0..10).map(|i| (i as f64 * 5.0, 40_000)).collect();
        assert_eq!(slope_mib_per_hour(&flat), Some(0.0));
        // 1 MiB per minute.
        let rising: Vec<(f64, u64)> = (0..10)
            .map(|i| (i as f64 * 60.0, 40_000 + i * 1024))
            .collect();
        let slope = slope_mib_per_hour(&rising).unwrap();
        assert!((slope - 60.0).abs() < 1e-6, "{slope}");
        assert_eq!(slope_mib_per_hour(&flat[..2]), None);
    }

    #[test]
    fn the_token_claims_give_jti_and_expiry() {
        let claims = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(br#"{"jti":"abc","exp":1700000000}"#);
        assert_eq!(
            jti_and_expiry(&format!("e30.{claims}.sig")),
            Some(("abc".into(), 1_700_000_000))
        );
        assert_eq!(jti_and_expiry("nope"), None);
    }

    #[test]
    fn every_operation_is_planned_once() {
        for (i, (op, rate, connections)) in PLAN.iter().enumerate() {
            assert_eq!(op.index(), i);
            assert!(*rate > 0.0 && *connections > 0);
        }
    }
}

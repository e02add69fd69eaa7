//! The remote validator's scenarios: a resource server that knows only keygate's URL
//! (`keygate-bench resource-server`, see resource_server.rs) runs as a process of its own
//! beside keygate, and the harness measures
//!
//! - `remote_baseline` and `remote_validate`: that process's bare route, then its
//!   `GET /invoices` with a valid token (validated by its `RemoteValidator`), loaded like every
//!   other scenario; the ratio is to the same process's bare route;
//! - revoke to refusal: how long after keygate answers a revoke the resource server refuses
//!   the credential (told by keygate's revocation stream), for single tokens and for a whole
//!   key revoked by the CLI and through the management API.

use std::fs::File;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use base64::Engine;
use bytes::Bytes;
use hyper::StatusCode;
use hyper::header::WWW_AUTHENTICATE;
use tokio::time::{Instant, sleep};

use crate::load::{Connection, Template};
use crate::report::thousands;
use crate::server::{self, ChildGuard, FEED_POLL_MS, KeygateEnv};
use crate::{Bench, access_token, blocking, expect_ok, resource_server, seed, token_body};

/// The most time the token revokes may take together; the report says when they stopped short.
const REVOKES_WITHIN: Duration = Duration::from_secs(30);
/// How long a revoked credential may stay accepted before it counts as never refused.
const REFUSAL_LIMIT: Duration = Duration::from_secs(5);
/// The pause between two polls of the resource server.
const POLL_EVERY: Duration = Duration::from_millis(1);
/// How long one request of these scenarios may take.
const ANSWER_LIMIT: Duration = Duration::from_secs(10);

/// The resource server process, killed when dropped.
struct ResourceServer {
    child: ChildGuard,
    addr: SocketAddr,
    log: PathBuf,
}

impl ResourceServer {
    /// Starts it on a free loopback port, following keygate's revocation stream with
    /// `follower`, and waits for its bare route.
    async fn start(
        keygate: SocketAddr,
        follower: &Key,
        workdir: &Path,
    ) -> anyhow::Result<ResourceServer> {
        let addr: SocketAddr = ([127, 0, 0, 1], server::free_port()?).into();
        let log = workdir.join("resource-server.log");
        let out = File::create(&log)?;
        let mut command = Command::new(std::env::current_exe()?);
        // Configured only by what is set here, as the example is.
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("KEYGATE_") {
                command.env_remove(&name);
            }
        }
        let child = command
            .arg(resource_server::SUBCOMMAND)
            .current_dir(workdir)
            .env("KEYGATE_URL", format!("http://{keygate}"))
            .env("BIND", addr.to_string())
            .env("KEYGATE_CLIENT_ID", &follower.client_id)
            .env("KEYGATE_CLIENT_SECRET", &follower.secret)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .context("cannot start the resource server")?;
        let started = Instant::now();
        let mut api = ResourceServer {
            child: ChildGuard::new(child, "the resource server"),
            addr,
            log,
        };
        server::wait_for(&mut api.child, addr, "/bare", Duration::from_secs(60))
            .await
            .with_context(|| {
                format!(
                    "the resource server did not start; its log:\n{}",
                    api.log_summary(20).1
                )
            })?;
        eprintln!(
            "  the resource server answered /bare {:.1} s after its start, at http://{addr}",
            started.elapsed().as_secs_f64()
        );
        Ok(api)
    }

    /// Lines it logged (at `warn` and above) and the last `n` of them.
    fn log_summary(&self, n: usize) -> (usize, String) {
        let lines: Vec<String> = server::read_lines(&self.log)
            .into_iter()
            .filter(|l| !l.starts_with("resource server listening on"))
            .collect();
        (
            lines.len(),
            lines[lines.len().saturating_sub(n)..].join("\n"),
        )
    }
}

/// A key made for these scenarios.
struct Key {
    client_id: String,
    secret: String,
}

impl Key {
    /// `keygate api-keys create` in the default organization, owned by the admin.
    fn create(env: &KeygateEnv, algorithm: &str, name: &str, scopes: &str) -> anyhow::Result<Key> {
        let created = env.cli(
            algorithm,
            &[
                "api-keys",
                "create",
                "--name",
                name,
                "--scopes",
                scopes,
                "--owner",
                seed::ADMIN_EMAIL,
                "--json",
            ],
        )?;
        let field = |name: &str| {
            created[name]
                .as_str()
                .map(str::to_owned)
                .with_context(|| format!("api-keys create printed no {name}"))
        };
        Ok(Key {
            client_id: field("client_id")?,
            secret: field("client_secret")?,
        })
    }

    /// `Authorization: Basic …` with this key's credentials (RFC 6749 section 2.3.1).
    fn basic(&self) -> String {
        let pair = format!("{}:{}", self.client_id, self.secret);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(pair)
        )
    }
}

/// What the remote scenarios need of the run.
pub struct Remote<'a> {
    pub env: &'a Arc<KeygateEnv>,
    pub algorithm: &'a str,
    pub keygate: SocketAddr,
    /// The warm key (client_id, secret): its token is what `remote_validate` sends.
    pub warm: (&'a str, &'a str),
    /// The management key (client_id, secret): it revokes a key through the API.
    pub management: (&'a str, &'a str),
    /// How many tokens to revoke, one after the other.
    pub revokes: usize,
}

impl Remote<'_> {
    /// A token for (client_id, secret).
    async fn token(&self, what: &str, client_id: &str, secret: &str) -> anyhow::Result<String> {
        let request = Template::post(
            self.keygate,
            "/v1/token",
            "application/json",
            token_body(client_id, secret),
        );
        access_token(&expect_ok(self.keygate, what, &request).await?)
    }

    /// Runs the scenarios (rows go to `bench`); returns the report's lines.
    pub async fn measure(&self, bench: &mut Bench) -> anyhow::Result<Vec<String>> {
        eprintln!("remote validator: keys for it, then the resource server as its own process...");
        let (follower, tokens_key, cli_key, api_key) = {
            let (env, algorithm) = (self.env.clone(), self.algorithm.to_owned());
            blocking(move || {
                let make = |name: &str, scopes: &str| Key::create(&env, &algorithm, name, scopes);
                Ok((
                    make("bench resource server", "revocations:read")?,
                    make("bench revoked tokens", "invoices:read")?,
                    make("bench key revoked by the CLI", "invoices:read")?,
                    make("bench key revoked through the API", "invoices:read")?,
                ))
            })
            .await?
        };
        let mut api = ResourceServer::start(self.keygate, &follower, &self.env.workdir).await?;
        let mut lines = vec![self.throughput(bench, api.addr).await?];
        let first_row = bench.rows.len() - 2;

        let mut conn = Connection::open(api.addr).await?;
        lines.push(format!(
            "revoke to refusal over the revocation stream (keygate reads its change feed every \
             {FEED_POLL_MS} ms; each revoke at a random moment of that interval; the resource \
             server polled every {} ms):",
            POLL_EVERY.as_millis()
        ));
        lines.push(self.token_revokes(&mut conn, &tokens_key).await?);

        let (env, algorithm) = (self.env.clone(), self.algorithm.to_owned());
        let client_id = cli_key.client_id.clone();
        let by_cli = async move {
            blocking(move || {
                env.cli(&algorithm, &["api-keys", "revoke", &client_id, "--json"])
                    .map(drop)
            })
            .await
        };
        let latency = self.key_revoke(&mut conn, &cli_key, by_cli).await?;
        lines.push(format!(
            "  a whole key, `keygate api-keys revoke` (from the command's exit): {}",
            latency_text(latency)
        ));

        let management = self
            .token(
                "token for the management key",
                self.management.0,
                self.management.1,
            )
            .await?;
        let revoke = Template::post(
            self.keygate,
            &format!("/v1/api-keys/{}/revoke", api_key.client_id),
            "application/json",
            Bytes::new(),
        )
        .bearer(&management);
        let keygate = self.keygate;
        let by_api = async move {
            expect_ok(keygate, "POST /v1/api-keys/{client_id}/revoke", &revoke)
                .await
                .map(drop)
        };
        let latency = self.key_revoke(&mut conn, &api_key, by_api).await?;
        lines.push(format!(
            "  a whole key, `POST /v1/api-keys/{{client_id}}/revoke` (from its answer): {}",
            latency_text(latency)
        ));
        drop(conn);

        api.child
            .check_running()
            .context("the resource server stopped during the run")?;
        if let Some(kib) = server::rss_kib(api.child.pid()) {
            let mib = kib as f64 / 1024.0;
            for row in &mut bench.rows[first_row..] {
                row.rss_mib = Some(mib);
            }
            lines.push(format!(
                "resource server resident memory after its run: {mib:.1} MiB (VmRSS)"
            ));
        }
        let (logged, tail) = api.log_summary(5);
        if logged > 0 {
            bench.notes.push(format!(
                "the resource server logged {logged} line(s) at warn or above; the last:\n{tail}"
            ));
        }
        for line in &lines {
            eprintln!("  {line}");
        }
        Ok(lines)
    }

    /// `remote_baseline` (`GET /bare`) and `remote_validate` (`GET /invoices` with the warm
    /// key's token), each row's ratio to the first; the report's line comparing them.
    async fn throughput(&self, bench: &mut Bench, api: SocketAddr) -> anyhow::Result<String> {
        let token = self
            .token("token for the warm key", self.warm.0, self.warm.1)
            .await?;
        let invoices = Template::get(api, "/invoices").bearer(&token);
        let (status, _, body) =
            crate::load::once_with_headers(api, invoices.request(), ANSWER_LIMIT).await?;
        if status != StatusCode::OK {
            bail!(
                "the resource server answered GET /invoices with {status}: {}",
                String::from_utf8_lossy(&body)
            );
        }
        let bare = bench
            .measure(
                "remote_baseline",
                self.algorithm,
                api,
                Template::get(api, "/bare").repeat(),
            )
            .await;
        let validated = bench
            .measure("remote_validate", self.algorithm, api, invoices.repeat())
            .await;
        let base = bare.requests_per_second();
        let ratio = (base > 0.0).then(|| validated.requests_per_second() / base);
        let n = bench.rows.len();
        bench.rows[n - 2].ratio = (base > 0.0).then_some(1.0);
        bench.rows[n - 1].ratio = ratio;
        let times = |a: f64, b: f64| {
            if b > 0.0 {
                format!("x{:.2}", a / b)
            } else {
                "-".into()
            }
        };
        let (p50, p50_base) = (validated.quantile_ms(0.50), bare.quantile_ms(0.50));
        let (p99, p99_base) = (validated.quantile_ms(0.99), bare.quantile_ms(0.99));
        Ok(format!(
            "remote validator (RemoteValidator in a process of its own): GET /invoices with a valid \
             token at {} of the same process's bare route ({}/s against {}/s); p50 {p50:.2} ms \
             against {p50_base:.2} ms ({}), p99 {p99:.2} ms against {p99_base:.2} ms ({})",
            ratio.map_or_else(|| "-".into(), |r| format!("{r:.2}")),
            thousands(validated.requests_per_second()),
            thousands(base),
            times(p50, p50_base),
            times(p99, p99_base),
        ))
    }

    /// Up to `revokes` times (within [`REVOKES_WITHIN`]): a fresh token, accepted by the
    /// resource server, revoked at keygate with its key's own credentials (RFC 7009), then
    /// the time from keygate's answer to the resource server's first 401.
    async fn token_revokes(&self, conn: &mut Connection, key: &Key) -> anyhow::Result<String> {
        let began = Instant::now();
        let mut latencies = Vec::with_capacity(self.revokes);
        let mut never = 0;
        while latencies.len() + never < self.revokes && began.elapsed() < REVOKES_WITHIN {
            let token = self
                .token(
                    "token for the revoked-tokens key",
                    &key.client_id,
                    &key.secret,
                )
                .await?;
            let check = Template::get(conn.addr(), "/invoices").bearer(&token);
            accepted(conn, &check).await?;
            sleep(random_phase()).await;
            let revoke = Template::post(
                self.keygate,
                "/v1/revoke",
                "application/x-www-form-urlencoded",
                // A JWT is base64url and dots: nothing to escape.
                Bytes::from(format!("token={token}&token_type_hint=access_token")),
            )
            .authorization(&key.basic());
            expect_ok(self.keygate, "POST /v1/revoke", &revoke).await?;
            match refused_after(conn, &check, Instant::now()).await? {
                Some(latency) => latencies.push(latency),
                None => never += 1,
            }
        }
        let done = latencies.len() + never;
        let mut line = format!(
            "  a token, `POST /v1/revoke`, {done} times: {}",
            summary(&mut latencies)
        );
        if never > 0 {
            line.push_str(&format!(
                "; {never} still accepted {} s after the revoke",
                REFUSAL_LIMIT.as_secs()
            ));
        }
        if done < self.revokes {
            line.push_str(&format!(
                " (stopped after {} s, {done} of {})",
                REVOKES_WITHIN.as_secs(),
                self.revokes
            ));
        }
        Ok(line)
    }

    /// A token of `key`, accepted by the resource server; `revoke` (which revokes the whole
    /// key); the time from its end to the resource server's first 401 (`None`: not refused
    /// within [`REFUSAL_LIMIT`]).
    async fn key_revoke(
        &self,
        conn: &mut Connection,
        key: &Key,
        revoke: impl Future<Output = anyhow::Result<()>>,
    ) -> anyhow::Result<Option<Duration>> {
        let token = self
            .token("token for a key to revoke", &key.client_id, &key.secret)
            .await?;
        let check = Template::get(conn.addr(), "/invoices").bearer(&token);
        accepted(conn, &check).await?;
        sleep(random_phase()).await;
        revoke.await?;
        refused_after(conn, &check, Instant::now()).await
    }
}

/// Fails unless the resource server answers `check` with 200.
async fn accepted(conn: &mut Connection, check: &Template) -> anyhow::Result<()> {
    let (status, _, body) = conn.send(check.request(), ANSWER_LIMIT).await?;
    if status != StatusCode::OK {
        bail!(
            "the resource server refused a fresh token ({status}): {}",
            String::from_utf8_lossy(&body)
        );
    }
    Ok(())
}

/// Polls the resource server with `check` until it answers 401 for a revoked credential;
/// the time from `revoked` to that answer, or `None` after [`REFUSAL_LIMIT`].
async fn refused_after(
    conn: &mut Connection,
    check: &Template,
    revoked: Instant,
) -> anyhow::Result<Option<Duration>> {
    loop {
        let (status, headers, body) = conn.send(check.request(), ANSWER_LIMIT).await?;
        let at = Instant::now();
        match status {
            StatusCode::OK => {}
            StatusCode::UNAUTHORIZED => {
                let challenge = headers
                    .get(WWW_AUTHENTICATE)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                if !challenge.contains("revoked") {
                    bail!(
                        "the resource server refused the token, but not as revoked: {challenge:?}"
                    );
                }
                return Ok(Some(at.duration_since(revoked)));
            }
            _ => bail!(
                "the resource server answered {status}: {}",
                String::from_utf8_lossy(&body)
            ),
        }
        if at.duration_since(revoked) >= REFUSAL_LIMIT {
            return Ok(None);
        }
        sleep(POLL_EVERY).await;
    }
}

/// A random wait shorter than keygate's feed poll interval, so that revokes land at every
/// moment of it rather than just after a poll (where the loop's rhythm would put them).
fn random_phase() -> Duration {
    let bytes: [u8; 8] = server::random_bytes(8)
        .try_into()
        .expect("eight bytes were asked for");
    Duration::from_micros(u64::from_le_bytes(bytes) % (FEED_POLL_MS * 1000))
}

/// The `q` quantile of sorted samples, interpolated between the two nearest ranks.
fn quantile(sorted: &[Duration], q: f64) -> Duration {
    match sorted.len() {
        0 => Duration::ZERO,
        n => {
            let rank = q.clamp(0.0, 1.0) * (n - 1) as f64;
            let (low, high) = (rank.floor() as usize, rank.ceil() as usize);
            let weight = rank - low as f64;
            sorted[low].mul_f64(1.0 - weight) + sorted[high].mul_f64(weight)
        }
    }
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// p50, p90, p99, max and min of the latencies (sorted in place).
fn summary(latencies: &mut [Duration]) -> String {
    if latencies.is_empty() {
        return "none refused".into();
    }
    latencies.sort();
    format!(
        "p50 {}, p90 {}, p99 {}, max {}, min {}",
        ms(quantile(latencies, 0.50)),
        ms(quantile(latencies, 0.90)),
        ms(quantile(latencies, 0.99)),
        ms(latencies[latencies.len() - 1]),
        ms(latencies[0]),
    )
}

fn latency_text(latency: Option<Duration>) -> String {
    latency.map_or_else(
        || {
            format!(
                "still accepted {} s after the revoke",
                REFUSAL_LIMIT.as_secs()
            )
        },
        ms,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_interpolate_between_ranks() {
        let sorted: Vec<Duration> = (1..=5).map(|i| Duration::from_millis(i * 10)).collect();
        assert_eq!(quantile(&sorted, 0.0), Duration::from_millis(10));
        assert_eq!(quantile(&sorted, 0.5), Duration::from_millis(30));
        assert_eq!(quantile(&sorted, 1.0), Duration::from_millis(50));
        assert_eq!(quantile(&sorted, 0.875), Duration::from_millis(45));
        assert_eq!(quantile(&[], 0.5), Duration::ZERO);
    }

    #[test]
    fn revokes_land_anywhere_in_a_feed_poll() {
        for _ in 0..100 {
            assert!(random_phase() < Duration::from_millis(FEED_POLL_MS));
        }
    }
}

//! keygate-bench: builds and starts keygate (release, rate limits off) on loopback, seeds it,
//! measures its routes with a closed-loop load generator, optionally measures panva's
//! oidc-provider the same way, measures a resource server that validates keygate's tokens
//! remotely (this binary's hidden `resource-server` subcommand, as a process of its own), and
//! reports a table, `bench/results/latest.csv` and `bench/results/latest.png`. See
//! bench/README.md.

mod bcrypts;
mod load;
mod peer;
mod remote;
mod report;
mod resource_server;
mod seed;
mod server;
mod soak;
mod webhooks;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};
use base64::Engine;
use bytes::Bytes;
use clap::Parser;
use serde_json::json;

use load::{MakeRequest, Measured, Phase, Template};
use report::Row;
use server::{Database, Keygate, KeygateEnv};

const ALGORITHMS: [&str; 4] = ["ES256", "EdDSA", "RS256", "HS256"];

/// Benchmarks keygate (and, with --peer, oidc-provider) on this machine's loopback.
#[derive(Debug, Parser)]
#[command(name = "keygate-bench", version)]
struct Args {
    /// Run against a fresh PostgreSQL database `keygate_bench_<random>`, created through this
    /// URL and dropped at the end [default: a SQLite file in a temp dir]
    #[arg(long, value_name = "URL")]
    postgres: Option<String>,
    /// Keys owned by the admin (the list's table); 1000000 shows throughput at scale
    #[arg(long, value_name = "N", default_value_t = 100)]
    keys: u64,
    /// Keys of the cold pool: token_cold uses each once
    #[arg(long, value_name = "N", default_value_t = 5_000)]
    cold_keys: u64,
    /// Measured seconds per scenario
    #[arg(long, value_name = "S", default_value_t = 10)]
    seconds: u64,
    /// Warm-up seconds before each measurement (not counted)
    #[arg(long, value_name = "S", default_value_t = 1)]
    warmup: u64,
    /// Keep-alive connections per generator
    #[arg(long, value_name = "C", default_value_t = 64)]
    connections: usize,
    /// Threads of the load generator
    #[arg(long, value_name = "T", default_value_t = 2)]
    threads: usize,
    /// Also measure panva's oidc-provider (Node) issuing ES256 JWTs: peer_token
    #[arg(long)]
    peer: bool,
    /// Signing algorithms: the first runs every scenario, the others token_warm and validate
    #[arg(
        long,
        value_name = "LIST",
        value_delimiter = ',',
        default_value = "ES256,EdDSA,RS256"
    )]
    algorithms: Vec<String>,
    /// Only the remote validator's scenarios (with the first algorithm): its requests/s, and
    /// revoke to refusal over the revocation stream; writes bench/results/remote.*
    #[arg(long, conflicts_with = "peer")]
    remote_only: bool,
    /// Tokens revoked one after the other to time revoke to refusal (at most 30 s in all)
    #[arg(long, value_name = "N", default_value_t = 50)]
    revokes: usize,
    /// Only the soak: mixed traffic for this many seconds (at least 300 for the documented
    /// run), then no 5xx, no lost write and flat memory are checked; writes
    /// bench/results/soak.*
    #[arg(long, value_name = "SECONDS", conflicts_with_all = ["peer", "remote_only"])]
    soak: Option<u64>,
    /// Herd: first token requests of a key never verified, sent at once (0: skip)
    #[arg(long, value_name = "N", default_value_t = 64)]
    herd: usize,
    /// Renewals: clients renewing on a time-compressed schedule, each with a key of its own
    /// (0: skip)
    #[arg(long, value_name = "N", default_value_t = 32)]
    renewal_keys: usize,
    /// Renewals: seconds between a client's token requests (a token's 900 s, compressed)
    #[arg(long, value_name = "S", default_value_t = 3)]
    renewal_seconds: u64,
    /// Renewals: renewals per client after its first request
    #[arg(long, value_name = "N", default_value_t = 8)]
    renewal_rounds: u32,
}

fn main() -> ExitCode {
    // The harness runs itself as the remote scenarios' resource server, in a process of its own.
    if std::env::args().nth(1).as_deref() == Some(resource_server::SUBCOMMAND) {
        return resource_server::main();
    }
    let mut args = Args::parse();
    if let Err(e) = check(&mut args) {
        eprintln!("error: {e:#}");
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.max(1))
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // On Ctrl-C the run is dropped: its guards kill keygate (and node), drop the PostgreSQL
    // database and remove the temp dir.
    let code = runtime.block_on(async {
        tokio::select! {
            result = run(args) => match result {
                Ok(()) => 0,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    1
                }
            },
            _ = tokio::signal::ctrl_c() => {
                eprintln!("interrupted: stopping");
                130
            }
        }
    });
    runtime.shutdown_timeout(Duration::from_secs(2));
    ExitCode::from(code)
}

fn check(args: &mut Args) -> anyhow::Result<()> {
    let mut algorithms: Vec<String> = Vec::new();
    for a in &args.algorithms {
        let a = a.trim();
        let known = ALGORITHMS
            .iter()
            .find(|k| k.eq_ignore_ascii_case(a))
            .with_context(|| format!("unknown algorithm {a:?} (use {})", ALGORITHMS.join(",")))?;
        if !algorithms.iter().any(|x| x == known) {
            algorithms.push((*known).to_owned());
        }
    }
    if algorithms.is_empty() {
        bail!("--algorithms needs at least one algorithm");
    }
    if args.remote_only {
        algorithms.truncate(1);
    }
    args.algorithms = algorithms;
    if args.seconds == 0 || args.seconds > 3600 {
        bail!("--seconds must be from 1 to 3600");
    }
    if args.warmup > 600 {
        bail!("--warmup must be at most 600");
    }
    if args.connections == 0 || args.connections > 4096 {
        bail!("--connections must be from 1 to 4096");
    }
    if args.revokes == 0 || args.revokes > 1000 {
        bail!("--revokes must be from 1 to 1000");
    }
    if let Some(seconds) = args.soak {
        if !(10..=86_400).contains(&seconds) {
            bail!("--soak must be from 10 to 86400 seconds (at least 300 for the documented run)");
        }
        if seconds < 300 {
            eprintln!("note: a soak shorter than 300 s is a trial, not the documented run");
        }
    }
    if args.herd > 1024 {
        bail!("--herd must be at most 1024");
    }
    if args.renewal_keys > 1000 {
        bail!("--renewal-keys must be at most 1000");
    }
    if !(1..=60).contains(&args.renewal_seconds) {
        bail!("--renewal-seconds must be from 1 to 60");
    }
    if args.renewal_rounds == 0 || args.renewal_rounds > 100 {
        bail!("--renewal-rounds must be from 1 to 100");
    }
    Ok(())
}

/// `cache.verified_secret_seconds` for a renewal period, compressed as a token's 900 s is:
/// keygate's default (3600 s, four lifetimes) and its former default (300 s, a third of one,
/// at least a second).
fn renewal_cache_seconds(period: u64) -> [(u64, &'static str); 2] {
    [
        (
            period * 3600 / 900,
            "3600 s of a 900 s token, keygate's default",
        ),
        (
            ((period * 300) as f64 / 900.0).round().max(1.0) as u64,
            "300 s of a 900 s token, the former default",
        ),
    ]
}

/// The repository root: the parent of this package.
fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("bench/ has a parent")
        .to_owned()
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
) -> anyhow::Result<T> {
    tokio::task::spawn_blocking(work).await?
}

/// `access_token` of a token answer.
pub(crate) fn access_token(body: &[u8]) -> anyhow::Result<String> {
    let answer: serde_json::Value =
        serde_json::from_slice(body).context("the token answer is not JSON")?;
    answer["access_token"]
        .as_str()
        .map(str::to_owned)
        .context("the token answer has no access_token")
}

/// The `alg` of a JWT's header.
pub(crate) fn jwt_alg(token: &str) -> anyhow::Result<String> {
    let header = token.split('.').next().unwrap_or("");
    let header = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header)
        .context("the access token is not a JWT")?;
    let header: serde_json::Value = serde_json::from_slice(&header)?;
    header["alg"]
        .as_str()
        .map(str::to_owned)
        .context("the access token's header has no alg")
}

/// The machine, for the report.
struct Machine {
    cpus: usize,
    model: String,
    memory: String,
    load: String,
}

impl Machine {
    fn read() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let model = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .map(|v| v.trim_start_matches([' ', '\t', ':']).trim().to_owned())
            .unwrap_or_else(|| "unknown CPU".into());
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let memory = meminfo
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map_or_else(
                || "unknown".into(),
                |kib| format!("{:.1} GiB", kib / 1024.0 / 1024.0),
            );
        let load = std::fs::read_to_string("/proc/loadavg")
            .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
            .unwrap_or_default();
        Machine {
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            model,
            memory,
            load,
        }
    }
}

/// The command as typed, with a PostgreSQL password hidden.
fn command_line() -> String {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .map(|a| quote(&redact(&a)))
        .collect();
    if args.is_empty() {
        "cargo run --release -p keygate-bench".into()
    } else {
        format!("cargo run --release -p keygate-bench -- {}", args.join(" "))
    }
}

fn redact(arg: &str) -> String {
    if let Some((scheme, rest)) = arg.split_once("://")
        && let Some((userinfo, host)) = rest.split_once('@')
        && let Some((user, _password)) = userinfo.split_once(':')
    {
        return format!("{scheme}://{user}:***@{host}");
    }
    arg.to_owned()
}

fn quote(arg: &str) -> String {
    let plain = !arg.is_empty()
        && arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=,@%+".contains(c));
    if plain {
        arg.to_owned()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

/// The cold pool: every request a key not used before (while the pool lasts).
struct ColdPool {
    ids: Vec<String>,
    secret: String,
    next: AtomicUsize,
}

impl ColdPool {
    fn make(self: &Arc<Self>, template: Template) -> MakeRequest {
        let pool = self.clone();
        Arc::new(move || {
            let i = pool.next.fetch_add(1, Ordering::Relaxed);
            let id = &pool.ids[i % pool.ids.len()];
            let body = json!({ "client_id": id, "client_secret": pool.secret }).to_string();
            template.with_body(Bytes::from(body)).request()
        })
    }

    fn take_one(&self) -> &str {
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        &self.ids[i % self.ids.len()]
    }

    /// Requests that reused a key (whose secret keygate had cached by then).
    fn reused(&self) -> usize {
        self.next
            .load(Ordering::Relaxed)
            .saturating_sub(self.ids.len())
    }
}

/// Runs phases against one server and collects rows.
struct Bench {
    phase: Phase,
    backend: String,
    keys: u64,
    rows: Vec<Row>,
    baseline: Option<f64>,
    notes: Vec<String>,
    /// Lines of the one-shot scenarios (herd, renewals) for the report.
    lines: Vec<String>,
    /// First token requests the herd sends at once (0: no herd).
    herd: usize,
}

impl Bench {
    fn row(&self, scenario: &str, algorithm: &str, m: &Measured, connections: usize) -> Row {
        let rps = m.requests_per_second();
        Row {
            scenario: scenario.to_owned(),
            algorithm: algorithm.to_owned(),
            backend: self.backend.clone(),
            keys: self.keys,
            connections,
            seconds: m.seconds,
            ok: m.ok,
            errors: m.errors,
            requests_per_second: rps,
            p50_ms: m.quantile_ms(0.50),
            p90_ms: m.quantile_ms(0.90),
            p99_ms: m.quantile_ms(0.99),
            max_ms: m.quantile_ms(1.0),
            ratio: self.baseline.map(|b| rps / b),
            rss_mib: None,
        }
    }

    fn push(&mut self, row: Row, m: &Measured) {
        eprintln!(
            "  {:<28} {:>10}/s  p50 {:.2} ms  p99 {:.2} ms  errors {}{}",
            row.scenario,
            report::thousands(row.requests_per_second),
            row.p50_ms,
            row.p99_ms,
            row.errors,
            m.first_error
                .as_ref()
                .map_or_else(String::new, |e| format!(" (first: {e})")),
        );
        self.rows.push(row);
    }

    async fn measure(
        &mut self,
        scenario: &str,
        algorithm: &str,
        addr: std::net::SocketAddr,
        make: MakeRequest,
    ) -> Measured {
        self.measure_with(self.phase, scenario, algorithm, addr, make)
            .await
    }

    /// [`Bench::measure`] on one connection: each request's latency is its own service time.
    async fn measure_alone(
        &mut self,
        scenario: &str,
        algorithm: &str,
        addr: std::net::SocketAddr,
        make: MakeRequest,
    ) -> Measured {
        let phase = Phase {
            connections: 1,
            ..self.phase
        };
        self.measure_with(phase, scenario, algorithm, addr, make)
            .await
    }

    async fn measure_with(
        &mut self,
        phase: Phase,
        scenario: &str,
        algorithm: &str,
        addr: std::net::SocketAddr,
        make: MakeRequest,
    ) -> Measured {
        let m = load::run(addr, make, phase).await;
        let row = self.row(scenario, algorithm, &m, phase.connections);
        self.push(row, &m);
        // Let the server finish what the phase left (write-behind, queues) before the next.
        tokio::time::sleep(Duration::from_millis(500)).await;
        m
    }
}

/// One request that must answer 2xx; returns the body.
async fn expect_ok(addr: std::net::SocketAddr, what: &str, t: &Template) -> anyhow::Result<Bytes> {
    let (status, body) = load::once(addr, t.request(), Duration::from_secs(30)).await?;
    if !status.is_success() {
        bail!(
            "{what}: keygate answered {status}: {}",
            String::from_utf8_lossy(&body)
        );
    }
    Ok(body)
}

fn token_body(client_id: &str, secret: &str) -> Bytes {
    Bytes::from(json!({ "client_id": client_id, "client_secret": secret }).to_string())
}

async fn run(args: Args) -> anyhow::Result<()> {
    let root = repo_root();
    let results = root.join("bench/results");
    std::fs::create_dir_all(&results)?;
    let machine = Machine::read();
    let command = command_line();
    let mut header = String::new();
    header.push_str(&format!("command: {command}\n"));
    header.push_str(&format!(
        "machine: {} x {} ({} memory), load average at start {}\n",
        machine.cpus, machine.model, machine.memory, machine.load
    ));
    eprint!("{header}");

    let binary = {
        let root = root.clone();
        blocking(move || server::build_keygate(&root)).await?
    };
    let workdir = tempfile::Builder::new()
        .prefix("keygate-bench-")
        .tempdir()
        .context("cannot make a temp dir")?;
    let database = match &args.postgres {
        Some(url) => Database::postgres(url)?,
        None => Database::sqlite(workdir.path()),
    };
    let backend = database.backend().to_owned();
    let env = Arc::new(KeygateEnv::new(binary, database.url(), workdir.path()));
    let primary = args.algorithms[0].clone();

    // Seed: the users through the CLI, the keys in bulk, the management key through the CLI.
    eprintln!(
        "seeding {backend}: {} listable keys, {} cold keys, 1 warm key...",
        args.keys, args.cold_keys
    );
    let seeded = {
        let (env, primary, url) = (env.clone(), primary.clone(), database.url().to_owned());
        let (keys, cold) = (args.keys, args.cold_keys);
        blocking(move || {
            let admin = env.cli(
                &primary,
                &[
                    "users",
                    "create",
                    "--email",
                    seed::ADMIN_EMAIL,
                    "--admin",
                    "--json",
                ],
            )?;
            env.cli(
                &primary,
                &[
                    "users",
                    "create",
                    "--email",
                    seed::COLD_OWNER_EMAIL,
                    "--permissions",
                    "invoices:read",
                    "--json",
                ],
            )?;
            let password = admin["password"]
                .as_str()
                .context("users create printed no password")?
                .to_owned();
            Ok::<_, anyhow::Error>((seed::seed(&url, keys, cold)?, password))
        })
        .await?
    };
    let (seeded, admin_password) = seeded;
    let seed_seconds = seeded.elapsed.as_secs_f64();
    let seed_line = format!(
        "seeded {} keys in {seed_seconds:.1} s ({:.0} keys/s), one shared bcrypt-{} secret\n",
        seeded.inserted,
        seeded.inserted as f64 / seed_seconds.max(1e-9),
        seed::BCRYPT_COST
    );
    eprint!("{seed_line}");
    header.push_str(&seed_line);
    let management = {
        let (env, primary) = (env.clone(), primary.clone());
        blocking(move || {
            env.cli(
                &primary,
                &[
                    "api-keys",
                    "create",
                    "--name",
                    "bench management",
                    "--scopes",
                    "api_keys:read,api_keys:write,invoices:read,webhooks:manage",
                    "--owner",
                    seed::ADMIN_EMAIL,
                    "--json",
                ],
            )
        })
        .await?
    };
    let management_id = management["client_id"]
        .as_str()
        .context("api-keys create printed no client_id")?
        .to_owned();
    let management_secret = management["client_secret"]
        .as_str()
        .context("api-keys create printed no client_secret")?
        .to_owned();

    let phase = Phase {
        connections: args.connections,
        warmup: Duration::from_secs(args.warmup),
        duration: Duration::from_secs(args.seconds),
    };
    let cold = Arc::new(ColdPool {
        ids: seeded.cold.clone(),
        secret: seeded.secret.clone(),
        next: AtomicUsize::new(0),
    });
    if let Some(seconds) = args.soak {
        let outcome = run_soak(
            seconds,
            &env,
            &primary,
            &database,
            &seeded,
            &cold,
            (&management_id, &management_secret),
            &header,
        )
        .await?;
        println!("\n{}", outcome.text);
        soak::write(&results, &outcome)?;
        drop(env);
        drop(database);
        drop(workdir);
        if !outcome.failures.is_empty() {
            bail!("the soak failed: {}", outcome.failures.join("; "));
        }
        return Ok(());
    }
    let mut bench = Bench {
        phase,
        backend: backend.clone(),
        keys: args.keys,
        rows: Vec::new(),
        baseline: None,
        notes: Vec::new(),
        lines: Vec::new(),
        herd: args.herd,
    };
    let mut notes: Vec<String> = Vec::new();
    let mut rss_mib_after: Vec<(String, f64)> = Vec::new();
    let mut remote_lines: Vec<String> = Vec::new();

    for (i, algorithm) in args.algorithms.iter().enumerate() {
        if i > 0 {
            // Rotate while stopped. No keygate has started with this algorithm, so no `next`
            // key of it is published yet: the first rotation activates the published key of
            // the previous algorithm and publishes one of this algorithm, which the second
            // makes active (docs/configuration.md, "Changing the signing algorithm").
            let (env, algorithm) = (env.clone(), algorithm.clone());
            blocking(move || {
                for _ in 0..2 {
                    env.cli(&algorithm, &["signing-keys", "rotate", "--json"])?;
                }
                Ok(())
            })
            .await?;
        }
        eprintln!("starting keygate ({algorithm}, {backend})...");
        let mut keygate = env.start(algorithm).await?;
        let first_row = bench.rows.len();
        if !args.remote_only {
            measure_keygate(
                &mut bench,
                &mut keygate,
                algorithm,
                i == 0,
                &seeded,
                &cold,
                &Logins {
                    management: (&management_id, &management_secret),
                    operator: (seed::ADMIN_EMAIL, &admin_password),
                },
            )
            .await?;
            keygate
                .check_running()
                .context("keygate stopped during the run")?;
            if let Some(kib) = keygate.rss_kib() {
                let mib = kib as f64 / 1024.0;
                rss_mib_after.push((algorithm.clone(), mib));
                for row in &mut bench.rows[first_row..] {
                    row.rss_mib = Some(mib);
                }
            }
        }
        if i == 0 {
            // The remote validator: a resource server of its own beside this keygate.
            remote_lines = remote::Remote {
                env: &env,
                algorithm,
                keygate: keygate.addr,
                warm: (&seeded.warm, &seeded.secret),
                management: (&management_id, &management_secret),
                revokes: args.revokes,
            }
            .measure(&mut bench)
            .await?;
            keygate
                .check_running()
                .context("keygate stopped during the remote scenarios")?;
        }
        let (lines, tail) = keygate.log_summary(5);
        if lines > 0 {
            notes.push(format!(
                "keygate ({algorithm}) logged {lines} line(s) at warn or above; the last:\n{tail}"
            ));
        }
        drop(keygate);
        if i == 0 && !args.remote_only && args.renewal_keys > 0 {
            measure_renewals(&mut bench, &mut notes, &env, algorithm, &cold, &args).await?;
        }
    }
    if cold.reused() > 0 {
        notes.push(format!(
            "the cold pool ({} keys) ran out: {} requests reused a key keygate had cached; raise --cold-keys",
            cold.ids.len(),
            cold.reused()
        ));
    }

    let mut peer_lines = Vec::new();
    if args.peer {
        let peer_dir = root.join("bench/peer");
        {
            let dir = peer_dir.clone();
            blocking(move || peer::install(&dir)).await?;
        }
        eprintln!("starting oidc-provider (node)...");
        let peer = peer::start(&peer_dir, workdir.path()).await?;
        let m = load::run(peer.addr, peer.make(), phase).await;
        let mut row = bench.row("peer_token", "ES256", &m, phase.connections);
        row.backend = "oidc-provider".into();
        row.keys = 1;
        row.rss_mib = server::rss_kib(peer.pid).map(|k| k as f64 / 1024.0);
        let peer_row = row.clone();
        bench.push(row, &m);
        drop(peer);
        if let Some(warm) = bench
            .rows
            .iter()
            .find(|r| r.scenario == "token_warm" && r.algorithm == "ES256")
        {
            peer_lines.push(format!(
                "keygate token_warm (ES256) / peer_token: throughput x{:.2}, p99 x{:.3} ({:.2} ms vs {:.2} ms)",
                warm.requests_per_second / peer_row.requests_per_second.max(1e-9),
                warm.p99_ms / peer_row.p99_ms.max(1e-9),
                warm.p99_ms,
                peer_row.p99_ms,
            ));
        }
    }

    // The report
    let table = report::table(&bench.rows);
    let mut text = String::new();
    text.push_str(&header);
    text.push('\n');
    text.push_str(&table);
    text.push('\n');
    for (algorithm, mib) in &rss_mib_after {
        text.push_str(&format!(
            "keygate resident memory after its run ({algorithm}): {mib:.1} MiB (VmRSS)\n"
        ));
    }
    for line in peer_lines.iter().chain(&remote_lines).chain(&bench.lines) {
        text.push_str(line);
        text.push('\n');
    }
    if !args.remote_only {
        text.push_str(&targets(&bench.rows, &rss_mib_after));
    }
    text.push_str(&format!(
        "load average at the end: {}\n",
        Machine::read().load
    ));
    for note in bench.notes.iter().chain(&notes) {
        text.push_str(&format!("note: {note}\n"));
    }
    println!("\n{text}");

    // A run of the remote scenarios alone does not replace the full run's files.
    let name = if args.remote_only { "remote" } else { "latest" };
    let csv = results.join(format!("{name}.csv"));
    report::write_csv(&csv, &bench.rows)?;
    std::fs::write(results.join(format!("{name}.txt")), &text)?;
    eprintln!("wrote {}", csv.display());
    if report::load_font() {
        let png = results.join(format!("{name}.png"));
        let title = format!(
            "keygate, {backend}, {} keys: {} connections, {} s per scenario ({} x {})",
            args.keys, args.connections, args.seconds, machine.cpus, machine.model
        );
        report::write_chart(&png, &bench.rows, &title)?;
        eprintln!("wrote {}", png.display());
    }
    drop(env);
    drop(database);
    drop(workdir);
    Ok(())
}

/// Who the scenarios act as: the management key (client_id, secret) and the console operator
/// (email, password).
struct Logins<'a> {
    management: (&'a str, &'a str),
    operator: (&'a str, &'a str),
}

/// Logs the operator in; the session cookie (`name=value`).
async fn console_session(
    addr: std::net::SocketAddr,
    operator: (&str, &str),
) -> anyhow::Result<String> {
    let body = json!({ "email": operator.0, "password": operator.1 }).to_string();
    let login = Template::post(addr, "/v1/session", "application/json", Bytes::from(body));
    let (status, headers, body) =
        load::once_with_headers(addr, login.request(), Duration::from_secs(30)).await?;
    if !status.is_success() {
        bail!(
            "log-in: keygate answered {status}: {}",
            String::from_utf8_lossy(&body)
        );
    }
    let cookie = headers
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .context("log-in set no cookie")?;
    Ok(cookie.to_owned())
}

/// Every keygate scenario on one server: all of them for the primary algorithm, token_warm
/// and validate for the others.
async fn measure_keygate(
    bench: &mut Bench,
    keygate: &mut Keygate,
    algorithm: &str,
    primary: bool,
    seeded: &seed::Seeded,
    cold: &Arc<ColdPool>,
    logins: &Logins<'_>,
) -> anyhow::Result<()> {
    let management = logins.management;
    let addr = keygate.addr;
    let token = Template::post(
        addr,
        "/v1/token",
        "application/json",
        token_body(&seeded.warm, &seeded.secret),
    );
    // The first request for the warm key runs bcrypt; the rest find the verified secret.
    let warm_token = access_token(&expect_ok(addr, "token for the warm key", &token).await?)?;
    let alg = jwt_alg(&warm_token)?;
    if alg != algorithm {
        bail!("keygate signed with {alg}, not {algorithm}");
    }
    let validate = Template::get(addr, "/v1/me/permissions").bearer(&warm_token);
    expect_ok(addr, "GET /v1/me/permissions", &validate).await?;

    if !primary {
        bench
            .measure("token_warm", algorithm, addr, token.repeat())
            .await;
        bench
            .measure("validate", algorithm, addr, validate.repeat())
            .await;
        return Ok(());
    }

    let baseline = bench
        .measure(
            "baseline",
            algorithm,
            addr,
            Template::get(addr, "/healthz").repeat(),
        )
        .await;
    bench.baseline = Some(baseline.requests_per_second()).filter(|b| *b > 0.0);
    if let Some(row) = bench.rows.last_mut() {
        row.ratio = bench.baseline.map(|_| 1.0);
    }
    bench
        .measure("token_warm", algorithm, addr, token.clone().repeat())
        .await;
    if bench.herd > 0 && !cold.ids.is_empty() {
        let client_id = cold.take_one().to_owned();
        let measured = bcrypts::herd(addr, &client_id, &cold.secret, bench.herd).await?;
        let line = measured.line();
        eprintln!("  {line}");
        bench.lines.push(line);
    }
    let cold_token = token.with_body(Bytes::new());
    if !cold.ids.is_empty() {
        let probe = cold_token.with_body(token_body(cold.take_one(), &cold.secret));
        expect_ok(addr, "token for a cold key", &probe).await?;
        bench
            .measure("token_cold", algorithm, addr, cold.make(cold_token.clone()))
            .await;
    }
    bench
        .measure("validate", algorithm, addr, validate.clone().repeat())
        .await;
    // The same route, the warm key's secret itself as the bearer credential: verified once,
    // then found in the verified-secret cache on every call.
    let direct = Template::get(addr, "/v1/me/permissions").bearer(&seeded.secret);
    expect_ok(addr, "GET /v1/me/permissions with the key itself", &direct).await?;
    bench
        .measure("validate_direct_key", algorithm, addr, direct.repeat())
        .await;

    let management_token = access_token(
        &expect_ok(
            addr,
            "token for the management key",
            &token.with_body(token_body(management.0, management.1)),
        )
        .await?,
    )?;
    let list = Template::get(addr, "/v1/api-keys?limit=100").bearer(&management_token);
    let page: serde_json::Value =
        serde_json::from_slice(&expect_ok(addr, "GET /v1/api-keys", &list).await?)?;
    let listed = page["data"].as_array().map_or(0, Vec::len);
    eprintln!(
        "  list: the first page holds {listed} keys of {}",
        page["count"]
    );
    bench.measure("list", algorithm, addr, list.repeat()).await;
    measure_webhooks(bench, algorithm, addr, management.0, &management_token).await?;

    // The console's key list: the page operators live on, rendered for 100 keys. Measured
    // with one connection, so that its latency is the time to render a page.
    let cookie = console_session(addr, logins.operator).await?;
    let console = Template::get(addr, "/console/keys").cookie(&cookie);
    let html = expect_ok(addr, "GET /console/keys", &console).await?;
    let rows = String::from_utf8_lossy(&html)
        .matches("data-client-id=")
        .count();
    eprintln!("  console_list: the page shows {rows} keys");
    bench
        .measure_alone("console_list", algorithm, addr, console.repeat())
        .await;

    // A page halfway down the list: by offset (which reads every row it skips) and by the
    // keyset cursor the page before it returned (which reads only its own rows).
    let total = page["count"].as_u64().unwrap_or(0);
    if total > 200 {
        let middle = total / 2;
        let by_offset = Template::get(addr, &format!("/v1/api-keys?limit=100&offset={middle}"))
            .bearer(&management_token);
        let before: serde_json::Value = serde_json::from_slice(
            &expect_ok(
                addr,
                "a page by offset",
                &Template::get(
                    addr,
                    &format!("/v1/api-keys?limit=100&offset={}", middle - 100),
                )
                .bearer(&management_token),
            )
            .await?,
        )?;
        if let Some(cursor) = before["next_cursor"].as_str() {
            let by_cursor = Template::get(addr, &format!("/v1/api-keys?limit=100&cursor={cursor}"))
                .bearer(&management_token);
            expect_ok(addr, "a page by cursor", &by_cursor).await?;
            bench
                .measure("list_middle_by_cursor", algorithm, addr, by_cursor.repeat())
                .await;
        }
        bench
            .measure("list_middle_by_offset", algorithm, addr, by_offset.repeat())
            .await;
    }

    if !cold.ids.is_empty() {
        // Validation while a second generator keeps bcrypt saturated with cold requests,
        // against validation alone measured right before it (the machine as it is then).
        bench
            .measure(
                "validate_before_cold_load",
                algorithm,
                addr,
                validate.clone().repeat(),
            )
            .await;
        let phase = bench.phase;
        let (validated, flooded) = tokio::join!(
            load::run(addr, validate.repeat(), phase),
            load::run(addr, cold.make(cold_token), phase),
        );
        let row = bench.row(
            "validate_under_cold_load",
            algorithm,
            &validated,
            phase.connections,
        );
        bench.push(row, &validated);
        let row = bench.row(
            "token_cold_during_validate",
            algorithm,
            &flooded,
            phase.connections,
        );
        bench.push(row, &flooded);
    }

    // The baseline again: a ratio far from 1 says the machine was not quiet during the run.
    let again = bench
        .measure(
            "baseline_again",
            algorithm,
            addr,
            Template::get(addr, "/healthz").repeat(),
        )
        .await;
    if let Some(first) = bench.baseline {
        let drift = again.requests_per_second() / first;
        if !(0.85..=1.15).contains(&drift) {
            bench.notes.push(format!(
                "the baseline moved from {}/s to {}/s during the run (x{drift:.2}): something else \
                 was using the CPU, so the ratios are unreliable; run again on a quiet machine",
                report::thousands(first),
                report::thousands(again.requests_per_second()),
            ));
        }
    }
    Ok(())
}

/// Renewals on a time-compressed schedule, once with keygate's default for
/// `cache.verified_secret_seconds` and once with its former default (compressed alike), each
/// on a keygate of its own started with that setting, each client with a key never verified.
async fn measure_renewals(
    bench: &mut Bench,
    notes: &mut Vec<String>,
    env: &KeygateEnv,
    algorithm: &str,
    cold: &ColdPool,
    args: &Args,
) -> anyhow::Result<()> {
    let schedule = bcrypts::Schedule {
        period: Duration::from_secs(args.renewal_seconds),
        rounds: args.renewal_rounds,
    };
    for (cache_seconds, what) in renewal_cache_seconds(args.renewal_seconds) {
        let settings = [(
            "KEYGATE_CACHE__VERIFIED_SECRET_SECONDS",
            cache_seconds.to_string(),
        )];
        let label = format!("-renewals-{cache_seconds}s");
        eprintln!(
            "starting keygate ({algorithm}) with cache.verified_secret_seconds = {cache_seconds} \
             ({what}, compressed) for the renewals..."
        );
        let mut keygate = env.start_with(algorithm, &label, &settings).await?;
        let client_ids: Vec<String> = (0..args.renewal_keys)
            .map(|_| cold.take_one().to_owned())
            .collect();
        let run = bcrypts::renewals(
            keygate.addr,
            &client_ids,
            &cold.secret,
            schedule,
            cache_seconds,
        )
        .await?;
        keygate
            .check_running()
            .context("keygate stopped during the renewals")?;
        let line = format!("{} ({what})", run.line());
        eprintln!("  {line}");
        bench.lines.push(line);
        let (logged, tail) = keygate.log_summary(5);
        if logged > 0 {
            notes.push(format!(
                "keygate ({algorithm}, renewals, cache {cache_seconds} s) logged {logged} line(s) \
                 at warn or above; the last:\n{tail}"
            ));
        }
    }
    Ok(())
}

/// The soak on a keygate of its own: a few keys verified first (token_warm's), then
/// [`soak::run`].
#[allow(clippy::too_many_arguments)]
async fn run_soak(
    seconds: u64,
    env: &KeygateEnv,
    algorithm: &str,
    database: &Database,
    seeded: &seed::Seeded,
    cold: &ColdPool,
    management: (&str, &str),
    header: &str,
) -> anyhow::Result<soak::Outcome> {
    eprintln!(
        "starting keygate ({algorithm}, {}) for the soak...",
        database.backend()
    );
    let keygate = env.start(algorithm).await?;
    let addr = keygate.addr;
    let token = |client_id: &str, secret: &str| {
        Template::post(
            addr,
            "/v1/token",
            "application/json",
            token_body(client_id, secret),
        )
    };
    let mut warm_keys = vec![seeded.warm.clone()];
    while warm_keys.len() < soak::WARM_KEYS && cold.ids.len() > warm_keys.len() {
        warm_keys.push(cold.take_one().to_owned());
    }
    for client_id in &warm_keys {
        expect_ok(
            addr,
            "token for a warm key",
            &token(client_id, &seeded.secret),
        )
        .await?;
    }
    let management_token = access_token(
        &expect_ok(
            addr,
            "token for the management key",
            &token(management.0, management.1),
        )
        .await?,
    )?;
    let first_cold = cold.next.load(Ordering::Relaxed);
    let cold_keys = cold.ids[first_cold.min(cold.ids.len())..].to_vec();
    if cold_keys.is_empty() {
        bail!("the soak needs a cold pool: raise --cold-keys");
    }
    let mut header = header.to_owned();
    header.push_str(&format!(
        "keygate: {algorithm}, {}, rate limits off, {} keys verified before the soak, {} keys never verified\n",
        database.backend(),
        warm_keys.len(),
        cold_keys.len()
    ));
    soak::run(
        soak::Soak {
            seconds,
            database_url: database.url(),
            secret: &seeded.secret,
            warm_keys,
            cold_keys,
            management,
            management_token,
        },
        &header,
        keygate,
    )
    .await
}

/// Endpoints every event of the webhook scenarios goes to.
const WEBHOOK_ENDPOINTS: u64 = 4;

/// What webhooks cost a key change, and how fast deliveries go out: key changes (the
/// management key's metadata replaced) without an endpoint, then with [`WEBHOOK_ENDPOINTS`]
/// endpoints on a local receiver taking every event; then the time until the receiver has
/// every delivery those changes queued.
async fn measure_webhooks(
    bench: &mut Bench,
    algorithm: &str,
    addr: std::net::SocketAddr,
    client_id: &str,
    token: &str,
) -> anyhow::Result<()> {
    let change = Template::patch(
        addr,
        &format!("/v1/api-keys/{client_id}"),
        "application/json",
        Bytes::from(json!({ "metadata": { "bench": "webhooks" } }).to_string()),
    )
    .bearer(token);
    expect_ok(addr, "PATCH /v1/api-keys/{client_id}", &change).await?;
    let without = bench
        .measure("key_change", algorithm, addr, change.clone().repeat())
        .await
        .requests_per_second();

    let receiver = webhooks::receiver().await?;
    let endpoint = Template::post(
        addr,
        "/v1/webhook-endpoints",
        "application/json",
        Bytes::from(json!({ "url": receiver.url, "events": ["*"] }).to_string()),
    )
    .bearer(token);
    for _ in 0..WEBHOOK_ENDPOINTS {
        expect_ok(addr, "POST /v1/webhook-endpoints", &endpoint).await?;
    }
    let started = std::time::Instant::now();
    let with = bench
        .measure("key_change_webhooks", algorithm, addr, change.repeat())
        .await;
    let expected = with.ok * WEBHOOK_ENDPOINTS;
    let deadline = started + Duration::from_secs(300);
    while receiver.received() < expected && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let seconds = started.elapsed().as_secs_f64();
    let delivered = receiver.received();
    let note = format!(
        "webhooks: a key change runs at {:.2} of its rate without endpoints ({}/s against {}/s) \
         with {WEBHOOK_ENDPOINTS} endpoints taking every event; their {} deliveries reached the \
         local receiver at {}/s ({delivered} of {expected} within {seconds:.1} s of the phase's start)",
        with.requests_per_second() / without.max(1e-9),
        report::thousands(with.requests_per_second()),
        report::thousands(without),
        expected,
        report::thousands(delivered as f64 / seconds.max(1e-9)),
    );
    eprintln!("  {note}");
    bench.notes.push(note);
    Ok(())
}

/// The performance targets, against this run's figures.
fn targets(rows: &[Row], rss: &[(String, f64)]) -> String {
    let find = |scenario: &str, alg: Option<&str>| {
        rows.iter()
            .find(|r| r.scenario == scenario && alg.is_none_or(|a| r.algorithm == a))
    };
    let mut out = String::from("targets:\n");
    let mut line = |what: String, met: bool| {
        out.push_str(&format!(
            "  [{}] {what}\n",
            if met { "met" } else { "MISSED" }
        ));
    };
    for (scenario, alg, min) in [
        ("validate", None, 0.75),
        ("token_warm", Some("ES256"), 0.30),
        ("list", None, 0.10),
    ] {
        if let Some(r) = find(scenario, alg) {
            if let Some(ratio) = r.ratio {
                line(
                    format!(
                        "{scenario} ({}) at {ratio:.2} of baseline (>= {min:.2})",
                        r.algorithm
                    ),
                    ratio >= min,
                );
            }
            line(
                format!(
                    "{scenario} ({}) p99 {:.2} ms (< 10 ms)",
                    r.algorithm, r.p99_ms
                ),
                r.p99_ms < 10.0,
            );
        }
    }
    if let Some(r) = find("console_list", None) {
        line(
            format!(
                "console key list (100 rows) rendered in {:.2} ms at p50, {:.2} ms at p99 (< 20 ms)",
                r.p50_ms, r.p99_ms
            ),
            r.p99_ms < 20.0,
        );
    }
    if let (Some(v), Some(u)) = (
        find("validate_before_cold_load", None),
        find("validate_under_cold_load", None),
    ) {
        let kept = u.requests_per_second / v.requests_per_second.max(1e-9);
        out.push_str(&format!(
            "  [{}] validation under a saturated cold path: {:.0}/s of {:.0}/s alone right before \
             ({kept:.2}, >= 0.90)\n",
            if kept >= 0.9 { "met" } else { "MISSED" },
            u.requests_per_second,
            v.requests_per_second,
        ));
    }
    if let (Some(k), Some(p)) = (find("token_warm", Some("ES256")), find("peer_token", None)) {
        let times = k.requests_per_second / p.requests_per_second.max(1e-9);
        let p99 = k.p99_ms / p.p99_ms.max(1e-9);
        let mut line = |what: String, met: bool| {
            out.push_str(&format!(
                "  [{}] {what}\n",
                if met { "met" } else { "MISSED" }
            ));
        };
        line(
            format!("token_warm at {times:.2}x the peer's throughput (>= 4x)"),
            times >= 4.0,
        );
        line(
            format!("token_warm p99 at {p99:.3} of the peer's (<= 0.1)"),
            p99 <= 0.1,
        );
    }
    if let Some(max) = rss.iter().map(|(_, m)| *m).reduce(f64::max) {
        out.push_str(&format!(
            "  [{}] keygate resident memory at most {max:.1} MiB (< 100 MB)\n",
            if max * 1.048_576 < 100.0 {
                "met"
            } else {
                "MISSED"
            }
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_lines_are_quoted_and_redacted() {
        assert_eq!(quote("--keys"), "--keys");
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(
            redact("postgres://u:secret@127.0.0.1/db"),
            "postgres://u:***@127.0.0.1/db"
        );
        assert_eq!(
            redact("postgres://u@127.0.0.1/db"),
            "postgres://u@127.0.0.1/db"
        );
    }

    #[test]
    fn the_jwt_header_gives_the_algorithm() {
        let header = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(br#"{"alg":"EdDSA","typ":"at+jwt"}"#);
        assert_eq!(jwt_alg(&format!("{header}.e30.sig")).unwrap(), "EdDSA");
        assert!(jwt_alg("not a jwt").is_err());
    }
}

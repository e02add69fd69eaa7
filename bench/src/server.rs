//! keygate as a child process: the release build, the bench database (a SQLite file or a
//! fresh PostgreSQL database), CLI runs, and the server itself, killed when dropped.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};
use base64::Engine;
use diesel::{Connection, PgConnection, RunQueryDsl};
use tokio::time::{Instant, sleep};

use crate::load::{self, Template};

/// Builds keygate's release binary (a no-op when it is up to date) and returns its path.
pub fn build_keygate(root: &Path) -> anyhow::Result<PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    eprintln!("building keygate (cargo build --release --bin keygate)...");
    let output = Command::new(cargo)
        .current_dir(root)
        .args([
            "build",
            "--release",
            "-p",
            "keygate",
            "--bin",
            "keygate",
            "--message-format=json-render-diagnostics",
        ])
        .stderr(Stdio::inherit())
        .output()
        .context("cannot run cargo")?;
    if !output.status.success() {
        bail!("cargo build --release --bin keygate failed");
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    stdout
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == "keygate")
        .filter_map(|m| m["executable"].as_str().map(PathBuf::from))
        .next_back()
        .context("cargo built no keygate executable")
}

/// How often keygate reads its change feed, which is what feeds the revocation stream: keygate's
/// default, set explicitly so that the revoke-to-refusal figures say what they were measured
/// with.
pub const FEED_POLL_MS: u64 = 250;

/// A port that was free a moment ago on 127.0.0.1.
pub fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// `n` random bytes from the OS (keygate's own CSPRNG helper).
pub fn random_bytes(n: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; n];
    keygate::domain::random::fill(&mut bytes);
    bytes
}

/// The bench database, removed when dropped (the SQLite file goes with the temp dir).
pub enum Database {
    Sqlite {
        url: String,
    },
    Postgres {
        admin_url: String,
        name: String,
        url: String,
    },
}

impl Database {
    pub fn sqlite(dir: &Path) -> Database {
        Database::Sqlite {
            url: dir.join("keygate.db").to_string_lossy().into_owned(),
        }
    }

    /// Creates `keygate_bench_<random>` through `admin_url`.
    pub fn postgres(admin_url: &str) -> anyhow::Result<Database> {
        let hex: String = random_bytes(6).iter().map(|b| format!("{b:02x}")).collect();
        let name = format!("keygate_bench_{hex}");
        let mut conn = PgConnection::establish(admin_url)
            .map_err(|e| anyhow::anyhow!("cannot connect to PostgreSQL (--postgres): {e}"))?;
        diesel::sql_query(format!("CREATE DATABASE {name}")).execute(&mut conn)?;
        let url = with_database(admin_url, &name)?;
        Ok(Database::Postgres {
            admin_url: admin_url.to_owned(),
            name,
            url,
        })
    }

    pub fn url(&self) -> &str {
        match self {
            Database::Sqlite { url } | Database::Postgres { url, .. } => url,
        }
    }

    pub fn backend(&self) -> &'static str {
        match self {
            Database::Sqlite { .. } => "sqlite",
            Database::Postgres { .. } => "postgres",
        }
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        if let Database::Postgres {
            admin_url, name, ..
        } = self
        {
            let dropped = PgConnection::establish(admin_url)
                .map_err(anyhow::Error::from)
                .and_then(|mut conn| {
                    // Sessions keygate left behind are ended first (what WITH (FORCE) does on 13+).
                    diesel::sql_query(format!(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                         WHERE datname = '{name}' AND pid <> pg_backend_pid()"
                    ))
                    .execute(&mut conn)?;
                    diesel::sql_query(format!("DROP DATABASE IF EXISTS {name}"))
                        .execute(&mut conn)?;
                    Ok(())
                });
            match dropped {
                Ok(()) => eprintln!("dropped database {name}"),
                Err(e) => eprintln!("warning: could not drop database {name}: {e:#}"),
            }
        }
    }
}

/// `postgres://user@host:port/db?params` with `db` replaced by `name`.
pub fn with_database(url: &str, name: &str) -> anyhow::Result<String> {
    let (scheme, rest) = url
        .split_once("://")
        .filter(|(s, _)| *s == "postgres" || *s == "postgresql")
        .context("--postgres takes a postgres:// URL")?;
    let (before_query, query) = match rest.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (rest, None),
    };
    let authority = before_query.split('/').next().unwrap_or("");
    let mut out = format!("{scheme}://{authority}/{name}");
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    Ok(out)
}

/// What every keygate process of the run shares: the binary, the database, the master key,
/// and a working directory (the temp dir) so that no `./config` or `./data` is picked up.
pub struct KeygateEnv {
    pub binary: PathBuf,
    pub database_url: String,
    pub master_key: String,
    pub workdir: PathBuf,
}

impl KeygateEnv {
    pub fn new(binary: PathBuf, database_url: &str, workdir: &Path) -> KeygateEnv {
        KeygateEnv {
            binary,
            database_url: database_url.to_owned(),
            master_key: base64::engine::general_purpose::STANDARD.encode(random_bytes(32)),
            workdir: workdir.to_owned(),
        }
    }

    fn command(&self, algorithm: &str) -> Command {
        let mut command = Command::new(&self.binary);
        command
            .current_dir(&self.workdir)
            .env("KEYGATE_PROFILE", "development")
            .env("DATABASE_URL", &self.database_url)
            .env("KEYGATE_MASTER_KEY", &self.master_key)
            .env("KEYGATE_RATE_LIMIT__ENABLED", "false")
            // The webhook scenarios' receiver listens on the loopback interface.
            .env("KEYGATE_WEBHOOKS__ALLOWED_NETWORKS", "127.0.0.0/8")
            .env("KEYGATE_WEBHOOKS__POLL_INTERVAL_MS", "20")
            .env("KEYGATE_TOKENS__ALGORITHM", algorithm)
            .env("KEYGATE_FEED__POLL_INTERVAL_MS", FEED_POLL_MS.to_string())
            .env("RUST_LOG", "warn")
            .env_remove("KEYGATE_DATABASE__URL")
            .stdin(Stdio::null());
        command
    }

    /// Runs `keygate --database URL ARGS...` and parses its standard output as JSON.
    pub fn cli(&self, algorithm: &str, args: &[&str]) -> anyhow::Result<serde_json::Value> {
        let output = self
            .command(algorithm)
            .arg("--database")
            .arg(&self.database_url)
            .args(args)
            .output()
            .with_context(|| format!("cannot run keygate {}", args.join(" ")))?;
        if !output.status.success() {
            bail!(
                "keygate {} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        serde_json::from_slice(&output.stdout)
            .with_context(|| format!("keygate {} printed no JSON", args.join(" ")))
    }

    /// Starts `keygate serve` on a free loopback port and waits for `/healthz`.
    pub async fn start(&self, algorithm: &str) -> anyhow::Result<Keygate> {
        self.start_with(algorithm, "", &[]).await
    }

    /// [`KeygateEnv::start`] with further environment variables (settings to compare in one
    /// run); `label` tells its log apart from the others'.
    pub async fn start_with(
        &self,
        algorithm: &str,
        label: &str,
        settings: &[(&str, String)],
    ) -> anyhow::Result<Keygate> {
        let port = free_port()?;
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let log_path = self.workdir.join(format!("keygate-{algorithm}{label}.log"));
        let log = File::create(&log_path)?;
        let mut command = self.command(algorithm);
        for (name, value) in settings {
            command.env(name, value);
        }
        let child = command
            .env("KEYGATE_SERVER__BIND", addr.to_string())
            .arg("serve")
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("cannot start keygate")?;
        let started = Instant::now();
        let mut server = Keygate {
            child: ChildGuard::new(child, "keygate"),
            addr,
            log: log_path,
        };
        server
            .wait_healthy(Duration::from_secs(300))
            .await
            .with_context(|| format!("keygate did not start; its log:\n{}", server.log_tail(20)))?;
        eprintln!(
            "  keygate ({algorithm}) answered /healthz {:.1} s after its start, at http://{addr}",
            started.elapsed().as_secs_f64()
        );
        Ok(server)
    }
}

/// A child process killed (and reaped) when dropped: on success, on error and on Ctrl-C.
pub struct ChildGuard {
    child: Child,
    name: &'static str,
}

impl ChildGuard {
    pub fn new(child: Child, name: &'static str) -> ChildGuard {
        ChildGuard { child, name }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `Err` with the exit status when the process has already ended.
    pub fn check_running(&mut self) -> anyhow::Result<()> {
        match self.child.try_wait()? {
            Some(status) => bail!("{} exited: {status}", self.name),
            None => Ok(()),
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A running keygate server.
pub struct Keygate {
    child: ChildGuard,
    pub addr: SocketAddr,
    log: PathBuf,
}

impl Keygate {
    async fn wait_healthy(&mut self, limit: Duration) -> anyhow::Result<()> {
        wait_for(&mut self.child, self.addr, "/healthz", limit).await
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.pid()
    }

    /// Resident memory in KiB (`VmRSS` of `/proc/<pid>/status`).
    pub fn rss_kib(&self) -> Option<u64> {
        rss_kib(self.child.pid())
    }

    /// Lines the server logged (at `warn` and above) and the last `n` of them.
    pub fn log_summary(&self, n: usize) -> (usize, String) {
        let lines = read_lines(&self.log);
        (
            lines.len(),
            lines[lines.len().saturating_sub(n)..].join("\n"),
        )
    }

    fn log_tail(&self, n: usize) -> String {
        self.log_summary(n).1
    }

    pub fn check_running(&mut self) -> anyhow::Result<()> {
        self.child.check_running()
    }
}

pub fn read_lines(path: &Path) -> Vec<String> {
    File::open(path)
        .map(|f| BufReader::new(f).lines().map_while(Result::ok).collect())
        .unwrap_or_default()
}

pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Polls `GET path` until it answers 200, the child exits, or `limit` passes.
pub async fn wait_for(
    child: &mut ChildGuard,
    addr: SocketAddr,
    path: &str,
    limit: Duration,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + limit;
    let probe = Template::get(addr, path);
    loop {
        child.check_running()?;
        let answer = load::once(addr, probe.request(), Duration::from_secs(2)).await;
        if answer.is_ok_and(|(status, _)| status.is_success()) {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!("{addr}{path} did not answer 200 within {limit:?}");
        }
        sleep(Duration::from_millis(100)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_database_name_is_replaced() {
        let cases = [
            (
                "postgres://postgres@127.0.0.1:5432/postgres",
                "postgres://postgres@127.0.0.1:5432/kb",
            ),
            ("postgres://u:p@localhost", "postgres://u:p@localhost/kb"),
            (
                "postgresql://u@h/db?sslmode=disable",
                "postgresql://u@h/kb?sslmode=disable",
            ),
            (
                "postgres:///postgres?host=/run/postgresql",
                "postgres:///kb?host=/run/postgresql",
            ),
        ];
        for (given, expected) in cases {
            assert_eq!(with_database(given, "kb").unwrap(), expected);
        }
        assert!(with_database("mysql://h/db", "kb").is_err());
    }
}

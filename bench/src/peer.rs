//! The peer: panva's oidc-provider (bench/peer/server.mjs) on Node, issuing ES256 JWT
//! access tokens for client_credentials with `client_secret_basic`.

use std::fs::File;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};
use base64::Engine;
use bytes::Bytes;

use crate::load::{self, MakeRequest, Template};
use crate::server::{ChildGuard, free_port, wait_for};

/// Installs the peer's packages when `node_modules` is missing (`npm ci` from the lock file).
pub fn install(peer_dir: &Path) -> anyhow::Result<()> {
    if peer_dir
        .join("node_modules/oidc-provider/package.json")
        .exists()
    {
        return Ok(());
    }
    let verb = if peer_dir.join("package-lock.json").exists() {
        "ci"
    } else {
        "install"
    };
    eprintln!(
        "installing the peer (npm {verb} in {})...",
        peer_dir.display()
    );
    // npm's output goes to standard error: standard output is the report's.
    let output = Command::new("npm")
        .current_dir(peer_dir)
        .args([verb, "--no-audit", "--no-fund"])
        .stdin(Stdio::null())
        .output()
        .context("cannot run npm (is Node.js installed?)")?;
    eprint!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    if !output.status.success() {
        bail!("npm {verb} failed in {}", peer_dir.display());
    }
    Ok(())
}

pub struct Peer {
    _child: ChildGuard,
    pub addr: SocketAddr,
    pub pid: u32,
    /// `POST /token` with HTTP Basic and `grant_type=client_credentials`.
    pub token_request: Template,
}

/// Starts `node server.mjs` on a free loopback port and checks that its first token
/// answer is a 200 carrying an ES256 JWT access token.
pub async fn start(peer_dir: &Path, log_dir: &Path) -> anyhow::Result<Peer> {
    let port = free_port()?;
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let client_id = "bench-client";
    let secret = keygate::domain::random::base62(43);
    let log = File::create(log_dir.join("oidc-provider.log"))?;
    let child = Command::new("node")
        .current_dir(peer_dir)
        .arg("server.mjs")
        .env("PORT", port.to_string())
        .env("CLIENT_ID", client_id)
        .env("CLIENT_SECRET", &secret)
        .env("NODE_ENV", "production")
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .context("cannot start node (is Node.js installed?)")?;
    let mut child = ChildGuard::new(child, "oidc-provider");
    let pid = child.pid();
    wait_for(
        &mut child,
        addr,
        "/.well-known/openid-configuration",
        Duration::from_secs(30),
    )
    .await?;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{client_id}:{secret}"));
    let token_request = Template::post(
        addr,
        "/token",
        "application/x-www-form-urlencoded",
        Bytes::from_static(b"grant_type=client_credentials&scope=invoices%3Aread"),
    )
    .authorization(&format!("Basic {basic}"));
    let (status, body) = load::once(addr, token_request.request(), Duration::from_secs(10)).await?;
    if !status.is_success() {
        bail!(
            "oidc-provider answered {status} to the first token request: {}",
            String::from_utf8_lossy(&body)
        );
    }
    let token = crate::access_token(&body)?;
    let alg = crate::jwt_alg(&token)?;
    if alg != "ES256" {
        bail!("oidc-provider signed its access token with {alg}, not ES256");
    }
    Ok(Peer {
        _child: child,
        addr,
        pid,
        token_request,
    })
}

impl Peer {
    pub fn make(&self) -> MakeRequest {
        self.token_request.clone().repeat()
    }
}

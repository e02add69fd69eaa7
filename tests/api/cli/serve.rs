//! `keygate serve` (the default command) and `keygate migrate`: the binary as a server, its
//! logs, its graceful stop, and the master key it refuses to do without.

use std::time::Duration;

use serde_json::{Value, json};

use crate::backend_tests;
use crate::helpers::{
    Backend, ChildGuard, ServerProcess, TestDatabase, keygate_command, spawn_app, stderr, stdout,
};

/// `keygate serve` in the development profile, without `KEYGATE_MASTER_KEY`, from `dir`.
fn serve_without_a_master_key(
    dir: &std::path::Path,
    db: &TestDatabase,
    bind: &str,
) -> std::process::Command {
    let mut command = keygate_command();
    // `dir` is also the home whose data directory keeps a generated key.
    command
        .current_dir(dir)
        .env("HOME", dir)
        .env_remove("XDG_DATA_HOME")
        .args(["--profile", "development", "--database", db.url()])
        .args(["serve", "--bind", bind]);
    command
}

/// Runs `command`, which must exit (within 30 s) with an error; its standard error.
pub(super) fn refused(command: &mut std::process::Command) -> String {
    let mut child = ChildGuard::spawn(
        command
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped()),
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "keygate kept running instead of refusing to start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output();
    assert!(!out.status.success(), "refused with an error status");
    stderr(&out)
}

async fn migrate_is_idempotent(backend: Backend) {
    let db = TestDatabase::create(backend);
    for _ in 0..2 {
        let out = keygate_command()
            .args(["--profile", "test", "--database", db.url(), "migrate"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(stdout(&out).contains("up to date"));
    }
}

/// Last-used times live in memory between flushes; a graceful stop (SIGTERM, as an
/// orchestrator sends) writes what is pending before the process exits.
async fn a_graceful_stop_writes_pending_last_used_times(backend: Backend) {
    let app = spawn_app(backend).await;
    let key = app.create_key(&["invoices:read"]);
    let dir = tempfile::tempdir().unwrap();
    let mut server = ServerProcess::start(
        app.serve_command(dir.path())
            // No periodic flush during the test: only the one at shutdown can write it.
            .env("KEYGATE_SERVER__LAST_USED_FLUSH_MS", "3600000")
            // The address it binds, and every write of last-used times.
            .env("RUST_LOG", "warn,keygate::startup=debug"),
    );
    let base = server.address.clone();
    let client = reqwest::Client::new();
    let up = crate::helpers::eventually(10, || async {
        client.get(format!("{base}/healthz")).send().await.is_ok()
    })
    .await;
    assert!(up, "the server did not come up");
    // Asked for at once: the first periodic write is a whole period (an hour) away.
    let response = client
        .post(format!("{base}/v1/token"))
        .json(&json!({ "client_id": key.client_id, "client_secret": key.client_secret }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let shown = |app: &crate::helpers::TestApp| -> Value {
        serde_json::from_slice(
            &app.cli(&["api-keys", "show", &key.client_id, "--json"])
                .stdout,
        )
        .unwrap()
    };
    assert!(
        shown(&app)["last_used_at"].is_null(),
        "written before the flush; the server's log:\n{}",
        server.log()
    );

    let status = server.terminate();
    assert!(status.success(), "a graceful stop exits 0, not {status}");
    assert!(
        shown(&app)["last_used_at"].is_string(),
        "the pending last-used time was lost at shutdown"
    );
}

/// Runs `keygate` with no arguments (it serves), configured only through the environment,
/// with every log level on; secrets, hashes and tokens must never reach the log.
async fn the_binary_serves_by_default_and_never_logs_secrets(backend: Backend) {
    let app = spawn_app(backend).await;
    let key = app.create_key(&["invoices:read"]);
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(
        keygate_command()
            .current_dir(dir.path())
            .env("KEYGATE_PROFILE", "test")
            .env("KEYGATE_SERVER__BIND", "127.0.0.1:0")
            .env("DATABASE_URL", app.db.url())
            .env("KEYGATE_MASTER_KEY", &app.master_key)
            .env("RUST_LOG", "trace"),
    );
    let base = server.address.clone();
    let client = reqwest::Client::new();
    let up = crate::helpers::eventually(10, || async {
        client.get(format!("{base}/healthz")).send().await.is_ok()
    })
    .await;
    assert!(up, "the server did not come up");

    let secret = &key.client_secret;
    let good = client
        .post(format!("{base}/v1/token"))
        .basic_auth(&key.client_id, Some(secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(good.status(), 200);
    let token: Value = good.json().await.unwrap();
    let access_token = token["access_token"].as_str().unwrap().to_owned();
    let _ = client
        .post(format!(
            "{base}/v1/token?client_id={}&client_secret={secret}",
            key.client_id
        ))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    let _ = client
        .post(format!("{base}/v1/token"))
        .json(&json!({ "client_id": key.client_id, "client_secret": format!("{secret}x") }))
        .send()
        .await
        .unwrap();
    let _ = client
        .get(format!("{base}/v1/me"))
        .bearer_auth(&access_token)
        .send()
        .await
        .unwrap();
    let _ = client
        .get(format!("{base}/v1/me?access_token={access_token}"))
        .send()
        .await
        .unwrap();
    // An API key as the bearer credential, and an invitation link opened.
    let _ = client
        .get(format!("{base}/v1/me/permissions"))
        .bearer_auth(secret)
        .send()
        .await
        .unwrap();
    app.create_user(crate::helpers::ADMIN, &["--admin"]);
    let invited = app.cli(&["users", "invite", "--email", "ines@example.com"]);
    assert!(invited.status.success());
    let link = String::from_utf8_lossy(&invited.stdout).trim().to_owned();
    let invitation = link.rsplit('/').next().unwrap().to_owned();
    let opened = client
        .get(format!("{base}/console/invitations/{invitation}"))
        .send()
        .await
        .unwrap();
    assert_eq!(opened.status(), 200);
    actix_web::rt::time::sleep(Duration::from_millis(200)).await;

    let log = server.kill();
    assert!(
        log.contains("GET /console/invitations/…"),
        "the link is logged, masked: {log}"
    );
    assert!(
        log.contains("POST /v1/token"),
        "the access log is on: {log}"
    );
    for (what, needle) in [
        ("the secret", &secret[9..]),
        ("the access token", &access_token[access_token.len() - 40..]),
        ("a bcrypt hash", "$2b$"),
        ("the master key", &app.master_key[..20]),
        ("the invitation token", &invitation[4..]),
    ] {
        assert!(!log.contains(needle), "{what} reached the log");
    }
}

/// Without `KEYGATE_MASTER_KEY`, the development profile generates a master key only while it
/// listens on a loopback address (the file private to its owner); bound beyond this machine,
/// or with a key file others can read, keygate refuses to start and says why.
async fn a_generated_master_key_is_only_for_a_loopback_address(backend: Backend) {
    let db = TestDatabase::create(backend);
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join(".local/share/keygate/master.key");

    let message = refused(&mut serve_without_a_master_key(
        dir.path(),
        &db,
        "0.0.0.0:0",
    ));
    assert!(message.contains("KEYGATE_MASTER_KEY"), "{message}");
    assert!(message.contains("loopback"), "{message}");
    assert!(!key_file.exists(), "no key was written");

    let server = ServerProcess::start(&mut serve_without_a_master_key(
        dir.path(),
        &db,
        "127.0.0.1:0",
    ));
    let log = server.kill();
    assert!(log.contains("generated a development master key"), "{log}");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "private to its owner");

    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let message = refused(&mut serve_without_a_master_key(
        dir.path(),
        &db,
        "127.0.0.1:0",
    ));
    assert!(message.contains("chmod 600"), "{message}");
}

/// Every start names the database it uses in the log, at the default level.
async fn serve_logs_which_database_it_uses(backend: Backend) {
    let app = spawn_app(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(app.serve_command(dir.path()).env("RUST_LOG", "info"));
    let log = server.kill();
    let url = app.db.url();
    let expected = match backend {
        Backend::Sqlite => format!("keygate keeps its data in SQLite at {url}"),
        Backend::Postgres => {
            let address = url
                .split_once("://")
                .map(|(_, rest)| rest.rsplit('@').next().unwrap())
                .unwrap();
            let address = address.split('?').next().unwrap();
            format!("keygate keeps its data in PostgreSQL at {address}")
        }
    };
    assert!(
        log.contains(&expected),
        "{expected:?} is not in the log:\n{log}"
    );
}

/// The URL's password (in the user part or as a parameter) never reaches the log, not even
/// when the database cannot be reached and keygate gives up.
#[test]
fn the_database_is_named_without_its_password() {
    let dir = tempfile::tempdir().unwrap();
    let message = refused(
        keygate_command()
            .current_dir(dir.path())
            .env("KEYGATE_PROFILE", "test")
            .env("KEYGATE_SERVER__BIND", "127.0.0.1:0")
            .env(
                "DATABASE_URL",
                "postgres://keygate:pw-in-userinfo@127.0.0.1:1/keygate?password=pw-in-query",
            )
            .env("KEYGATE_DATABASE__CONNECT_TIMEOUT_SECONDS", "1")
            .env(
                "KEYGATE_MASTER_KEY",
                keygate::tokens::MasterKey::generate_encoded(),
            )
            .env("RUST_LOG", "info"),
    );
    assert!(
        message.contains("keygate keeps its data in PostgreSQL at 127.0.0.1:1/keygate"),
        "{message}"
    );
    assert!(
        !message.contains("pw-in-"),
        "a password reached the log:\n{message}"
    );
}

backend_tests!(
    serve_logs_which_database_it_uses,
    a_generated_master_key_is_only_for_a_loopback_address,
    migrate_is_idempotent,
    a_graceful_stop_writes_pending_last_used_times,
    the_binary_serves_by_default_and_never_logs_secrets,
);

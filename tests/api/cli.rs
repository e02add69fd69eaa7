//! The `keygate` binary: key commands, migrations, configuration, and its logs.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::backend_tests;
use crate::helpers::{Backend, TestDatabase, spawn_app};

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

async fn create_prints_the_secret_once_and_nothing_shows_it_again(backend: Backend) {
    let app = spawn_app(backend).await;
    let out = app.cli(&[
        "api-keys",
        "create",
        "--name",
        "Nightly export",
        "--scopes",
        "invoices:read,clients:read",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let printed = stdout(&out);
    let client_id = printed
        .lines()
        .find_map(|l| l.strip_prefix("client_id:"))
        .unwrap()
        .trim()
        .to_owned();
    let secret = printed
        .lines()
        .find_map(|l| l.strip_prefix("client_secret:"))
        .unwrap()
        .trim()
        .to_owned();
    assert!(client_id.starts_with("kgc_"));
    assert!(secret.starts_with("kgs_live_"));
    assert!(
        !stderr(&out).contains(&secret),
        "the secret goes to stdout only"
    );

    for args in [
        &["api-keys", "list"][..],
        &["api-keys", "list", "--json"][..],
    ] {
        let listed = app.cli(args);
        assert!(stdout(&listed).contains(&client_id));
        assert!(
            !stdout(&listed).contains(&secret[9..]),
            "list never shows a secret"
        );
    }
    let rows: Value =
        serde_json::from_slice(&app.cli(&["api-keys", "list", "--json"]).stdout).unwrap();
    assert_eq!(rows[0]["name"], "Nightly export");
    assert_eq!(rows[0]["scopes"], json!(["clients:read", "invoices:read"]));
    assert_eq!(rows[0]["status"], "enabled");

    // The secret printed is the one that works.
    let response = app
        .post_token_json(json!({ "client_id": client_id, "client_secret": secret }))
        .await;
    assert_eq!(response.status(), 200);
}

async fn create_refuses_bad_input_with_a_clear_message(backend: Backend) {
    let app = spawn_app(backend).await;
    let cases: [(&str, &[&str], &str); 6] = [
        (
            "an unknown scope",
            &["--scopes", "invoices:read,nope:read"],
            "nope:read",
        ),
        (
            "a past date",
            &["--scopes", "invoices:read", "--expires-on", "2020-01-01"],
            "expires_on",
        ),
        (
            "a malformed date",
            &["--scopes", "invoices:read", "--expires-on", "01/02/2027"],
            "YYYY-MM-DD",
        ),
        (
            "both expiry flags",
            &[
                "--scopes",
                "invoices:read",
                "--expires-on",
                "2099-01-01",
                "--expires-in-days",
                "3",
            ],
            "cannot be used with",
        ),
        (
            "an unknown environment",
            &["--scopes", "invoices:read", "--env", "prod"],
            "live",
        ),
        ("no scopes", &["--scopes", ""], "scope"),
    ];
    for (why, args, expected) in cases {
        let mut full = vec!["api-keys", "create", "--name", "x"];
        full.extend_from_slice(args);
        let out = app.cli(&full);
        assert!(!out.status.success(), "{why} was accepted");
        assert!(stderr(&out).contains(expected), "{why}: {}", stderr(&out));
    }
    let listed: Value =
        serde_json::from_slice(&app.cli(&["api-keys", "list", "--json"]).stdout).unwrap();
    assert_eq!(listed, json!([]), "nothing was created");
}

async fn expiry_on_a_date_means_midnight_utc_and_test_keys_are_tagged(backend: Backend) {
    let app = spawn_app(backend).await;
    let date = (chrono::Utc::now() + chrono::Duration::days(30))
        .format("%Y-%m-%d")
        .to_string();
    let out = app.cli(&[
        "api-keys",
        "create",
        "--name",
        "sandbox",
        "--scopes",
        "invoices:read",
        "--env",
        "test",
        "--expires-on",
        &date,
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let created: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(created["expires_at"], format!("{date}T00:00:00Z"));
    assert_eq!(created["environment"], "test");
    assert!(
        created["client_secret"]
            .as_str()
            .unwrap()
            .starts_with("kgs_test_")
    );
    assert!(
        created["secret_prefix"]
            .as_str()
            .unwrap()
            .starts_with("kgs_test_")
    );
    let token = app
        .token_for(&crate::helpers::TestKey {
            client_id: created["client_id"].as_str().unwrap().into(),
            client_secret: created["client_secret"].as_str().unwrap().into(),
        })
        .await;
    let claims: Value = jsonwebtoken::dangerous::insecure_decode_claims(&token).unwrap();
    assert_eq!(claims["env"], "test");
}

/// The README walkthrough evaluates `--shell` output; it must be exactly two export lines.
async fn shell_output_exports_the_credentials(backend: Backend) {
    let app = spawn_app(backend).await;
    let out = app.cli(&[
        "api-keys",
        "create",
        "--name",
        "w",
        "--scopes",
        "invoices:read",
        "--shell",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let printed = stdout(&out);
    let lines: Vec<&str> = printed.lines().collect();
    assert_eq!(lines.len(), 2, "{printed}");
    let client_id = lines[0]
        .strip_prefix("export CLIENT_ID=")
        .expect("first line exports CLIENT_ID");
    let secret = lines[1]
        .strip_prefix("export CLIENT_SECRET=")
        .expect("second line exports CLIENT_SECRET");
    assert!(
        secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_'),
        "safe for eval"
    );
    let response = app
        .post_token_json(json!({ "client_id": client_id, "client_secret": secret }))
        .await;
    assert_eq!(response.status(), 200);
}

async fn after_a_cli_revoke_me_refuses_the_token_at_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let key = app.create_key(&["invoices:read"]);
    let token = app.token_for(&key).await;
    assert_eq!(app.get_with_token("/v1/me", &token).await.status(), 200);
    assert!(
        app.cli(&["api-keys", "revoke", &key.client_id])
            .status
            .success()
    );
    // /v1/me reads the key, so it refuses at once; routes that only validate the token hear
    // of the revocation from the change feed.
    assert_eq!(app.get_with_token("/v1/me", &token).await.status(), 401);
    let refused = crate::helpers::eventually(1, || async {
        app.get_with_token("/v1/me/permissions", &token)
            .await
            .status()
            == 401
    })
    .await;
    assert!(
        refused,
        "/v1/me/permissions still accepts the revoked key's token"
    );
}

async fn rotate_prints_a_new_secret_and_honours_the_grace_period(backend: Backend) {
    let app = spawn_app(backend).await;
    let key = app.create_key(&["invoices:read"]);
    let body = |secret: &str| json!({ "client_id": key.client_id, "client_secret": secret });

    let out = app.cli(&[
        "api-keys",
        "rotate",
        &key.client_id,
        "--grace",
        "2s",
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let rotated: Value = serde_json::from_slice(&out.stdout).unwrap();
    let second = rotated["client_secret"].as_str().unwrap().to_owned();
    assert!(rotated["previous_secret_expires_at"].is_string());
    assert_eq!(app.post_token_json(body(&second)).await.status(), 200);
    assert_eq!(
        app.post_token_json(body(&key.client_secret)).await.status(),
        200,
        "inside the grace period"
    );
    let expired = crate::helpers::eventually(5, || async {
        app.post_token_json(body(&key.client_secret)).await.status() == 401
    })
    .await;
    assert!(expired, "the old secret outlived its grace period");

    let out = app.cli(&["api-keys", "rotate", &key.client_id, "--json"]);
    let third: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(third["previous_secret_expires_at"].is_null());
    // The CLI is another process: the server hears of the rotation through the change feed.
    let stopped = crate::helpers::eventually(1, || async {
        app.post_token_json(body(&second)).await.status() == 401
    })
    .await;
    assert!(
        stopped,
        "no grace: the old secret stops within a feed interval"
    );
    assert_eq!(
        app.post_token_json(body(third["client_secret"].as_str().unwrap()))
            .await
            .status(),
        200
    );

    for bad in ["8d", "soon", "-1"] {
        let out = app.cli(&["api-keys", "rotate", &key.client_id, "--grace", bad]);
        assert!(!out.status.success(), "--grace {bad} was accepted");
    }
    let shown = app.cli(&["api-keys", "show", &key.client_id, "--json"]);
    let shown: Value = serde_json::from_slice(&shown.stdout).unwrap();
    assert_eq!(shown["client_id"], key.client_id.as_str());
    assert!(
        !String::from_utf8_lossy(&app.cli(&["api-keys", "show", &key.client_id]).stdout)
            .contains("kgs_")
    );
}

async fn revoking_an_unknown_key_fails(backend: Backend) {
    let app = spawn_app(backend).await;
    let out = app.cli(&["api-keys", "revoke", "kgc_00000000000000000000"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("no API key"));
}

async fn migrate_is_idempotent(backend: Backend) {
    let db = TestDatabase::create(backend);
    for _ in 0..2 {
        let out = Command::new(env!("CARGO_BIN_EXE_keygate"))
            .args(["--profile", "test", "--database", db.url(), "migrate"])
            .env_remove("DATABASE_URL")
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(stdout(&out).contains("up to date"));
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Last-used times live in memory between flushes; a graceful stop (SIGTERM, as an
/// orchestrator sends) writes what is pending before the process exits.
async fn a_graceful_stop_writes_pending_last_used_times(backend: Backend) {
    let app = spawn_app(backend).await;
    let key = app.create_key(&["invoices:read"]);
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_keygate"))
        .current_dir(dir.path())
        .args([
            "--profile",
            "test",
            "--database",
            app.db.url(),
            "serve",
            "--bind",
            &format!("127.0.0.1:{port}"),
        ])
        .env("KEYGATE_MASTER_KEY", &app.master_key)
        // No periodic flush during the test: only the one at shutdown can write it.
        .env("KEYGATE_SERVER__LAST_USED_FLUSH_MS", "3600000")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let up = crate::helpers::eventually(10, || async {
        client.get(format!("{base}/healthz")).send().await.is_ok()
    })
    .await;
    assert!(up, "the server did not come up");
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
        "written before the flush"
    );

    let stopped = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(stopped.success());
    let status = child.wait().unwrap();
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
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_keygate"))
        .current_dir(dir.path())
        .env("KEYGATE_PROFILE", "test")
        .env("KEYGATE_SERVER__BIND", format!("127.0.0.1:{port}"))
        .env("DATABASE_URL", app.db.url())
        .env("KEYGATE_MASTER_KEY", &app.master_key)
        .env("RUST_LOG", "trace")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
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
    actix_web::rt::time::sleep(Duration::from_millis(200)).await;

    child.kill().unwrap();
    let mut log = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    child.wait().unwrap();
    assert!(
        log.contains("POST /v1/token"),
        "the access log is on: {log}"
    );
    for (what, needle) in [
        ("the secret", &secret[9..]),
        ("the access token", &access_token[access_token.len() - 40..]),
        ("a bcrypt hash", "$2b$"),
        ("the master key", &app.master_key[..20]),
    ] {
        assert!(!log.contains(needle), "{what} reached the log");
    }
}

backend_tests!(
    create_prints_the_secret_once_and_nothing_shows_it_again,
    create_refuses_bad_input_with_a_clear_message,
    expiry_on_a_date_means_midnight_utc_and_test_keys_are_tagged,
    shell_output_exports_the_credentials,
    revoking_an_unknown_key_fails,
    rotate_prints_a_new_secret_and_honours_the_grace_period,
    after_a_cli_revoke_me_refuses_the_token_at_once,
    migrate_is_idempotent,
    the_binary_serves_by_default_and_never_logs_secrets,
    a_graceful_stop_writes_pending_last_used_times,
);

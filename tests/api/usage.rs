//! Usage history: per key and hour, tokens issued, token requests refused by reason, direct
//! calls and introspections, counted in memory, written behind (and at a graceful stop), and
//! read back by key, for the organization, and from the CLI.

use reqwest::Method;
use serde_json::{Value, json};

use crate::backend_tests;
use crate::helpers::{
    ADMIN, Backend, ClientAuth, Reply, ServerProcess, TestApp, TestKey, eventually, introspect,
    mistyped, spawn_app,
};

async fn usage_of(app: &TestApp, reader: &TestKey, client_id: &str, query: &str) -> Reply {
    let path = format!("/v1/api-keys/{client_id}/usage{query}");
    Reply::send(app.with_token(Method::GET, &path, &reader.client_secret)).await
}

/// The counters the known sequence below leaves.
fn expected_totals() -> Value {
    json!({
        "tokens_issued": 3,
        "refused": 3,
        "refused_by_reason": { "malformed_secret": 1, "wrong_secret": 2 },
        "direct_calls": 2,
        "introspections": 2,
    })
}

/// Three tokens, two wrong secrets and a mistyped one, two calls with the key itself, and two
/// introspections of its token, all sent to `base`.
async fn known_sequence(base: &str, key: &TestKey, other: &TestKey, introspector: &TestKey) {
    let client = reqwest::Client::new();
    let token_request = |secret: &str| {
        client
            .post(format!("{base}/v1/token"))
            .json(&json!({ "client_id": key.client_id, "client_secret": secret }))
    };
    let mut token = String::new();
    for _ in 0..3 {
        let answer: Value = token_request(&key.client_secret)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        token = answer["access_token"].as_str().unwrap().to_owned();
    }
    for secret in [
        other.client_secret.clone(),
        other.client_secret.clone(),
        mistyped(&key.client_secret),
    ] {
        let status = token_request(&secret).send().await.unwrap().status();
        assert_eq!(status, 401);
    }
    for _ in 0..2 {
        let status = client
            .get(format!("{base}/v1/me"))
            .bearer_auth(&key.client_secret)
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 200);
        let answer: Value = client
            .post(format!("{base}/v1/introspect"))
            .basic_auth(&introspector.client_id, Some(&introspector.client_secret))
            .form(&[("token", token.as_str())])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(answer["active"], true);
    }
}

async fn counts_after_a_known_sequence_are_exact_and_survive_a_restart(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_user(ADMIN, &["--admin"]);
    let key = app.create_key(&["invoices:read"]);
    let other = app.create_key(&["invoices:read"]);
    let introspector = app.create_key(&["tokens:introspect"]);
    let reader = app.create_key(&["api_keys:read"]);

    let dir = tempfile::tempdir().unwrap();
    let mut server = ServerProcess::start(
        app.serve_command(dir.path())
            // No periodic write during the test: only the one at shutdown can keep the counts.
            .env("KEYGATE_SERVER__LAST_USED_FLUSH_MS", "3600000"),
    );
    known_sequence(&server.address, &key, &other, &introspector).await;
    let before = usage_of(&app, &reader, &key.client_id, "")
        .await
        .expect(200);
    assert_eq!(
        before["totals"]["tokens_issued"], 0,
        "written before the stop"
    );

    let status = server.terminate();
    assert!(status.success(), "a graceful stop exits 0, not {status}");
    let report = usage_of(&app, &reader, &key.client_id, "")
        .await
        .expect(200);
    assert_eq!(report["totals"], expected_totals(), "{report}");
    assert_eq!(report["client_id"], key.client_id.as_str());
    assert_eq!(report["granularity"], "hour");
    let hours = report["data"].as_array().unwrap();
    assert_eq!(hours.len(), 24);
    let issued: i64 = hours
        .iter()
        .map(|h| h["tokens_issued"].as_i64().unwrap())
        .sum();
    assert_eq!(issued, 3);

    // By day, the same totals; the CLI reads the same history.
    let days = usage_of(&app, &reader, &key.client_id, "?granularity=day")
        .await
        .expect(200);
    assert_eq!(days["totals"], expected_totals());
    assert_eq!(days["data"].as_array().unwrap().len(), 30);
    let out = app.cli(&["api-keys", "usage", &key.client_id, "--json"]);
    assert!(out.status.success());
    let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(printed["totals"], expected_totals());

    // The key that introspected was not introspected itself, nor issued a token.
    let theirs = usage_of(&app, &reader, &introspector.client_id, "")
        .await
        .expect(200);
    assert_eq!(theirs["totals"]["introspections"], 0);
    assert_eq!(theirs["totals"]["tokens_issued"], 0);
}

async fn the_organization_summary_adds_up_every_key(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_user(ADMIN, &["--admin"]);
    let key = app.create_key(&["invoices:read"]);
    let second = app.create_key(&["invoices:read"]);
    let reader = app.create_key(&["api_keys:read"]);
    for _ in 0..3 {
        app.token_for(&key).await;
    }
    app.token_for(&second).await;
    let introspector = app.create_key(&["tokens:introspect"]);
    let token = app.token_for(&second).await;
    introspect(&app, ClientAuth::Basic(&introspector), &token)
        .await
        .expect(200);

    let counted = eventually(10, || async {
        let summary = Reply::send(app.with_token(Method::GET, "/v1/usage", &reader.client_secret))
            .await
            .expect(200);
        summary["totals"]["tokens_issued"] == 5 && summary["totals"]["introspections"] == 1
    })
    .await;
    assert!(counted, "the summary never reached the counts");
    let summary = Reply::send(app.with_token(Method::GET, "/v1/usage", &reader.client_secret))
        .await
        .expect(200);
    let keys = summary["keys"].as_array().unwrap();
    assert_eq!(keys[0]["client_id"], key.client_id.as_str(), "{summary}");
    assert_eq!(keys[0]["tokens_issued"], 3);
    assert_eq!(keys[0]["name"], "test key");
    assert_eq!(keys[1]["client_id"], second.client_id.as_str());
    assert_eq!(keys[1]["tokens_issued"], 2);
    assert_eq!(keys[1]["introspections"], 1);
    assert!(summary.get("client_id").is_none());
}

async fn bad_windows_and_unknown_keys_get_clear_errors(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_user(ADMIN, &["--admin"]);
    let key = app.create_key(&["invoices:read"]);
    let reader = app.create_key(&["api_keys:read"]);
    for (query, field) in [
        ("?granularity=week", "granularity"),
        ("?from=yesterday", "from"),
        ("?from=2026-12-01&to=2026-11-01", "from"),
        ("?from=2025-01-01&to=2026-12-01&granularity=hour", "to"),
        ("?limit=5", "limit"),
        ("?from=2026-11-01&from=2026-11-02", "from"),
    ] {
        let reply = usage_of(&app, &reader, &key.client_id, query).await;
        let body = reply.expect_error(400, "invalid_request");
        assert_eq!(body["field"], field, "{query}: {body}");
    }
    usage_of(&app, &reader, "kgc_00000000000000000000", "")
        .await
        .expect_error(404, "not_found");
    // A key without api_keys:read may not read usage.
    usage_of(&app, &key, &key.client_id, "")
        .await
        .expect_error(403, "insufficient_scope");
    let dated = usage_of(
        &app,
        &reader,
        &key.client_id,
        "?from=2026-11-01&to=2026-11-08&granularity=day",
    )
    .await
    .expect(200);
    assert_eq!(dated["from"], "2026-11-01T00:00:00Z");
    assert_eq!(dated["data"].as_array().unwrap().len(), 7);
    assert_eq!(dated["totals"]["tokens_issued"], 0);
}

backend_tests!(
    counts_after_a_known_sequence_are_exact_and_survive_a_restart,
    the_organization_summary_adds_up_every_key,
    bad_windows_and_unknown_keys_get_clear_errors,
);

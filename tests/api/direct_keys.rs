//! An API key's secret used directly as the bearer credential (`Authorization: Bearer
//! kgs_…`): accepted on keygate's routes with the key's scopes, refused within a second of a
//! revoke or disable, refused with RFC 6750 answers when wrong, and off when the deployment
//! says so.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::Value;

use crate::backend_tests;
use crate::helpers::{ADMIN, Backend, Reply, TestApp, spawn_app, spawn_app_with};

async fn call(app: &TestApp, method: Method, path: &str, credential: &str) -> Reply {
    Reply::send(app.with_token(method, path, credential)).await
}

fn assert_invalid_token(reply: &Reply, words: &str) {
    let body = reply.expect_error(401, "invalid_token");
    let description = body["error_description"].as_str().unwrap_or_default();
    assert!(description.contains(words), "{description}");
    let challenge = reply.header("www-authenticate").unwrap_or_default();
    assert!(
        challenge.starts_with("Bearer ") && challenge.contains("error=\"invalid_token\""),
        "{challenge}"
    );
}

async fn an_api_key_is_accepted_as_the_bearer_credential_with_its_scopes(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_user(ADMIN, &["--admin"]);
    let key = app.create_key(&["invoices:read", "clients:read"]);

    let permissions = call(&app, Method::GET, "/v1/me/permissions", &key.client_secret).await;
    let body = permissions.expect(200);
    assert_eq!(body["client_id"], key.client_id.as_str());
    assert_eq!(body["environment"], "live");
    assert_eq!(body["organization"], "default");
    assert_eq!(
        body["scopes"],
        serde_json::json!(["clients:read", "invoices:read"])
    );
    assert!(body["expires_at"].as_i64().unwrap() > chrono::Utc::now().timestamp());

    let me = call(&app, Method::GET, "/v1/me", &key.client_secret).await;
    assert_eq!(me.expect(200)["client_id"], key.client_id.as_str());

    // The management API takes the key too, with the key's permissions and no more.
    let reader = app.create_key(&["api_keys:read"]);
    let listed = call(&app, Method::GET, "/v1/api-keys", &reader.client_secret).await;
    assert!(
        listed
            .rows()
            .iter()
            .any(|k| k["client_id"] == key.client_id.as_str()),
        "{}",
        listed.text
    );
    call(&app, Method::GET, "/v1/api-keys", &key.client_secret)
        .await
        .expect_error(403, "insufficient_scope");

    // A call counts as a use of the key.
    let used = crate::helpers::eventually(5, || async {
        let shown = call(
            &app,
            Method::GET,
            &format!("/v1/api-keys/{}", key.client_id),
            &reader.client_secret,
        )
        .await;
        shown.json()["last_used_at"].is_string()
    })
    .await;
    assert!(used, "last_used_at records the direct call");
}

async fn a_revoked_or_disabled_key_is_refused_within_a_second(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_user(ADMIN, &["--admin"]);
    let manager = app.create_key(&["api_keys:read", "api_keys:write"]);
    for (action, path_end) in [("disable", ""), ("revoke", "/revoke")] {
        let key = app.create_key(&["invoices:read"]);
        // Seen once, so the next calls are answered from memory.
        call(&app, Method::GET, "/v1/me/permissions", &key.client_secret)
            .await
            .expect(200);
        let path = format!("/v1/api-keys/{}{path_end}", key.client_id);
        let changed = if action == "disable" {
            Reply::send(
                app.with_token(Method::PATCH, &path, &manager.client_secret)
                    .json(&serde_json::json!({ "status": "disabled" })),
            )
            .await
        } else {
            call(&app, Method::POST, &path, &manager.client_secret).await
        };
        changed.expect(200);
        let since = Instant::now();
        loop {
            let reply = call(&app, Method::GET, "/v1/me/permissions", &key.client_secret).await;
            if reply.status == 401 {
                assert_invalid_token(&reply, "not valid");
                break;
            }
            assert!(
                since.elapsed() < Duration::from_secs(1),
                "{action}: still accepted after a second"
            );
            actix_web::rt::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn wrong_and_malformed_keys_get_invalid_token(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_user(ADMIN, &["--admin"]);
    let key = app.create_key(&["invoices:read"]);
    let malformed = format!("{}x", key.client_secret);
    assert_invalid_token(
        &call(&app, Method::GET, "/v1/me/permissions", &malformed).await,
        "malformed",
    );
    assert_invalid_token(
        &call(&app, Method::GET, "/v1/me/permissions", "kgs_live_short").await,
        "malformed",
    );
    // A well-formed secret that no key holds (the key's own, after a rotation without grace).
    let rotated = app.cli(&["api-keys", "rotate", &key.client_id, "--json"]);
    assert!(rotated.status.success());
    let new: Value = serde_json::from_slice(&rotated.stdout).unwrap();
    assert_invalid_token(
        &call(&app, Method::GET, "/v1/me/permissions", &key.client_secret).await,
        "not valid",
    );
    let new_secret = new["client_secret"].as_str().unwrap();
    call(&app, Method::GET, "/v1/me/permissions", new_secret)
        .await
        .expect(200);
}

async fn the_deployment_can_turn_direct_keys_off(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.validation.accept_api_keys = false).await;
    app.create_user(ADMIN, &["--admin"]);
    let key = app.create_key(&["invoices:read"]);
    assert_invalid_token(
        &call(&app, Method::GET, "/v1/me/permissions", &key.client_secret).await,
        "/v1/token",
    );
    let token = app.token_for(&key).await;
    call(&app, Method::GET, "/v1/me/permissions", &token)
        .await
        .expect(200);
}

/// A key made token-only (API `token_only: true`, CLI `--token-only`) still gets tokens, but
/// is never accepted as the bearer credential itself.
async fn a_token_only_key_is_refused_as_a_bearer_credential(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_user(ADMIN, &["--admin"]);
    let manager = app.create_key(&["api_keys:read", "api_keys:write", "invoices:read"]);
    let created = Reply::send(
        app.with_token(Method::POST, "/v1/api-keys", &manager.client_secret)
            .json(&serde_json::json!({
                "name": "tokens only",
                "scopes": ["invoices:read"],
                "token_only": true,
            })),
    )
    .await;
    let body = created.expect(201);
    assert_eq!(body["token_only"], true, "{body}");
    let by_api = crate::helpers::TestKey {
        client_id: body["client_id"].as_str().unwrap().into(),
        client_secret: body["client_secret"].as_str().unwrap().into(),
    };
    let by_cli = app.create_key_with(&["invoices:read"], &["--token-only"]);
    for key in [&by_api, &by_cli] {
        assert_invalid_token(
            &call(&app, Method::GET, "/v1/me/permissions", &key.client_secret).await,
            "token-only",
        );
        let token = app.token_for(key).await;
        call(&app, Method::GET, "/v1/me/permissions", &token)
            .await
            .expect(200);
    }
    let shown = call(
        &app,
        Method::GET,
        &format!("/v1/api-keys/{}", by_cli.client_id),
        &manager.client_secret,
    )
    .await;
    assert_eq!(shown.expect(200)["token_only"], true);
    // Keys are accepted directly unless made token-only.
    assert_eq!(
        call(
            &app,
            Method::GET,
            &format!("/v1/api-keys/{}", manager.client_id),
            &manager.client_secret
        )
        .await
        .expect(200)["token_only"],
        false
    );
}

/// Guessing keys spends the address's failure budget, as wrong secrets at /v1/token do.
async fn guessing_keys_is_rate_limited(backend: Backend) {
    let app = spawn_app_with(backend, |s| {
        s.rate_limit.failure_burst = 3;
        s.rate_limit.failures_per_minute = 1;
    })
    .await;
    app.create_user(ADMIN, &["--admin"]);
    let key = app.create_key(&["invoices:read"]);
    // Well-formed secrets no key holds: a rotated-away one, three times.
    let rotated = app.cli(&["api-keys", "rotate", &key.client_id, "--json"]);
    assert!(rotated.status.success());
    for _ in 0..3 {
        let reply = call(&app, Method::GET, "/v1/me/permissions", &key.client_secret).await;
        assert_eq!(reply.status, 401, "{}", reply.text);
    }
    let limited = call(&app, Method::GET, "/v1/me/permissions", &key.client_secret).await;
    limited.expect_error(429, "rate_limited");
    assert!(limited.header("retry-after").is_some());
}

backend_tests!(
    guessing_keys_is_rate_limited,
    a_token_only_key_is_refused_as_a_bearer_credential,
    an_api_key_is_accepted_as_the_bearer_credential_with_its_scopes,
    a_revoked_or_disabled_key_is_refused_within_a_second,
    wrong_and_malformed_keys_get_invalid_token,
    the_deployment_can_turn_direct_keys_off,
);
